/**
 * Real Redis servers for tests, examples and benchmarks: one node, or a Redis Cluster of several masters.
 *
 * Where the server comes from, in this order: `REDIS_URL` when it is set (an external server: it cannot be stopped or
 * restarted); a `redis-server` binary on PATH (processes on free ports, killed when the scope closes, also when a test
 * fails or is interrupted); testcontainers when a container runtime answers (single node only); otherwise the layer
 * fails with a message saying how to install Redis.
 *
 * A node handle can `kill` (a crash: SIGKILL), `stop` (SIGTERM) and `start` again on the same port, for fault tests.
 *
 * @since 0.1.0
 */

import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Layer, Schedule, Schema, type Scope } from "effect"
import type * as PersistenceRedis from "effect/persistence/Redis"
import { parseUrl } from "../internal/spec.js"
import * as RedisClient from "../RedisClient.js"
import type { RedisError } from "../RedisError.js"
import { freePort, onPath, run, type ServerProcess, startServer, stopServer } from "./internal/process.js"

/**
 * A test server could not be started, stopped or reached.
 *
 * @since 0.1.0
 */
export class RedisServerError extends Schema.TaggedError<RedisServerError>()("RedisServerError", {
  message: Schema.String
}) {}

/**
 * A running Redis node and its controls.
 *
 * @since 0.1.0
 */
export interface Node {
  readonly host: string
  readonly port: number
  /** `redis://host:port`. */
  readonly url: string
  /** False for an external server (`REDIS_URL`) or a container: `kill`, `stop` and `start` then fail. */
  readonly controllable: boolean
  /** Kills the process with SIGKILL, as a crash would, and waits until it is gone. */
  readonly kill: Effect.Effect<void, RedisServerError>
  /** Stops the process with SIGTERM and waits until it is gone. */
  readonly stop: Effect.Effect<void, RedisServerError>
  /** Starts the process again on the same port (a no-op when it runs). Its data is gone: nothing is persisted. */
  readonly start: Effect.Effect<void, RedisServerError>
}

/**
 * One Redis node, for the scope of a layer.
 *
 * @since 0.1.0
 */
export class RedisServer extends Context.Service<RedisServer, Node>()("effect-redis-streams/testing/RedisServer") {}

/**
 * A Redis Cluster of several masters (no replicas), for the scope of a layer.
 *
 * @since 0.1.0
 */
export class RedisCluster extends Context.Service<
  RedisCluster,
  {
    readonly nodes: ReadonlyArray<Node>
    /** Waits until every node reports `cluster_state:ok` (after a node restart, say). */
    readonly awaitHealthy: Effect.Effect<void, RedisServerError>
  }
>()("effect-redis-streams/testing/RedisCluster") {}

const failure = (message: string) => (cause: unknown) =>
  new RedisServerError({ message: `${message}: ${cause instanceof Error ? cause.message : String(cause)}` })

const notControllable = (what: string) =>
  Effect.fail(new RedisServerError({ message: `${what} is external to this test and cannot be controlled` }))

const uncontrolled = (host: string, port: number, what: string): Node => ({
  host,
  port,
  url: `redis://${host}:${port}`,
  controllable: false,
  kill: notControllable(what),
  stop: notControllable(what),
  start: notControllable(what)
})

/** A node whose process this module runs; released (killed) with the scope. */
const managedNode = (
  port: number,
  args: ReadonlyArray<string>,
  options?: Parameters<typeof startServer>[2]
): Effect.Effect<Node, RedisServerError, Scope.Scope> =>
  Effect.gen(function* () {
    let current: ServerProcess | undefined
    const start = Effect.tryPromise({
      try: async () => {
        if (current !== undefined && current.child.exitCode === null && current.child.signalCode === null) return
        current = await startServer(port, args, options)
      },
      catch: failure(`starting redis-server on port ${port}`)
    })
    const halt = (signal: NodeJS.Signals) =>
      Effect.promise(async () => {
        if (current !== undefined) await stopServer(current, signal)
      })
    yield* Effect.acquireRelease(start, () => halt("SIGKILL"))
    return {
      host: "127.0.0.1",
      port,
      url: `redis://127.0.0.1:${port}`,
      controllable: true,
      kill: halt("SIGKILL"),
      stop: halt("SIGTERM"),
      start
    }
  })

/** Starts a managed node on a free port, trying other ports when one was taken in between. */
const spawnNode = (
  args: (port: number) => ReadonlyArray<string>,
  withBusPort = false,
  options?: Parameters<typeof startServer>[2]
) =>
  Effect.tryPromise({ try: () => freePort(withBusPort), catch: failure("finding a free port") }).pipe(
    Effect.flatMap((port) => managedNode(port, args(port), options)),
    Effect.retry({ times: 4 })
  )

const installHelp =
  "no Redis available: set REDIS_URL, install redis-server (Debian/Ubuntu: `apt-get install redis-server`; " +
  "macOS: `brew install redis`), or run a container runtime for testcontainers"

const containerNode = Effect.gen(function* () {
  const testcontainers = yield* Effect.tryPromise({
    try: async () => {
      const module = await import("testcontainers")
      await module.getContainerRuntimeClient()
      return module
    },
    catch: () => new RedisServerError({ message: installHelp })
  })
  const container = yield* Effect.acquireRelease(
    Effect.tryPromise({
      try: () => new testcontainers.GenericContainer("redis:7.0").withExposedPorts(6379).start(),
      catch: failure("starting a Redis container")
    }),
    (started) => Effect.promise(() => started.stop().catch(() => undefined))
  )
  return uncontrolled(container.getHost(), container.getMappedPort(6379), "a container")
})

/**
 * One Redis node: `REDIS_URL` if set, else a `redis-server` process on a free port, else a container. `args` are
 * extra `redis-server` arguments (e.g. `["--requirepass", "secret"]`); they force a local process.
 *
 * @since 0.1.0
 */
export const layer = (
  options: { readonly args?: ReadonlyArray<string> | undefined } = {}
): Layer.Layer<RedisServer, RedisServerError> =>
  Layer.effect(
    RedisServer,
    Effect.gen(function* () {
      const external = process.env.REDIS_URL
      if (external !== undefined && external !== "" && options.args === undefined) {
        const { host, port } = yield* Effect.try({ try: () => parseUrl(external), catch: failure("REDIS_URL") })
        return uncontrolled(host, port, "the REDIS_URL server")
      }
      if (yield* Effect.promise(() => onPath("redis-server"))) return yield* spawnNode(() => options.args ?? [])
      return yield* containerNode
    })
  )

/** A temporary folder, removed with the scope. */
const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: () => mkdtemp(join(tmpdir(), prefix)), catch: failure("temp dir") }),
    (path) => Effect.promise(() => rm(path, { recursive: true, force: true }))
  )

const clusterState = (node: Node) =>
  Effect.tryPromise({
    try: () => run("redis-cli", ["-h", node.host, "-p", String(node.port), "cluster", "info"]),
    catch: failure("cluster info")
  })

const awaitHealthy = (nodes: ReadonlyArray<Node>) =>
  Effect.forEach(nodes, clusterState).pipe(
    Effect.flatMap((infos) =>
      infos.every((info) => info.includes("cluster_state:ok"))
        ? Effect.void
        : Effect.fail(new RedisServerError({ message: "cluster not healthy yet" }))
    ),
    Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 200 })
  )

/**
 * A Redis Cluster of `masters` nodes (default 3), created with `redis-cli --cluster create`, each node a
 * `redis-server` process on a free port (`args` added to its command line), its data folder removed with the scope.
 *
 * @since 0.1.0
 */
export const layerCluster = (
  options: { readonly masters?: number | undefined; readonly args?: ReadonlyArray<string> | undefined } = {}
): Layer.Layer<RedisCluster, RedisServerError> =>
  Layer.effect(
    RedisCluster,
    Effect.gen(function* () {
      if (!(yield* Effect.promise(() => onPath("redis-server")))) {
        return yield* new RedisServerError({
          message: `a cluster needs redis-server and redis-cli on PATH; ${installHelp}`
        })
      }
      const dir = yield* tempDir("ers-cluster-")
      const nodes = yield* Effect.forEach(
        Array.from({ length: options.masters ?? 3 }, (_, i) => i),
        (i) =>
          spawnNode(
            (port) => [
              "--cluster-enabled",
              "yes",
              "--cluster-config-file",
              `nodes-${i}-${port}.conf`,
              "--cluster-node-timeout",
              "2000",
              "--dir",
              dir,
              ...(options.args ?? [])
            ],
            true
          ),
        { concurrency: "unbounded" }
      )
      yield* Effect.tryPromise({
        try: () =>
          run("redis-cli", [
            "--cluster",
            "create",
            ...nodes.map((node) => `${node.host}:${node.port}`),
            "--cluster-replicas",
            "0",
            "--cluster-yes"
          ]),
        catch: failure("redis-cli --cluster create")
      })
      yield* awaitHealthy(nodes)
      return { nodes, awaitHealthy: awaitHealthy(nodes) }
    })
  )

/**
 * A Redis master watched by one Sentinel process (quorum 1), for the scope of a layer.
 *
 * @since 0.1.0
 */
export class RedisSentinel extends Context.Service<
  RedisSentinel,
  {
    readonly master: Node
    readonly sentinel: Node
    /** The name the sentinel knows the master by. */
    readonly name: string
  }
>()("effect-redis-streams/testing/RedisSentinel") {}

/**
 * A master `redis-server` and a Sentinel (`redis-server --sentinel`) monitoring it as `mymaster`.
 *
 * @since 0.1.0
 */
export const layerSentinel = (): Layer.Layer<RedisSentinel, RedisServerError> =>
  Layer.effect(
    RedisSentinel,
    Effect.gen(function* () {
      const master = yield* spawnNode(() => [])
      const dir = yield* tempDir("ers-sentinel-")
      const configFile = join(dir, "sentinel.conf")
      const name = "mymaster"
      yield* Effect.tryPromise({
        try: () => writeFile(configFile, `sentinel monitor ${name} ${master.host} ${master.port} 1\n`),
        catch: failure("writing sentinel.conf")
      })
      const sentinel = yield* spawnNode(() => ["--sentinel"], false, { configFile, readyText: "+monitor master" })
      return { master, sentinel, name }
    })
  )

/**
 * A `RedisClient` (and `effect/persistence` `Redis`) connected to the `RedisServer` in context.
 *
 * @since 0.1.0
 */
export const layerClient = (
  options: RedisClient.CommonOptions = {}
): Layer.Layer<RedisClient.RedisClient | PersistenceRedis.Redis, RedisError, RedisServer> =>
  Layer.unwrap(Effect.map(RedisServer, (node) => RedisClient.layer({ ...options, url: node.url })))

/**
 * A `RedisClient` (and `effect/persistence` `Redis`) connected to the `RedisCluster` in context.
 *
 * @since 0.1.0
 */
export const layerClusterClient = (
  options: RedisClient.CommonOptions = {}
): Layer.Layer<RedisClient.RedisClient | PersistenceRedis.Redis, RedisError, RedisCluster> =>
  Layer.unwrap(
    Effect.map(RedisCluster, (cluster) =>
      RedisClient.layerCluster({ ...options, nodes: cluster.nodes.map(({ host, port }) => ({ host, port })) })
    )
  )

let prefixCounter = 0

/**
 * A key prefix no other test uses: `label`, the process id, a counter and a random part, ending in `:`.
 *
 * @since 0.1.0
 */
export const uniquePrefix = (label = "test"): string =>
  `${label}:${process.pid}-${++prefixCounter}-${Math.random().toString(36).slice(2, 8)}:`
