/**
 * Turns the public connection options into a `ConnectionSpec`: URL parsing (`redis://`, `rediss://`), credentials
 * unwrapped from `Redacted` (and remembered as secrets to scrub), TLS, and resolved defaults.
 *
 * @internal
 */

import type { ConnectionOptions as TlsOptions } from "node:tls"
import { Duration, Redacted } from "effect"
import type { ClusterOptions, CommonOptions, Options, SentinelOptions } from "../../RedisClient.js"
import type { ClusterNode } from "ioredis"
import type { CommonSpec, ConnectionSpec, NodeOptions, Origin } from "./connection.js"
import { defaultReconnectSchedule } from "./reconnect.js"

/** A value that may be given plainly or wrapped in `Redacted`. */
type Secret = string | Redacted.Redacted<string>

const reveal = (secret: Secret | undefined): string | undefined =>
  secret === undefined ? undefined : Redacted.isRedacted(secret) ? Redacted.value(secret) : secret

const tlsOption = (tls: boolean | TlsOptions | undefined): TlsOptions | undefined =>
  tls === true ? {} : tls === false || tls === undefined ? undefined : tls

const defined = <T extends object>(record: T): T =>
  Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as T

/** A timeout option: `fallback` when not given; none when infinite or zero (ioredis takes 0 as none too). */
const timeoutOf = (input: Duration.Input | undefined, fallback: Duration.Input): Duration.Duration | undefined => {
  const timeout = Duration.fromInputUnsafe(input ?? fallback)
  return Duration.isFinite(timeout) && Duration.toMillis(timeout) > 0 ? timeout : undefined
}

/** The settings behind a connection built from options: where its address came from, given by the mode. */
const optionsOrigin = (address: string): Origin => ({
  address,
  credentials: "the username and password options (or the url's)",
  connectTimeout: "the connectTimeout option"
})

/** The settings behind a connection built from the `REDIS_*` variables, `address` naming the one of its mode. */
export const configOrigin = (address: string): Origin => ({
  address,
  credentials: "REDIS_USERNAME and REDIS_PASSWORD (or REDIS_URL's)",
  connectTimeout: "REDIS_CONNECT_TIMEOUT"
})

/** Resolves the options shared by all modes, with their defaults. */
export const common = (input: CommonOptions, origin: Origin, extraSecrets: ReadonlyArray<string | undefined> = []) => {
  const password = reveal(input.password)
  const spec: CommonSpec = {
    connectTimeout: Duration.fromInputUnsafe(input.connectTimeout ?? "5 seconds"),
    commandTimeout: timeoutOf(input.commandTimeout, "5 seconds"),
    reconnect: input.reconnectSchedule ?? defaultReconnectSchedule,
    secrets: [password, ...extraSecrets].filter((s): s is string => s !== undefined && s.length > 0),
    background: input.connectInBackground === true,
    origin
  }
  const options: NodeOptions = defined({
    username: input.username,
    password,
    tls: tlsOption(input.tls),
    protocol: input.protocol ?? 2,
    connectionName: input.connectionName
  })
  return { spec, options }
}

/** A parsed `redis://` or `rediss://` URL. */
export interface ParsedUrl {
  readonly host: string
  readonly port: number
  readonly username: string | undefined
  readonly password: string | undefined
  readonly db: number | undefined
  readonly tls: boolean
}

/** Parses a Redis URL; throws a message without the password when it is malformed. */
export const parseUrl = (url: string): ParsedUrl => {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new Error("invalid Redis URL (expected redis://[user:password@]host[:port][/db] or rediss://…)")
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    throw new Error(`unsupported Redis URL scheme "${parsed.protocol}" (expected redis: or rediss:)`)
  }
  const dbText = parsed.pathname.replace(/^\//, "")
  const db = dbText === "" ? undefined : Number(dbText)
  if (db !== undefined && !Number.isInteger(db)) throw new Error(`invalid database "${dbText}" in Redis URL`)
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
    port: parsed.port === "" ? 6379 : Number(parsed.port),
    username: parsed.username === "" ? undefined : decodeURIComponent(parsed.username),
    password: parsed.password === "" ? undefined : decodeURIComponent(parsed.password),
    db,
    tls: parsed.protocol === "rediss:"
  }
}

/** Builds the spec of a single-node connection; explicit fields win over the URL's. */
export const single = (
  input: Options,
  origin = optionsOrigin(
    input.host !== undefined || input.port !== undefined
      ? "the host and port options"
      : input.url !== undefined
        ? "the url option"
        : "no option (the default, 127.0.0.1:6379)"
  )
): ConnectionSpec => {
  const url = reveal(input.url)
  const fromUrl = url === undefined ? undefined : parseUrl(url)
  const merged: CommonOptions = {
    ...input,
    username: input.username ?? fromUrl?.username,
    password: input.password ?? fromUrl?.password,
    tls: input.tls ?? (fromUrl?.tls === true ? true : undefined)
  }
  const { spec, options } = common(merged, origin, [fromUrl?.password])
  return {
    kind: "single",
    common: spec,
    options: defined({
      ...options,
      host: input.host ?? fromUrl?.host ?? "127.0.0.1",
      port: input.port ?? fromUrl?.port ?? 6379,
      db: input.db ?? fromUrl?.db
    })
  }
}

/** A `host:port` address. */
export interface Address {
  readonly host: string
  readonly port: number
}

/** Parses `host:port` (or a `redis://` URL) into an address. */
export const parseAddress = (text: string): Address => {
  if (text.includes("://")) {
    const { host, port } = parseUrl(text)
    return { host, port }
  }
  const at = text.lastIndexOf(":")
  const port = Number(text.slice(at + 1))
  if (at <= 0 || !Number.isInteger(port)) throw new Error(`invalid address "${text}" (expected host:port)`)
  return { host: text.slice(0, at), port }
}

const toAddress = (node: string | Address): Address => (typeof node === "string" ? parseAddress(node) : node)

/** Builds the spec of a Cluster connection from its seed nodes. */
export const cluster = (input: ClusterOptions, origin = optionsOrigin("the nodes option")): ConnectionSpec => {
  const { spec, options } = common(input, origin)
  const nodes: Array<ClusterNode> = input.nodes.map(toAddress).map(({ host, port }) => ({ host, port }))
  return { kind: "cluster", nodes, common: spec, options }
}

/** Builds the spec of a connection to the master Sentinel names `name`. */
export const sentinel = (input: SentinelOptions, origin = optionsOrigin("the sentinels option")): ConnectionSpec => {
  const sentinelPassword = reveal(input.sentinelPassword)
  const sentinelTimeout = timeoutOf(input.sentinelTimeout, "1 second")
  const { spec, options } = common(input, origin, [sentinelPassword])
  return {
    kind: "sentinel",
    common: spec,
    options: defined({
      ...options,
      sentinels: input.sentinels.map(toAddress).map(({ host, port }) => ({ host, port })),
      name: input.name,
      sentinelUsername: input.sentinelUsername,
      sentinelPassword,
      sentinelTLS: options.tls,
      enableTLSForSentinelMode: options.tls === undefined ? undefined : true,
      // a sentinel that accepts the connection but never answers (a hung host) is skipped for the next one
      sentinelCommandTimeout: sentinelTimeout === undefined ? undefined : Duration.toMillis(sentinelTimeout),
      // the sentinels announce a new master (+switch-master): reconnect to it at once
      failoverDetector: true,
      db: input.db
    })
  }
}
