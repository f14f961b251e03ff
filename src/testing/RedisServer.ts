/**
 * Real Redis servers for tests, examples and benchmarks: one node, or a Redis Cluster of several masters.
 *
 * Where the server comes from, in this order: an external server, only when asked for explicitly (the `url` option,
 * or the variable `EFFECT_REDIS_STREAMS_TEST_URL`; never an application's `REDIS_URL`): it cannot be stopped or
 * restarted, and the keys written under {@link uniquePrefix}es are deleted when the last layer using it closes; a
 * `redis-server` binary on PATH (processes on free ports, killed when the scope closes, also when a test fails or is
 * interrupted); testcontainers when a container runtime answers (single node only); otherwise the layer fails with a
 * message saying how to install Redis.
 *
 * A node handle can `kill` (a crash: SIGKILL), `stop` (SIGTERM), `wipe` (its data files deleted) and `start` again on
 * the same port, for fault tests.
 * Every layer and handle here keeps real time whatever clock the test provides (`@effect/vitest`'s `TestClock`
 * included): starting a server, waiting for a cluster or a failover never waits on a clock nobody advances.
 *
 * @since 0.1.0
 */

import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Clock, Context, Duration, Effect, Layer, Schedule, Schema, type Scope } from "effect"
import type * as PersistenceRedis from "effect/persistence/Redis"
import * as RedisClient from "../RedisClient.js"
import type { RedisError } from "../RedisError.js"
import * as Cli from "./internal/cli.js"
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
  /** False for an external server or a container: `kill`, `stop`, `wipe` and `start` then fail. */
  readonly controllable: boolean
  /** Kills the process with SIGKILL, as a crash would, and waits until it is gone. */
  readonly kill: Effect.Effect<void, RedisServerError>
  /** Stops the process with SIGTERM and waits until it is gone. */
  readonly stop: Effect.Effect<void, RedisServerError>
  /**
   * Starts the process again on the same port (a no-op when it runs; a frozen one stays frozen until `thaw`). Its data
   * is gone, unless it persists it (`persistent`; a replica's copy of its master's data, a Cluster node's
   * configuration) and it was not wiped.
   */
  readonly start: Effect.Effect<void, RedisServerError>
  /**
   * Deletes what the stopped process would load its data from when started again, in the folder this module gave it
   * (the append-only file of a `persistent` node, the RDB file of a Cluster node or of one behind Sentinel; a Cluster
   * node keeps its configuration), as for a server without persistence, or one whose disk was lost: the next `start`
   * begins empty. Fails while the process runs.
   */
  readonly wipe: Effect.Effect<void, RedisServerError>
  /**
   * Stops the process with SIGSTOP, as a hung host would: its sockets stay open and accept connections, but nothing
   * answers until `thaw`. A frozen node does not count as `running`.
   */
  readonly freeze: Effect.Effect<void, RedisServerError>
  /** Resumes a frozen process with SIGCONT (a no-op when it is not frozen). */
  readonly thaw: Effect.Effect<void, RedisServerError>
  /**
   * Whether the process runs and answers now: neither gone nor frozen (always true for an external server or a
   * container).
   */
  readonly running: Effect.Effect<boolean>
}

/**
 * One Redis node, for the scope of a layer.
 *
 * @since 0.1.0
 */
export class RedisServer extends Context.Service<RedisServer, Node>()("effect-redis-streams/testing/RedisServer") {}

/**
 * A Redis Cluster, for the scope of a layer: its nodes (masters and replicas as created; after a failover the roles
 * differ, ask {@link RedisCluster} `masters`) and questions about its current state.
 *
 * @since 0.1.0
 */
export class RedisCluster extends Context.Service<
  RedisCluster,
  {
    /** Every node, the initial masters first. */
    readonly nodes: ReadonlyArray<Node>
    /**
     * Waits until every running node reports `cluster_state:ok`, every slot is served by a master that runs, and
     * every running replica is in sync with its master (after a failover or a node restart, say).
     */
    readonly awaitHealthy: Effect.Effect<void, RedisServerError>
    /** The nodes that are masters now, as the running nodes see it. */
    readonly masters: Effect.Effect<ReadonlyArray<Node>, RedisServerError>
    /** The node that serves `key`'s slot now. */
    readonly masterOf: (key: string) => Effect.Effect<Node, RedisServerError>
  }
>()("effect-redis-streams/testing/RedisCluster") {}

/**
 * The variable naming an external server for tests, when no `url` option is given: `redis://[user:pass@]host:port`.
 * An application's `REDIS_URL` is never used: a test run would write into the application's server.
 *
 * @since 0.1.0
 */
export const externalUrlVariable = "EFFECT_REDIS_STREAMS_TEST_URL"

const realClock = Clock.Clock.defaultValue()

/** Runs `effect` on the real clock, whatever clock the caller's context holds (a test's `TestClock`). */
const inRealTime = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provideService(effect, Clock.Clock, realClock)

/** A node whose controls keep real time. */
const realTimeNode = (node: Node): Node => ({
  ...node,
  kill: inRealTime(node.kill),
  stop: inRealTime(node.stop),
  start: inRealTime(node.start),
  wipe: inRealTime(node.wipe),
  freeze: inRealTime(node.freeze),
  thaw: inRealTime(node.thaw),
  running: inRealTime(node.running)
})

const failure = (message: string) => (cause: unknown) =>
  new RedisServerError({ message: `${message}: ${cause instanceof Error ? cause.message : String(cause)}` })

const notControllable = (what: string) =>
  Effect.fail(new RedisServerError({ message: `${what} is external to this test and cannot be controlled` }))

const uncontrolled = (host: string, port: number, what: string, url = `redis://${host}:${port}`): Node => ({
  host,
  port,
  url,
  controllable: false,
  kill: notControllable(what),
  stop: notControllable(what),
  start: notControllable(what),
  wipe: notControllable(what),
  freeze: notControllable(what),
  thaw: notControllable(what),
  running: Effect.succeed(true)
})

/** How a node is started: `startServer`'s options, and the files its data is loaded from at start (`wipe` deletes them). */
type NodeOptions = Parameters<typeof startServer>[2] & { readonly dataFiles?: ReadonlyArray<string> | undefined }

/** A node whose process this module runs; released (killed) with the scope. */
const managedNode = (
  port: number,
  args: ReadonlyArray<string>,
  options?: NodeOptions
): Effect.Effect<Node, RedisServerError, Scope.Scope> =>
  Effect.gen(function* () {
    let current: ServerProcess | undefined
    let frozen = false
    const isAlive = () => current !== undefined && current.child.exitCode === null && current.child.signalCode === null
    const start = Effect.tryPromise({
      try: async () => {
        if (isAlive()) return
        frozen = false
        current = await startServer(port, args, options)
      },
      catch: failure(`starting redis-server on port ${port}`)
    })
    const halt = (signal: NodeJS.Signals) =>
      Effect.promise(async () => {
        if (current !== undefined) await stopServer(current, signal)
      })
    const jobControl = (name: "SIGSTOP" | "SIGCONT") =>
      Effect.suspend(() => {
        if (!isAlive())
          return Effect.fail(new RedisServerError({ message: `redis-server on port ${port} is not running` }))
        current?.child.kill(name)
        frozen = name === "SIGSTOP"
        return Effect.void
      })
    const wipe = Effect.suspend(() =>
      isAlive()
        ? Effect.fail(new RedisServerError({ message: `redis-server on port ${port} runs: stop it before wiping it` }))
        : Effect.tryPromise({
            try: () =>
              Promise.all((options?.dataFiles ?? []).map((file) => rm(file, { recursive: true, force: true }))),
            catch: failure(`wiping the data of redis-server on port ${port}`)
          })
    )
    yield* Effect.acquireRelease(start, () => halt("SIGKILL"))
    return realTimeNode({
      host: "127.0.0.1",
      port,
      url: `redis://127.0.0.1:${port}`,
      controllable: true,
      kill: halt("SIGKILL"),
      stop: halt("SIGTERM"),
      start,
      wipe: Effect.asVoid(wipe),
      freeze: jobControl("SIGSTOP"),
      thaw: jobControl("SIGCONT"),
      running: Effect.sync(() => isAlive() && !frozen)
    })
  })

/** Starts a managed node on a free port, trying other ports when one was taken in between. */
const spawnNode = (
  args: (port: number) => ReadonlyArray<string>,
  withBusPort = false,
  options?: Parameters<typeof startServer>[2],
  dataFiles: (port: number) => ReadonlyArray<string> = () => []
) =>
  Effect.tryPromise({ try: () => freePort(withBusPort), catch: failure("finding a free port") }).pipe(
    Effect.flatMap((port) => managedNode(port, args(port), { ...options, dataFiles: dataFiles(port) })),
    Effect.retry({ times: 4 })
  )

const installHelp =
  "no Redis available: install redis-server (Debian/Ubuntu: `apt-get install redis-server`; macOS: " +
  `\`brew install redis\`), run a container runtime for testcontainers, or name a server in ${externalUrlVariable}`

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

/** A temporary folder, removed with the scope. */
const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: () => mkdtemp(join(tmpdir(), prefix)), catch: failure("temp dir") }),
    (path) => Effect.promise(() => rm(path, { recursive: true, force: true }))
  )

/** The key prefixes {@link uniquePrefix} handed out in this process, as their unique part (`<pid>-<n>-<random>:`). */
const handedOut: Array<string> = []
/** How many layers of this process use an external server now: its test keys are deleted when the last one closes. */
let externalUsers = 0

/**
 * Deletes the keys of an external server whose names contain a prefix {@link uniquePrefix} handed out in this
 * process (one SCAN of the keyspace); a failure is logged, never the test's.
 */
const removeTestKeys = (url: string) =>
  Effect.gen(function* () {
    const tokens = [...handedOut]
    if (tokens.length === 0) return
    const redis = yield* RedisClient.RedisClient
    let cursor = "0"
    do {
      const [next, keys] = yield* redis.send<readonly [string, ReadonlyArray<string>]>(
        "SCAN",
        cursor,
        "MATCH",
        `*${process.pid}-*`,
        "COUNT",
        1000
      )
      const ours = keys.filter((key) => tokens.some((token) => key.includes(token)))
      // one key per UNLINK: an external Cluster node would refuse keys of several slots in one
      yield* Effect.forEach(ours, (key) => redis.send("UNLINK", key), { concurrency: 16 })
      cursor = next
    } while (cursor !== "0")
  }).pipe(
    Effect.provide(RedisClient.layer({ url })),
    Effect.catch((error) =>
      Effect.logWarning("RedisServer: the test keys of the external server were not deleted", error)
    )
  )

/** The external server at `url`, used (not started) for the scope; its test keys are deleted after the last use. */
const externalNode = (url: string) =>
  Effect.gen(function* () {
    const { host, port } = yield* Effect.try({
      try: () => {
        const parsed = new URL(url)
        return { host: parsed.hostname, port: Number(parsed.port === "" ? 6379 : parsed.port) }
      },
      catch: failure("the external server's URL")
    })
    yield* Effect.acquireRelease(
      Effect.sync(() => externalUsers++),
      () => Effect.suspend(() => (--externalUsers === 0 ? removeTestKeys(url) : Effect.void))
    )
    return uncontrolled(host, port, "an external server", url)
  })

/**
 * One Redis node: the external server at `url` (default: the variable {@link externalUrlVariable}) when one is
 * named, else a `redis-server` process on a free port, else a container. `args` are extra `redis-server` arguments
 * (e.g. `["--requirepass", "secret"]`); they force a local process. `persistent` turns the append-only file on (in a
 * folder removed with the scope), so that what the server acknowledged survives a kill and a restart, as on a
 * production server; it too forces a local process. `tls` makes the node speak TLS only, with the given certificate
 * and key files (its `url` is then `rediss://`; clients need not present one).
 *
 * An example that should use an application's server when one is set passes it: `layer({ url: process.env.REDIS_URL })`.
 *
 * @since 0.1.0
 */
export const layer = (
  options: {
    readonly url?: string | undefined
    readonly args?: ReadonlyArray<string> | undefined
    readonly persistent?: boolean | undefined
    readonly tls?: { readonly cert: string; readonly key: string; readonly ca: string } | undefined
  } = {}
): Layer.Layer<RedisServer, RedisServerError> =>
  Layer.effect(
    RedisServer,
    inRealTime(
      Effect.gen(function* () {
        const external = options.url ?? process.env[externalUrlVariable]
        const local = options.args !== undefined || options.persistent === true || options.tls !== undefined
        if (external !== undefined && external !== "" && !local) return yield* externalNode(external)
        if (!(yield* Effect.promise(() => onPath("redis-server")))) return yield* containerNode
        const dir = options.persistent === true ? yield* tempDir("ers-aof-") : undefined
        const persistence = dir === undefined ? [] : ["--appendonly", "yes", "--dir", dir]
        // the append-only folder (Redis 7) or file (Redis 6), and the RDB file a rewrite may leave
        const dataFiles =
          dir === undefined ? [] : ["appendonlydir", "appendonly.aof", "dump.rdb"].map((f) => join(dir, f))
        const tls = options.tls
        const tlsArgs = (port: number) =>
          tls === undefined
            ? []
            : [
                "--port",
                "0",
                "--tls-port",
                String(port),
                "--tls-cert-file",
                tls.cert,
                "--tls-key-file",
                tls.key
              ].concat(["--tls-ca-cert-file", tls.ca, "--tls-auth-clients", "no"])
        const node = yield* spawnNode(
          (port) => [...tlsArgs(port), ...persistence, ...(options.args ?? [])],
          false,
          undefined,
          () => dataFiles
        )
        return tls === undefined ? node : { ...node, url: node.url.replace(/^redis:/, "rediss:") }
      })
    )
  )

const ask = (node: Node, ...command: ReadonlyArray<string>) =>
  Effect.tryPromise({ try: () => Cli.ask(node, ...command), catch: failure(`${command.join(" ")} on ${node.port}`) })

const runningNodes = (nodes: ReadonlyArray<Node>) => Effect.filter(nodes, (node) => node.running)

/** A replica starts its first sync at once (Redis waits 5 seconds by default, for more replicas to share it). */
const quickSync = ["--repl-diskless-sync-delay", "0"]

/**
 * Waits until every running replica among `nodes` has its link to its master up: a replica that has not synced yet
 * would lose everything in a failover.
 */
const awaitReplicasInSync = (nodes: ReadonlyArray<Node>) =>
  awaitCondition(
    "replicas not in sync",
    30,
    Effect.gen(function* () {
      const infos = yield* Effect.forEach(yield* runningNodes(nodes), (node) => ask(node, "info", "replication"))
      return infos
        .map(Cli.fields)
        .every((info) => info.get("role") !== "slave" || info.get("master_link_status") === "up")
        ? true
        : undefined
    })
  )

/** Retries `check` every 100 ms for up to `seconds`, failing with `what` when it never holds. */
const awaitCondition = <A>(what: string, seconds: number, check: Effect.Effect<A | undefined, RedisServerError>) =>
  check.pipe(
    Effect.flatMap((value) =>
      value === undefined ? Effect.fail(new RedisServerError({ message: `${what}: not yet` })) : Effect.succeed(value)
    ),
    Effect.retry({ schedule: Schedule.spaced("100 millis"), times: seconds * 10 })
  )

/** What the running nodes agree on: the masters that serve slots (all 16384 of them), or undefined. */
const clusterView = (nodes: ReadonlyArray<Node>) =>
  Effect.gen(function* () {
    const running = yield* runningNodes(nodes)
    const infos = yield* Effect.forEach(running, (node) => ask(node, "cluster", "info"))
    if (!infos.every((info) => Cli.fields(info).get("cluster_state") === "ok")) return undefined
    const first = running[0]
    if (first === undefined) return undefined
    const states = Cli.clusterNodes(yield* ask(first, "cluster", "nodes"))
    const serving = states.filter((state) => state.master && !state.failed && state.slots.length > 0)
    const covered = serving.reduce((sum, state) => sum + state.slots.reduce((n, [from, to]) => n + to - from + 1, 0), 0)
    const masters = serving.flatMap((state) => nodes.filter((node) => node.port === state.port))
    const live = yield* Effect.forEach(masters, (node) => node.running)
    return covered === 16384 && live.every(Boolean) ? { masters, states: serving } : undefined
  })

/**
 * A Redis Cluster of `masters` nodes (default 3) with `replicas` replicas each (default 0), created with
 * `redis-cli --cluster create`, each node a `redis-server` process on a free port with `cluster-node-timeout`
 * `nodeTimeout` (default 2 seconds: how long a master may be unreachable before a replica takes over) and `args`
 * added to its command line, its data folder removed with the scope.
 *
 * @since 0.1.0
 */
export const layerCluster = (
  options: {
    readonly masters?: number | undefined
    readonly replicas?: number | undefined
    readonly nodeTimeout?: Duration.Input | undefined
    readonly args?: ReadonlyArray<string> | undefined
  } = {}
): Layer.Layer<RedisCluster, RedisServerError> =>
  Layer.effect(
    RedisCluster,
    inRealTime(
      Effect.gen(function* () {
        if (!(yield* Effect.promise(() => onPath("redis-server")))) {
          return yield* new RedisServerError({
            message: `a cluster needs redis-server and redis-cli on PATH; ${installHelp}`
          })
        }
        const replicas = options.replicas ?? 0
        const count = (options.masters ?? 3) * (1 + replicas)
        const nodeTimeout = Math.round(Duration.toMillis(Duration.fromInputUnsafe(options.nodeTimeout ?? "2 seconds")))
        const dir = yield* tempDir("ers-cluster-")
        const nodes = yield* Effect.forEach(
          Array.from({ length: count }, (_, i) => i),
          (i) =>
            spawnNode(
              (port) => [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                `nodes-${i}-${port}.conf`,
                "--cluster-node-timeout",
                String(nodeTimeout),
                ...quickSync,
                "--dir",
                dir,
                // a file of its own: a replica keeps its master's data in it, and a restarted node loads it
                "--dbfilename",
                `dump-${i}-${port}.rdb`,
                ...(options.args ?? [])
              ],
              true,
              undefined,
              (port) => [join(dir, `dump-${i}-${port}.rdb`)]
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
              String(replicas),
              "--cluster-yes"
            ]),
          catch: failure("redis-cli --cluster create")
        })
        const view = awaitCondition("cluster not healthy", 30, clusterView(nodes))
        const awaitHealthy = Effect.andThen(view, awaitReplicasInSync(nodes))
        yield* awaitHealthy
        const masters = Effect.map(view, ({ masters }) => masters)
        const masterOf = (key: string) =>
          Effect.gen(function* () {
            const { states } = yield* view
            const any = (yield* runningNodes(nodes))[0] as Node
            const slot = Number((yield* ask(any, "cluster", "keyslot", key)).trim())
            const owner = states.find((state) => state.slots.some(([from, to]) => slot >= from && slot <= to))
            const node = nodes.find((candidate) => candidate.port === owner?.port)
            return node ?? (yield* new RedisServerError({ message: `no master serves slot ${slot}` }))
          })
        return {
          nodes,
          awaitHealthy: inRealTime(awaitHealthy),
          masters: inRealTime(masters),
          masterOf: (key: string) => inRealTime(masterOf(key))
        }
      })
    )
  )

/**
 * Redis behind Sentinel, for the scope of a layer: the master and replicas as started, the sentinels watching them,
 * and the master the sentinels name now (after a failover, another node).
 *
 * @since 0.1.0
 */
export class RedisSentinel extends Context.Service<
  RedisSentinel,
  {
    /** The name the sentinels know the master by. */
    readonly name: string
    /** The node started as the master. */
    readonly master: Node
    /** The nodes started as its replicas. */
    readonly replicas: ReadonlyArray<Node>
    /** The sentinels. */
    readonly sentinels: ReadonlyArray<Node>
    /** The first sentinel. */
    readonly sentinel: Node
    /** The node the sentinels name as the master now. */
    readonly currentMaster: Effect.Effect<Node, RedisServerError>
    /** Waits until the sentinels name a running master other than `previous` that knows it is the master. */
    readonly awaitFailover: (previous: Node) => Effect.Effect<Node, RedisServerError>
    /** Waits until every running replica is in sync with its master (after the master restarted, say). */
    readonly awaitReplicasInSync: Effect.Effect<void, RedisServerError>
  }
>()("effect-redis-streams/testing/RedisSentinel") {}

/**
 * A master with `replicas` replicas (default 0) watched by `sentinels` Sentinel processes (default 1; quorum: a
 * majority), which consider the master down after `downAfter` without an answer (default 2 seconds) and then fail
 * over to a replica; `args` are added to the command line of the master and the replicas (e.g.
 * `["--min-replicas-to-write", "1"]`, as production runs). Handed out once every sentinel knows the others and the
 * replicas are in sync.
 *
 * @since 0.1.0
 */
export const layerSentinel = (
  options: {
    readonly replicas?: number | undefined
    readonly sentinels?: number | undefined
    readonly downAfter?: Duration.Input | undefined
    readonly args?: ReadonlyArray<string> | undefined
  } = {}
): Layer.Layer<RedisSentinel, RedisServerError> =>
  Layer.effect(
    RedisSentinel,
    inRealTime(
      Effect.gen(function* () {
        const name = "mymaster"
        const sentinelCount = options.sentinels ?? 1
        const replicaCount = options.replicas ?? 0
        const downAfter = Math.round(Duration.toMillis(Duration.fromInputUnsafe(options.downAfter ?? "2 seconds")))
        // a replica keeps the data its master sent in a file of its folder: a temporary one, not the working folder
        const dir = yield* tempDir("ers-sentinel-")
        const dataOf = (port: number) => [
          ...quickSync,
          "--dir",
          dir,
          "--dbfilename",
          `dump-${port}.rdb`,
          ...(options.args ?? [])
        ]
        const dataFiles = (port: number) => [join(dir, `dump-${port}.rdb`)]
        const master = yield* spawnNode(dataOf, false, undefined, dataFiles)
        const replicas = yield* Effect.forEach(
          Array.from({ length: replicaCount }),
          () =>
            spawnNode(
              (port) => [...dataOf(port), "--replicaof", master.host, String(master.port)],
              false,
              undefined,
              dataFiles
            ),
          { concurrency: "unbounded" }
        )
        const sentinels = yield* Effect.forEach(
          Array.from({ length: sentinelCount }, (_, i) => i),
          (i) =>
            Effect.gen(function* () {
              const configFile = join(dir, `sentinel-${i}.conf`)
              const config = [
                `sentinel monitor ${name} ${master.host} ${master.port} ${Math.floor(sentinelCount / 2) + 1}`,
                `sentinel down-after-milliseconds ${name} ${downAfter}`,
                `sentinel failover-timeout ${name} ${Math.max(3 * downAfter, 3000)}`,
                `sentinel parallel-syncs ${name} 1`
              ]
              yield* Effect.tryPromise({
                try: () => writeFile(configFile, `${config.join("\n")}\n`),
                catch: failure("writing sentinel.conf")
              })
              return yield* spawnNode(() => ["--sentinel"], false, { configFile, readyText: "+monitor master" })
            }),
          { concurrency: "unbounded" }
        )
        const nodes = [master, ...replicas]
        yield* awaitReplicasInSync(nodes)
        const masterInfo = (sentinel: Node) => Effect.map(ask(sentinel, "sentinel", "master", name), Cli.sentinelMaster)
        // every sentinel sees the others and the replicas, so a failover can be voted on at once
        yield* awaitCondition(
          "sentinels not acquainted",
          30,
          Effect.map(Effect.forEach(sentinels, masterInfo), (infos) =>
            infos.every(
              (info) =>
                Number(info.get("num-other-sentinels")) === sentinelCount - 1 &&
                Number(info.get("num-slaves")) === replicaCount
            )
              ? true
              : undefined
          )
        )
        const currentMaster = Effect.gen(function* () {
          const sentinel = (yield* runningNodes(sentinels))[0] as Node
          const [, port] = (yield* ask(sentinel, "sentinel", "get-master-addr-by-name", name)).trim().split(/\s+/)
          const node = nodes.find((candidate) => candidate.port === Number(port))
          return node ?? (yield* new RedisServerError({ message: `the sentinels name an unknown master :${port}` }))
        })
        const awaitFailover = (previous: Node) =>
          awaitCondition(
            "no failover",
            60,
            Effect.gen(function* () {
              const current = yield* currentMaster
              if (current.port === previous.port || !(yield* current.running)) return undefined
              const role = Cli.fields(yield* ask(current, "info", "replication")).get("role")
              return role === "master" ? current : undefined
            })
          )
        return {
          name,
          master,
          replicas,
          sentinels,
          sentinel: sentinels[0] as Node,
          currentMaster: inRealTime(currentMaster),
          awaitFailover: (previous: Node) => inRealTime(awaitFailover(previous)),
          awaitReplicasInSync: inRealTime(awaitReplicasInSync(nodes))
        }
      })
    )
  )

/** The real clock as a layer: the client layers connect, time out and reconnect in real time. */
const realTime = Layer.succeed(Clock.Clock, realClock)

/**
 * A `RedisClient` (and `effect/persistence` `Redis`) connected to the `RedisServer` in context.
 *
 * @since 0.1.0
 */
export const layerClient = (
  options: RedisClient.CommonOptions = {}
): Layer.Layer<RedisClient.RedisClient | PersistenceRedis.Redis, RedisError, RedisServer> =>
  Layer.unwrap(
    Effect.map(RedisServer, (node) => RedisClient.layer({ ...options, url: node.url }).pipe(Layer.provide(realTime)))
  )

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
      RedisClient.layerCluster({ ...options, nodes: cluster.nodes.map(({ host, port }) => ({ host, port })) }).pipe(
        Layer.provide(realTime)
      )
    )
  )

let prefixCounter = 0

/**
 * A key prefix no other test uses: `label`, the process id, a counter and a random part, ending in `:`. On an
 * external server, the keys whose names contain it are deleted when the last layer using the server closes.
 *
 * @since 0.1.0
 */
export const uniquePrefix = (label = "test"): string => {
  const token = `${process.pid}-${++prefixCounter}-${Math.random().toString(36).slice(2, 8)}:`
  handedOut.push(token)
  return `${label}:${token}`
}
