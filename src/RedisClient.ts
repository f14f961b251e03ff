/**
 * The Redis connection of an application, as a `Layer`.
 *
 * Nothing else in this library creates a Redis client, nor knows the driver underneath (ioredis): every service takes
 * `RedisClient` from its context and talks to Redis through it. One layer holds three kinds of connection:
 * - the shared connection: every plain command (`send`, `sendBytes`), pipeline (`pipeline`, grouped by node),
 *   transaction (`atomic`), script (`eval` and its forms) and scan (`scan`, every master); never used for blocking
 *   commands or WATCH;
 * - dedicated connections: a bounded pool for `WATCH … EXEC` sessions (`watching`) and blocking commands; a
 *   connection whose use failed or was interrupted is closed, never handed out again;
 * - one subscriber connection (`subscribe`, `listen`) shared by every pub/sub subscription, resubscribing after a
 *   reconnect.
 *
 * The escape hatch, for an application's own ioredis calls (never used by this library's capabilities, which the lint
 * script checks): `client` (the shared connection), `use` (a call on it, its failure classified), `dedicated` (a
 * connection of the pool) and `classify` (any ioredis failure as a `RedisError`).
 *
 * The same layer also provides `effect/persistence`'s `Redis` service, so Effect's own Redis-backed modules
 * (RateLimiter, CircuitBreaker store, PersistedQueue) run on these connections.
 *
 * @since 0.1.0
 */

import {
  Config,
  Context,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Option,
  Pool,
  type Queue,
  Redacted,
  Result,
  Schedule,
  type Scope
} from "effect"
import * as PersistenceRedis from "effect/persistence/Redis"
import {
  type Client,
  type ConnectionSpec,
  close,
  liveTopology,
  noteTimeout,
  onFailover,
  open,
  type Topology
} from "./internal/redis/connection.js"
import * as Errors from "./internal/redis/errors.js"
import { redisError } from "./internal/reasons.js"
import * as Commands from "./internal/redis/commands.js"
import * as Idempotent from "./internal/redis/idempotent.js"
import * as Lua from "./internal/redis/lua.js"
import { remembered } from "./internal/memo.js"
import * as RequestIds from "./internal/requestIds.js"
import * as Persistence from "./internal/redis/persistence.js"
import type * as Pipelined from "./internal/redis/pipelined.js"
import * as PubSub from "./internal/redis/pubsub.js"
import * as Scan from "./internal/redis/scan.js"
import * as Watch from "./internal/redis/watch.js"
import { slotOf } from "./internal/slot.js"
import * as Spec from "./internal/redis/spec.js"
import { Closed, OutcomeUnknown, PoolExhausted, RedisError } from "./RedisError.js"
import type * as RedisScript from "./RedisScript.js"

/**
 * A connected ioredis client: `Redis` (single node or Sentinel) or `Cluster`. Both offer the same typed commands.
 *
 * @since 0.1.0
 */
export type { Client } from "./internal/redis/connection.js"
export { RedisError } from "./RedisError.js"

/**
 * A message published on a channel a subscription listens to.
 *
 * @since 0.1.0
 */
export interface PubSubMessage {
  readonly _tag: "Message"
  readonly channel: string
  readonly message: string
}

/**
 * The subscriber connection came back after a drop: messages published meanwhile were lost.
 *
 * @since 0.1.0
 */
export interface PubSubReconnected {
  readonly _tag: "Reconnected"
}

/**
 * What a pub/sub subscription receives: a `Message`, or `Reconnected` after the subscriber connection came back
 * (whatever was published while it was down is lost: resynchronise from a durable record).
 *
 * @since 0.1.0
 */
export type PubSubEvent = PubSubMessage | PubSubReconnected

/**
 * True when a failed call may still have been applied: its reply was lost (a timeout, a connection that dropped while
 * the call was on its way), as opposed to a refusal by the server or a call that was never sent.
 *
 * @since 0.1.0
 */
export const mayHaveRun = (error: RedisError): boolean => Errors.mayHaveRun(error)

/**
 * How the client reaches Redis.
 *
 * @since 0.1.0
 */
export type Mode = "single" | "sentinel" | "cluster"

/**
 * The `RedisClient` service.
 *
 * @since 0.1.0
 */
export interface Service {
  /** How this client reaches Redis. */
  readonly mode: Mode
  /** The shared connection. Fine for any non-blocking command and pipeline; never for blocking commands or WATCH. */
  readonly client: Client
  /** Runs `f` on the shared connection; a rejection becomes a classified `RedisError` for operation `op`. */
  readonly use: <A>(op: string, f: (client: Client) => Promise<A>) => Effect.Effect<A, RedisError>
  /**
   * A dedicated connection from the bounded pool, for blocking commands and WATCH transactions, held until the scope
   * closes. When the scope closes with a failure or an interruption the connection is closed, not reused.
   */
  readonly dedicated: Effect.Effect<Client, RedisError, Scope.Scope>
  /**
   * Subscribes to `channels` on the shared subscriber connection. When this returns, Redis has confirmed the
   * subscription: nothing published afterwards is missed. The subscription ends with the scope.
   */
  readonly subscribe: (
    ...channels: ReadonlyArray<string>
  ) => Effect.Effect<Queue.Dequeue<PubSubEvent>, RedisError, Scope.Scope>
  /**
   * Calls `listener` for every event of `channels` (a message, or `Reconnected`) on the shared subscriber connection,
   * confirmed by Redis when this returns, until the scope closes. The listener runs synchronously in the connection's
   * event handler: keep it short (e.g. offer to a queue).
   */
  readonly listen: (
    channels: ReadonlyArray<string>,
    listener: (event: PubSubEvent) => void
  ) => Effect.Effect<void, RedisError, Scope.Scope>
  /**
   * Calls `listener` each time the shared connection is ready again after it dropped (on a Cluster, also each time
   * it learned the topology anew, as after a failover), until the scope closes: the moment to try again what failed
   * while Redis was away.
   */
  readonly onReconnect: (listener: () => void) => Effect.Effect<void, never, Scope.Scope>
  /**
   * When a call on the shared connection last failed in a way that can pass (a timeout, a dropped connection, a
   * failover), or the client last saw a failover, in ms since the epoch; 0 when none has. A reader judging whether a producer died asks it: right after a
   * failover the new master may hold an older heartbeat.
   */
  readonly lastTroubleAt: () => number
  /**
   * The command timeout of the shared connection (none: undefined). Dedicated connections have none (their blocking
   * commands wait as long as told); a capability bounds its other calls on them with this.
   */
  readonly commandTimeout: Duration.Duration | undefined
  /**
   * Runs a script (`EVALSHA`, falling back to `EVAL` on `NOSCRIPT`); a failure is a classified `RedisError` whose
   * `op` is the script's name. On a Cluster the call goes to the node of its keys.
   */
  readonly eval: <Keys extends ReadonlyArray<string>, Args extends ReadonlyArray<RedisScript.Arg>, Reply>(
    script: RedisScript.RedisScript<Keys, Args, Reply>,
    keys: Keys,
    args: Args
  ) => Effect.Effect<Reply, RedisError>
  /** `eval` whose reply keeps its strings as Buffers: a script that returns binary data (stream entries). */
  readonly evalBytes: <Keys extends ReadonlyArray<string>, Args extends ReadonlyArray<RedisScript.Arg>, Reply>(
    script: RedisScript.RedisScript<Keys, Args, Reply>,
    keys: Keys,
    args: Args
  ) => Effect.Effect<Reply, RedisError>
  /**
   * Runs one script over many key/argument sets with one pipelined round trip per node (on a Cluster the calls are
   * grouped by the node of their first key, so calls whose keys live on different nodes are fine). Each call
   * succeeds or fails on its own; the result holds one `Result` per call, in order.
   */
  readonly evalMany: <Keys extends ReadonlyArray<string>, Args extends ReadonlyArray<RedisScript.Arg>, Reply>(
    script: RedisScript.RedisScript<Keys, Args, Reply>,
    calls: ReadonlyArray<readonly [keys: Keys, args: Args]>
  ) => Effect.Effect<ReadonlyArray<Result.Result<Reply, RedisError>>>
  /**
   * Runs a write script so that it is applied once however often it is sent: the script's reply is remembered in a
   * marker key (in the slot of its keys, for `remember`, default twice `retryWithin` and at least 10 s) under a
   * request id, and a retry finds it. Retryable failures are retried with backoff (50 ms to 500 ms) for up to
   * `retryWithin` (default: no retry); pass the same `requestId` to make your own retries idempotent too. When the
   * last failure is retryable and an attempt's reply was lost, it fails `OutcomeUnknown`: the write may have been
   * applied.
   */
  readonly evalIdempotent: <Keys extends ReadonlyArray<string>, Args extends ReadonlyArray<RedisScript.Arg>, Reply>(
    script: RedisScript.RedisScript<Keys, Args, Reply>,
    keys: Keys,
    args: Args,
    options?: IdempotentOptions
  ) => Effect.Effect<Reply, RedisError | OutcomeUnknown>
  /**
   * Sends one command on the shared connection (on a Cluster, to the node of its key), by its name:
   * `send("XACK", key, group, id)`. The reply is what Redis sends, in RESP2's shape under either protocol (a map
   * reply, such as `HGETALL`'s, is a flat `[field, value, …]` list); a failure is a classified `RedisError` whose
   * `op` is the command's name in lower case.
   */
  readonly send: <A = unknown>(command: string, ...args: ReadonlyArray<RedisScript.Arg>) => Effect.Effect<A, RedisError>
  /** `send` whose reply keeps its strings as Buffers: binary data (stream entries' payloads). */
  readonly sendBytes: <A = unknown>(
    command: string,
    ...args: ReadonlyArray<RedisScript.Arg>
  ) => Effect.Effect<A, RedisError>
  /**
   * Sends commands pipelined: one pipeline per node (on a Cluster, grouped by each command's `key`; a group of one
   * command goes alone). Each command succeeds or fails on its own; the result holds one `Result` per command, in
   * order, its failure classified.
   */
  readonly pipeline: (
    commands: ReadonlyArray<Command>
  ) => Effect.Effect<ReadonlyArray<Result.Result<unknown, RedisError>>>
  /**
   * Runs commands in one `MULTI … EXEC` (on a Cluster every key must share a slot): none of them sees another client's
   * write in between. One `Result` per command, in order; the transaction failing as a whole (the connection dropped)
   * fails.
   */
  readonly atomic: (
    commands: ReadonlyArray<Command>
  ) => Effect.Effect<ReadonlyArray<Result.Result<unknown, RedisError>>, RedisError>
  /**
   * One page of the keys matching `options` on every master (each of a Cluster's in turn), from `cursor` (the start
   * when undefined); see {@link ScanPage}. Never `KEYS`.
   */
  readonly scan: (options: ScanOptions, cursor?: string | undefined) => Effect.Effect<ScanPage, RedisError>
  /**
   * A WATCH transaction session over `keys` on a dedicated connection, held until the scope closes (see
   * {@link WatchSession}). On a Cluster every key must share a slot: keys of several slots fail `CrossSlot` before
   * anything is sent.
   */
  readonly watching: (keys: ReadonlyArray<string>) => Effect.Effect<WatchSession, RedisError, Scope.Scope>
  /** Turns a failure of a direct `client` call (e.g. a pipeline entry) into a classified, scrubbed `RedisError`. */
  readonly classify: (cause: unknown, op: string) => RedisError
}

/**
 * Optimistic transactions on one connection: `read` watches the session's keys and reads them, `commit` writes with
 * `MULTI … EXEC` unless a watched key changed since. Every call is bounded by the command timeout. A call that fails
 * closes the connection (it may hold watches or a reply still on its way): the session's later calls fail too, and the
 * pool never hands the connection out again.
 *
 * @since 0.1.0
 */
export interface WatchSession {
  /** WATCHes the keys (again) and sends `commands` in the same round trip; their replies, in order. */
  readonly read: (commands: ReadonlyArray<Command>) => Effect.Effect<ReadonlyArray<unknown>, RedisError>
  /**
   * Sends `commands` in `MULTI … EXEC`: one `Result` per command, or `None` when a watched key changed since the
   * last `read` (nothing was applied). A lost reply fails `OutcomeUnknown`: the commands may have been applied. The
   * watches end either way.
   */
  readonly commit: (
    commands: ReadonlyArray<Command>
  ) => Effect.Effect<Option.Option<ReadonlyArray<Result.Result<unknown, RedisError>>>, RedisError | OutcomeUnknown>
  /** Ends the watches without a commit. */
  readonly unwatch: Effect.Effect<void>
}

/**
 * A command of `pipeline` or `atomic`: its name, its arguments (keys included), and the key that decides, on a
 * Cluster, which node runs it.
 *
 * @since 0.1.0
 */
export interface Command {
  readonly name: string
  readonly args: ReadonlyArray<RedisScript.Arg>
  readonly key: string
}

/**
 * The reply of `XRANGE` and `XREVRANGE`: each entry's id and its fields and values, alternating.
 *
 * @since 0.1.0
 */
export type StreamEntries = ReadonlyArray<readonly [id: string, fields: ReadonlyArray<string>]>

/**
 * What `scan` looks for and how much one page may cost.
 *
 * @since 0.1.0
 */
export interface ScanOptions {
  /** The `MATCH` glob pattern. */
  readonly match: string
  /** The `TYPE` of the keys (`stream`, `hash`, `set`…). */
  readonly type: string
  /** The `COUNT` hint of each call. */
  readonly count: number
  /** Keys after which the page ends. */
  readonly limit: number
  /** SCAN calls after which the page ends, found keys or not. */
  readonly maxCalls: number
}

/**
 * One page of `scan`: its keys (each once within the page; SCAN may return a key again on a later page) and the
 * cursor of the next page, `null` once every master has been scanned. A key present during the whole scan is
 * returned; one added or removed meanwhile may or may not be; a failover between two pages may skip or repeat part of
 * a node.
 *
 * @since 0.1.0
 */
export interface ScanPage {
  readonly keys: ReadonlyArray<string>
  readonly cursor: string | null
}

/**
 * True for a cursor `scan` hands out (check one that comes from outside, such as a request's query, before use).
 *
 * @since 0.1.0
 */
export const isScanCursor = (cursor: string): boolean => Scan.isCursor(cursor)

/**
 * Options of `evalIdempotent`.
 *
 * @since 0.1.0
 */
export interface IdempotentOptions {
  /** The request id; the same id is applied once. Default: a new id per call, unique across processes. */
  readonly requestId?: string | undefined
  /** How long retryable failures are retried. Default: not at all. */
  readonly retryWithin?: Duration.Input | undefined
  /** How long the reply is remembered. Default: twice `retryWithin`, at least 10 seconds. */
  readonly remember?: Duration.Input | undefined
}

/**
 * The Redis connection service. Build it with {@link layer}, {@link layerCluster}, {@link layerSentinel} or
 * {@link layerConfig}.
 *
 * @since 0.1.0
 */
export class RedisClient extends Context.Service<RedisClient, Service>()("effect-redis-streams/RedisClient") {}

/**
 * Options every connection mode shares.
 *
 * @since 0.1.0
 */
export interface CommonOptions {
  /** ACL user name (Redis 6+). */
  readonly username?: string | undefined
  /** Password; give it as `Redacted` so it never shows in logs. It never appears in a `RedisError`. */
  readonly password?: Redacted.Redacted<string> | string | undefined
  /** `true` for TLS with Node's defaults, or Node TLS options (CA, client certificate, servername…). */
  readonly tls?: boolean | import("node:tls").ConnectionOptions | undefined
  /** How long building the layer may wait for the server. Default 5 seconds. */
  readonly connectTimeout?: Duration.Input | undefined
  /**
   * A command on the shared or the subscriber connection with no reply within this time fails with a `Timeout`
   * error (a server that stops answering never hangs a call). Default 5 seconds; `Duration.infinity` for none.
   * Dedicated connections have none: their blocking commands wait as long as they are told to.
   */
  readonly commandTimeout?: Duration.Input | undefined
  /**
   * Delays between reconnect attempts after a connection drop. Default: exponential from 50 ms, capped at 500 ms,
   * jittered, forever. When the schedule ends the client stops reconnecting and every
   * command fails `Connection`.
   */
  readonly reconnectSchedule?: Schedule.Schedule<unknown> | undefined
  /** RESP protocol version. Default 2; replies are parsed the same way under both. */
  readonly protocol?: 2 | 3 | undefined
  /** Name shown in `CLIENT LIST`. */
  readonly connectionName?: string | undefined
  /** Size of the dedicated-connection pool (blocking commands, WATCH). Default 32. */
  readonly maxDedicatedConnections?: number | undefined
  /**
   * Build the layer without waiting for Redis: the connections are made (and remade) in the background, and calls fail
   * with a retryable `Connection` error until Redis answers, so an application starts while Redis is down (an
   * `EventSink` buffers meanwhile). Default false: building waits up to `connectTimeout` and fails typed.
   */
  readonly connectInBackground?: boolean | undefined
}

/**
 * Options of a single-node connection. `url` (`redis://user:pass@host:port/db`, `rediss://` for TLS) and the explicit
 * fields combine; an explicit field wins. Default `127.0.0.1:6379`.
 *
 * @since 0.1.0
 */
export interface Options extends CommonOptions {
  readonly url?: string | Redacted.Redacted<string> | undefined
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly db?: number | undefined
}

/**
 * Options of a Redis Cluster connection: seed nodes as `host:port` strings or `{ host, port }`.
 *
 * @since 0.1.0
 */
export interface ClusterOptions extends CommonOptions {
  readonly nodes: ReadonlyArray<string | { readonly host: string; readonly port: number }>
}

/**
 * Options of a Sentinel-managed connection: the sentinels and the master's name.
 *
 * @since 0.1.0
 */
export interface SentinelOptions extends CommonOptions {
  readonly sentinels: ReadonlyArray<string | { readonly host: string; readonly port: number }>
  readonly name: string
  readonly sentinelUsername?: string | undefined
  readonly sentinelPassword?: Redacted.Redacted<string> | string | undefined
  /**
   * How long a sentinel may take to name the master before the next sentinel is asked (a sentinel on a hung host
   * accepts connections but never answers). Default 1 second; `Duration.infinity` or zero for none.
   */
  readonly sentinelTimeout?: Duration.Input | undefined
  readonly db?: number | undefined
}

/** The shared client's events after which failed calls may succeed again: a reconnect; a Cluster's new topology. */
const reconnectEvents = ["ready", "refresh"] as const

/** Whether a client's layer is closing; once it is, every call fails `Closed` instead of trying Redis. */
interface Lifecycle {
  closed: boolean
  /** When a call last failed retryably, or the client saw a failover (ms since the epoch). */
  troubleAt: number
}

/** A command's name as the `op` of its errors (lower case), made once per name rather than on every call. */
const opOf = remembered((command: string) => command.toLowerCase())

const closedError = (op: string) =>
  new RedisError({ op, reason: new Closed({ message: "the RedisClient layer is closed" }) })

/**
 * Runs `f` on the shared connection as an Effect, its failure classified; with a `cut`, a reply later than `cut.ms`
 * fails `cut.late()` (one timer, nothing forked), and the reply when it comes is ignored.
 */
const makeUse =
  (client: Client, classified: (cause: unknown, op: string) => RedisError, lifecycle: Lifecycle) =>
  <A>(op: string, f: (client: Client) => Promise<A>, cut?: Idempotent.Cut): Effect.Effect<A, RedisError> =>
    Effect.suspend(() => {
      if (lifecycle.closed) return Effect.fail(closedError(op))
      if (cut === undefined) return Effect.tryPromise({ try: () => f(client), catch: (cause) => classified(cause, op) })
      return Effect.callback<A, RedisError>((resume) => {
        let waiting = true
        const timer = setTimeout(() => {
          waiting = false
          resume(Effect.fail(cut.late()))
        }, cut.ms)
        const settle = (outcome: Effect.Effect<A, RedisError>) => {
          if (!waiting) return
          waiting = false
          clearTimeout(timer)
          resume(outcome)
        }
        f(client).then(
          (reply) => settle(Effect.succeed(reply)),
          (cause: unknown) => settle(Effect.suspend(() => Effect.fail(classified(cause, op))))
        )
        return Effect.sync(() => {
          waiting = false
          clearTimeout(timer)
        })
      })
    })

/** The outcome of the `index`-th of `commands` as a `Result`, its failure classified under the command's name. */
const resultOf =
  (commands: ReadonlyArray<Command>, classified: (cause: unknown, op: string) => RedisError) =>
  ([error, reply]: Pipelined.Outcome<unknown>, index: number): Result.Result<unknown, RedisError> =>
    error === undefined
      ? Result.succeed(reply)
      : Result.fail(classified(error, Commands.nameOf(commands, index, "pipeline")))

/** Each command's `Result` of a pipeline; every command fails with the pipeline's failure when it failed whole. */
const outcomesOf =
  (commands: ReadonlyArray<Command>, classified: (cause: unknown, op: string) => RedisError) =>
  (
    sent: Result.Result<ReadonlyArray<Pipelined.Outcome<unknown>>, RedisError>
  ): ReadonlyArray<Result.Result<unknown, RedisError>> =>
    Result.isFailure(sent)
      ? commands.map(() => Result.fail(sent.failure))
      : sent.success.map(resultOf(commands, classified))

/**
 * The classifier of a client's failures (scrubbing `secrets`), which also notes what they tell of the servers: when
 * a call last failed retryably, and a timeout (a server that may hang while a replica takes over, see `noteTimeout`).
 */
const classifierOf =
  (client: Client, secrets: ReadonlyArray<string>, lifecycle: Lifecycle) =>
  (cause: unknown, op: string): RedisError => {
    const error = Errors.classify(cause, op, secrets)
    if (error.isRetryable) lifecycle.troubleAt = Date.now()
    if (error.reason._tag === "Timeout") noteTimeout(client)
    return error
  }

/**
 * The pool of dedicated connections. `get` waits at most the connect timeout for a free connection, then fails
 * `PoolExhausted` naming the limit. Closing the layer first interrupts the fibers that hold connections (a blocked
 * `BLPOP` would otherwise hold the pool's shutdown forever), then disconnects whatever is still held.
 */
const makeDedicatedPool = (spec: ConnectionSpec, topology: Topology, max: number, lifecycle: Lifecycle) =>
  Effect.gen(function* () {
    const pool: Pool.Pool<Client, RedisError> = yield* Pool.makeWithTTL({
      acquire: Effect.acquireRelease(open(spec, "dedicated", topology), (client) =>
        close(client, { graceful: false })
      ).pipe(
        // a dedicated connection that dropped is taken out of the pool at once
        Effect.tap((client) =>
          Effect.sync(() => client.once("end", () => Effect.runFork(Pool.invalidate(pool, client))))
        )
      ),
      min: 0,
      max,
      timeToLive: "30 seconds"
    })
    const holders = new Map<Fiber.Fiber<unknown, unknown>, Client>()
    // runs before the pool's shutdown, which waits for every connection in use
    yield* Effect.addFinalizer(() =>
      Effect.withFiber((closing) =>
        Fiber.interruptAll(Array.from(holders.keys()).filter((holder) => holder !== closing))
      ).pipe(
        Effect.timeoutOption("2 seconds"),
        Effect.andThen(Effect.sync(() => holders.forEach((client) => client.disconnect())))
      )
    )
    const exhausted = new RedisError({
      op: "dedicated",
      reason: new PoolExhausted({
        limit: max,
        message: `all ${max} dedicated connections are in use (maxDedicatedConnections) and none came free within ${Duration.format(spec.common.connectTimeout)}`
      })
    })
    return Effect.gen(function* () {
      if (lifecycle.closed) return yield* closedError("dedicated")
      const fiber = yield* Effect.fiber
      const client = yield* Pool.get(pool).pipe(
        Effect.timeoutOrElse({ duration: spec.common.connectTimeout, orElse: () => Effect.fail(exhausted) })
      )
      holders.set(fiber, client)
      yield* Effect.addFinalizer((exit) =>
        Effect.andThen(
          Effect.sync(() => holders.delete(fiber)),
          Exit.isSuccess(exit) && client.status === "ready" ? Effect.void : Pool.invalidate(pool, client)
        )
      )
      if (client.status !== "ready") {
        return yield* Effect.fail(
          Errors.classify(new Error("Connection is closed (dedicated connection dropped)"), "dedicated")
        )
      }
      return client
    })
  })

/**
 * Connects with a resolved spec and builds the service plus `effect/persistence`'s `Redis`, all scoped.
 *
 * @since 0.1.0
 */
const makeContext = (spec: ConnectionSpec, maxDedicated: number) =>
  Effect.gen(function* () {
    const layerContext = yield* Effect.context<never>()
    const client = yield* Effect.acquireRelease(open(spec, "shared"), (c) => close(c))
    const topology = liveTopology(client)
    const lifecycle: Lifecycle = { closed: false, troubleAt: 0 }
    onFailover(client, () => (lifecycle.troubleAt = Date.now()))
    const dedicated = yield* makeDedicatedPool(spec, topology, maxDedicated, lifecycle)
    const secrets = spec.common.secrets
    const hub = yield* PubSub.make(
      // opened by the first subscriber, in the layer's context: what the connection says later goes to its logger
      Effect.acquireRelease(Effect.provideContext(open(spec, "subscriber", topology), layerContext), (c) => close(c)),
      secrets
    )
    const classified = classifierOf(client, secrets, lifecycle)
    const use = makeUse(client, classified, lifecycle)
    const service: Service = {
      mode: spec.kind,
      client,
      use,
      eval: (script, keys, args) => use(script.name, (c) => Lua.runPromise(c, script, keys, args)),
      evalBytes: (script, keys, args) => use(script.name, (c) => Lua.runPromise(c, script, keys, args, "bytes")),
      evalIdempotent: (script, keys, args, options = {}) =>
        Effect.suspend(() => {
          const within = Duration.fromInputUnsafe(options.retryWithin ?? 0)
          const remember =
            options.remember === undefined
              ? Math.max(2 * Duration.toMillis(within), 10_000)
              : Duration.toMillis(Duration.fromInputUnsafe(options.remember))
          const marker = Lua.markerKey(keys[0] ?? "", options.requestId ?? RequestIds.next(), remember)
          const once = Lua.idempotent(script)
          const withMarker = [...keys, marker]
          return Idempotent.run({
            op: script.name,
            within,
            attempt: (cut) => use(script.name, (c) => Lua.runPromise(c, once, withMarker, args), cut)
          })
        }),
      evalMany: (script, calls) =>
        Effect.map(
          Effect.result(use(script.name, (c) => Lua.runMany(c, script, calls))),
          Result.match({
            onFailure: (error) => calls.map(() => Result.fail(error)),
            onSuccess: (outcomes) =>
              outcomes.map(([error, reply]) =>
                error === undefined
                  ? Result.succeed(reply as NonNullable<typeof reply>)
                  : Result.fail(classified(error, script.name))
              )
          })
        ),
      send: <A>(command: string, ...args: ReadonlyArray<RedisScript.Arg>) =>
        use(opOf(command), (c) => Commands.send(c, command, args, "text") as Promise<A>),
      sendBytes: <A>(command: string, ...args: ReadonlyArray<RedisScript.Arg>) =>
        use(opOf(command), (c) => Commands.send(c, command, args, "bytes") as Promise<A>),
      pipeline: (commands) =>
        Effect.map(
          Effect.result(use("pipeline", (c) => Commands.sendPipelined(c, commands))),
          outcomesOf(commands, classified)
        ),
      atomic: (commands) =>
        Effect.map(
          use("multi", (c) => Commands.sendAtomic(c, commands)),
          (outcomes) => outcomes.map(resultOf(commands, classified))
        ),
      scan: (options, cursor) => use("scan", (c) => Scan.scanPage(c, options, cursor)),
      watching: (keys) =>
        spec.kind === "cluster" && new Set(keys.map(slotOf)).size > 1
          ? Effect.fail(
              redisError(
                "watch",
                "CrossSlot",
                `keys ${keys.join(", ")} live in different Cluster slots (WATCH needs one)`
              )
            )
          : Effect.map(dedicated, (connection) =>
              Watch.session(connection, {
                keys,
                classify: classifierOf(connection, secrets, lifecycle),
                timeout: spec.common.commandTimeout
              })
            ),
      dedicated,
      subscribe: (...channels) => hub.subscribe(channels),
      onReconnect: (listener) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            for (const event of reconnectEvents) client.on(event, listener)
          }),
          () =>
            Effect.sync(() => {
              for (const event of reconnectEvents) client.off(event, listener)
            })
        ),
      listen: hub.listen,
      lastTroubleAt: () => lifecycle.troubleAt,
      commandTimeout: spec.common.commandTimeout,
      classify: classified
    }
    const redis = yield* Persistence.make({
      shared: client,
      use: (connection) => makeUse(connection, classifierOf(connection, secrets, lifecycle), lifecycle),
      hub,
      connect: open(spec, "dedicated", topology),
      maxConnections: maxDedicated
    })
    // the first finalizer to run: from now on every call fails `Closed` (a loop left running stops retrying)
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        lifecycle.closed = true
      })
    )
    return Context.make(RedisClient, service).pipe(Context.add(PersistenceRedis.Redis, redis))
  })

const fromSpec = (build: () => ConnectionSpec, maxDedicated: number | undefined) =>
  Layer.effectContext(
    Effect.try({ try: build, catch: (cause) => Errors.classify(cause, "configure") }).pipe(
      Effect.flatMap((spec) => makeContext(spec, maxDedicated ?? 32))
    )
  )

/**
 * A client of one Redis server. Connects while the layer builds and fails with a typed `RedisError` when the server
 * cannot be reached within `connectTimeout`; closing the layer quits and waits for the sockets to end.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<RedisClient | PersistenceRedis.Redis, RedisError> =>
  fromSpec(() => Spec.single(options), options.maxDedicatedConnections)

/**
 * A client of a Redis Cluster, from its seed nodes. Commands are routed by slot; multi-key commands need keys with a
 * shared hash tag (`{…}`), otherwise they fail with a `CrossSlot` error.
 *
 * @since 0.1.0
 */
export const layerCluster = (options: ClusterOptions): Layer.Layer<RedisClient | PersistenceRedis.Redis, RedisError> =>
  fromSpec(() => Spec.cluster(options), options.maxDedicatedConnections)

/**
 * A client of the master that the given sentinels know by `name`; follows failovers.
 *
 * @since 0.1.0
 */
export const layerSentinel = (
  options: SentinelOptions
): Layer.Layer<RedisClient | PersistenceRedis.Redis, RedisError> =>
  fromSpec(() => Spec.sentinel(options), options.maxDedicatedConnections)

/**
 * Connection settings read from configuration, as {@link config} produces them.
 *
 * @since 0.1.0
 */
export type ConnectionConfig =
  | { readonly _tag: "Single"; readonly options: Options }
  | { readonly _tag: "Cluster"; readonly options: ClusterOptions }
  | { readonly _tag: "Sentinel"; readonly options: SentinelOptions }

/** A duration given as milliseconds (`1000`) or as text (`5 seconds`). */
const duration = (name: string) =>
  Config.Int(name).pipe(
    Config.map(Duration.millis),
    Config.orElse(() => Config.Duration(name)),
    Config.option
  )

const defaultUrlText = "redis://127.0.0.1:6379"
const defaultUrl = Redacted.make(defaultUrlText)

const list = (name: string) =>
  Config.String(name).pipe(
    Config.map((text) =>
      text
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0)
    ),
    Config.option
  )

/**
 * Connection settings from the environment (or any `ConfigProvider`):
 *
 * | variable | meaning | default |
 * | --- | --- | --- |
 * | `REDIS_URL` | `redis://[user:pass@]host[:port][/db]`, `rediss://` for TLS | `redis://127.0.0.1:6379` |
 * | `REDIS_USERNAME`, `REDIS_PASSWORD` | ACL credentials (override the URL's) | none |
 * | `REDIS_DB` | database number | URL's or 0 |
 * | `REDIS_TLS` | `true` to use TLS | URL scheme |
 * | `REDIS_CLUSTER_NODES` | comma-separated `host:port` seeds: Cluster mode | none |
 * | `REDIS_SENTINELS`, `REDIS_SENTINEL_NAME` | comma-separated sentinels and master name: Sentinel mode | none |
 * | `REDIS_SENTINEL_PASSWORD` | password of the sentinels | none |
 * | `REDIS_SENTINEL_TIMEOUT` | how long a sentinel may take to name the master | 1 s |
 * | `REDIS_CONNECT_TIMEOUT`, `REDIS_COMMAND_TIMEOUT` | milliseconds, or durations such as `5 seconds` | 5 s, 5 s |
 * | `REDIS_PROTOCOL` | `2` or `3` | 2 |
 * | `REDIS_MAX_DEDICATED_CONNECTIONS` | pool size for blocking commands | 32 |
 * | `REDIS_CONNECT_IN_BACKGROUND` | `true`: start without waiting for Redis | false |
 *
 * @since 0.1.0
 */
export const config: Config.Config<ConnectionConfig> = Config.all({
  url: Config.Redacted("REDIS_URL").pipe(Config.option),
  username: Config.String("REDIS_USERNAME").pipe(Config.option),
  password: Config.Redacted("REDIS_PASSWORD").pipe(Config.option),
  db: Config.Int("REDIS_DB").pipe(Config.option),
  tls: Config.Boolean("REDIS_TLS").pipe(Config.option),
  clusterNodes: list("REDIS_CLUSTER_NODES"),
  sentinels: list("REDIS_SENTINELS"),
  sentinelName: Config.String("REDIS_SENTINEL_NAME").pipe(Config.option),
  sentinelPassword: Config.Redacted("REDIS_SENTINEL_PASSWORD").pipe(Config.option),
  sentinelTimeout: duration("REDIS_SENTINEL_TIMEOUT"),
  connectTimeout: duration("REDIS_CONNECT_TIMEOUT"),
  commandTimeout: duration("REDIS_COMMAND_TIMEOUT"),
  protocol: Config.Literals([2, 3], "REDIS_PROTOCOL").pipe(Config.option),
  maxDedicatedConnections: Config.Int("REDIS_MAX_DEDICATED_CONNECTIONS").pipe(Config.option),
  connectInBackground: Config.Boolean("REDIS_CONNECT_IN_BACKGROUND").pipe(Config.option)
}).pipe(
  Config.map((c): ConnectionConfig => {
    const common: CommonOptions = {
      username: Option.getOrUndefined(c.username),
      password: Option.getOrUndefined(c.password),
      tls: Option.getOrUndefined(c.tls),
      connectTimeout: Option.getOrUndefined(c.connectTimeout),
      commandTimeout: Option.getOrUndefined(c.commandTimeout),
      protocol: Option.getOrUndefined(c.protocol),
      maxDedicatedConnections: Option.getOrUndefined(c.maxDedicatedConnections),
      connectInBackground: Option.getOrUndefined(c.connectInBackground)
    }
    if (Option.isSome(c.clusterNodes)) return { _tag: "Cluster", options: { ...common, nodes: c.clusterNodes.value } }
    if (Option.isSome(c.sentinels)) {
      return {
        _tag: "Sentinel",
        options: {
          ...common,
          sentinels: c.sentinels.value,
          name: Option.getOrElse(c.sentinelName, () => "mymaster"),
          sentinelPassword: Option.getOrUndefined(c.sentinelPassword),
          sentinelTimeout: Option.getOrUndefined(c.sentinelTimeout),
          db: Option.getOrUndefined(c.db)
        }
      }
    }
    return {
      _tag: "Single",
      options: {
        ...common,
        url: Option.getOrElse(c.url, () => defaultUrl),
        db: Option.getOrUndefined(c.db)
      }
    }
  })
)

/**
 * A client configured from {@link config} (by default the `REDIS_*` environment variables), in whichever mode they
 * select. Fails with a `ConfigError` for invalid settings, a `RedisError` when the server cannot be reached.
 *
 * @since 0.1.0
 */
export const layerConfig = (
  connection: Config.Config<ConnectionConfig> = config
): Layer.Layer<RedisClient | PersistenceRedis.Redis, RedisError | Config.ConfigError> =>
  Layer.unwrap(
    Effect.map(connection, (c) => {
      switch (c._tag) {
        case "Cluster":
          return fromSpec(
            () => Spec.cluster(c.options, Spec.configOrigin("REDIS_CLUSTER_NODES")),
            c.options.maxDedicatedConnections
          )
        case "Sentinel":
          return fromSpec(
            () => Spec.sentinel(c.options, Spec.configOrigin("REDIS_SENTINELS")),
            c.options.maxDedicatedConnections
          )
        case "Single": {
          const unset = c.options.url === defaultUrl
          const client = fromSpec(
            () =>
              Spec.single(c.options, Spec.configOrigin(unset ? `REDIS_URL (unset: ${defaultUrlText})` : "REDIS_URL")),
            c.options.maxDedicatedConnections
          )
          // said once: an application that forgot REDIS_URL should not look for its data on the wrong server
          return unset
            ? Layer.merge(
                client,
                Layer.effectDiscard(Effect.logInfo(`RedisClient: REDIS_URL is not set; using ${defaultUrlText}`))
              )
            : client
        }
      }
    })
  )

/**
 * The milliseconds of a `Duration.Input`, for ioredis arguments such as `BLOCK`.
 *
 * @since 0.1.0
 */
export const millis = (input: Duration.Input): number => Math.round(Duration.toMillis(Duration.fromInputUnsafe(input)))
