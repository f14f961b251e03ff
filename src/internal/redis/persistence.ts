/**
 * `effect/persistence`'s `Redis` service on the client's connections, so that Effect's own Redis-backed modules
 * (`RateLimiter`, the `CircuitBreaker` store, `PersistedQueue`, `Persistence` behind `PersistedCache`) run on them.
 *
 * On a Cluster, what those modules send needs routing the client does not do by itself: `SCRIPT LOAD` goes to every
 * master (`EVALSHA` runs on the node of its keys), and `KEYS` goes to the master of the pattern's hash tag (or to
 * every master when it has none). A command or script whose keys hash to several slots fails `CrossSlot` with a
 * message naming the fix (a hash tag in the store's prefix or id), instead of Redis' bare reply, since the modules
 * retry some failures in loops of their own where that message is all a user sees.
 *
 * @internal
 */
import { Effect } from "effect"
import * as PersistenceRedis from "effect/persistence/Redis"
import { Cluster } from "ioredis"
import { CrossSlot, RedisError } from "../../RedisError.js"
import type { Client } from "./connection.js"
import type { Hub } from "./pubsub.js"
import { slotOf } from "../slot.js"

/** Runs `f` on `client` as an Effect failing with a classified `RedisError`. */
export type Use = (client: Client) => <A>(op: string, f: (client: Client) => Promise<A>) => Effect.Effect<A, RedisError>

const hint =
  "on a Cluster, every key one operation uses must share a hash tag: give the store a prefix with one " +
  '(PersistedQueue/RateLimiter: layerStoreRedis({ prefix: "{app}:" })) or a storeId with one (PersistedCache: ' +
  'storeId: "{users}")'

/** A `CrossSlot` error of `op` that says how to fix it. */
const withHint = (error: RedisError): RedisError =>
  error.reason._tag === "CrossSlot"
    ? new RedisError({ op: error.op, reason: new CrossSlot({ message: `${error.reason.message}; ${hint}` }) })
    : error

/** The literal hash tag of a `KEYS` pattern, when it has one without glob characters. */
const tagOf = (pattern: string): string | undefined => {
  const tag = /\{([^}]*)\}/.exec(pattern)?.[1]
  return tag === undefined || tag === "" || /[*?[\]\\]/.test(tag) ? undefined : tag
}

/** `KEYS` on a Cluster: on the master of the pattern's hash tag, or on every master. */
const keysOnCluster = (client: Cluster, pattern: string): Promise<Array<string>> => {
  const tag = tagOf(pattern)
  const owner = tag === undefined ? undefined : client.slots[slotOf(tag)]?.[0]
  const masters = client.nodes("master")
  const nodes =
    owner === undefined ? masters : masters.filter((node) => `${node.options.host}:${node.options.port}` === owner)
  return Promise.all((nodes.length > 0 ? nodes : masters).map((node) => node.keys(pattern))).then((lists) =>
    lists.flat()
  )
}

/** `call`, routed as a Cluster needs it (see the module header). */
const callRouted = (client: Client, command: string, args: ReadonlyArray<string>): Promise<unknown> => {
  if (client instanceof Cluster) {
    const name = command.toUpperCase()
    if (name === "SCRIPT" && args[0]?.toUpperCase() === "LOAD") {
      return Promise.all(client.nodes("master").map((node) => node.call(command, ...args))).then((shas) => shas[0])
    }
    if (name === "KEYS" && args[0] !== undefined) return keysOnCluster(client, args[0])
  }
  return client.call(command, ...args)
}

/** The service, on the `shared` connection, pub/sub through `hub`, and dedicated connections opened by `connect`. */
export const make = (options: {
  readonly shared: Client
  readonly use: Use
  readonly hub: Hub
  readonly connect: Effect.Effect<Client, RedisError>
  readonly maxConnections: number
}) => {
  const wrap = <A, R>(effect: Effect.Effect<A, RedisError, R>) =>
    Effect.mapError(effect, (cause) => new PersistenceRedis.RedisError({ cause: withHint(cause) }))
  const sendWith =
    (client: Client) =>
    <A>(command: string, ...args: ReadonlyArray<string>) =>
      wrap(options.use(client)(command, (c) => callRouted(c, command, args) as Promise<A>))
  return PersistenceRedis.make({
    send: sendWith(options.shared),
    subscribe: (channel, onMessage) =>
      wrap(
        options.hub.listen([channel], (event) => {
          if (event._tag === "Message") onMessage({ channel: event.channel, message: event.message })
        })
      ).pipe(Effect.as(Effect.never)),
    connect: wrap(options.connect).pipe(
      Effect.map((client) => ({ send: sendWith(client), close: Effect.sync(() => client.disconnect()) }))
    ),
    pool: { maxConnections: options.maxConnections }
  })
}
