/**
 * The one error every Redis call of this library fails with.
 *
 * A `RedisError` carries a `reason` (what kind of failure it is), the operation that failed, the Redis error code when
 * the server answered with one (`WRONGTYPE`, `NOGROUP`, `BUSYGROUP`…), and `isRetryable`. Its message never contains a
 * password: every failure passes through one classifier (`internal/errors.ts`) that scrubs secrets.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The kinds of Redis failure.
 *
 * - `Connection`: the socket is down or never came up (refused, reset, closed, offline). Retryable.
 * - `Timeout`: no reply within the connect or command timeout. Retryable (the command may have run).
 * - `Auth`: wrong username or password, or the ACL forbids the command (`WRONGPASS`, `NOAUTH`, `NOPERM`). Not retryable.
 * - `Command`: the server rejected the command (`WRONGTYPE`, syntax, `NOGROUP`…). Not retryable.
 * - `Script`: a Lua script raised an error. Not retryable.
 * - `CrossSlot`: the keys of one command live in different cluster slots. Not retryable: fix the keys.
 * - `ReadOnly`: a write reached a replica (usually during a failover). Retryable.
 * - `Loading`: the server is loading its dataset. Retryable.
 * - `ClusterDown`: the cluster is down or resharding (`CLUSTERDOWN`, `TRYAGAIN`, `MASTERDOWN`). Retryable.
 * - `OutOfMemory`: `OOM` under `maxmemory`. Retryable once memory is freed.
 * - `Busy`: a script is running too long (`BUSY`). Retryable.
 * - `PoolExhausted`: every dedicated connection is in use (`maxDedicatedConnections`) and none came free within the
 *   connect timeout. Retryable.
 * - `Closed`: the `RedisClient` layer was closed; no call can succeed any more. Not retryable.
 *
 * @since 0.1.0
 */
export const RedisErrorReason = Schema.Literals([
  "Connection",
  "Timeout",
  "Auth",
  "Command",
  "Script",
  "CrossSlot",
  "ReadOnly",
  "Loading",
  "ClusterDown",
  "OutOfMemory",
  "Busy",
  "PoolExhausted",
  "Closed"
])

/**
 * A kind of Redis failure: see {@link RedisErrorReason}.
 *
 * @since 0.1.0
 */
export type RedisErrorReason = typeof RedisErrorReason.Type

const retryableReasons: ReadonlySet<RedisErrorReason> = new Set([
  "Connection",
  "Timeout",
  "ReadOnly",
  "Loading",
  "ClusterDown",
  "OutOfMemory",
  "Busy",
  "PoolExhausted"
])

/**
 * A failed Redis call. `reason` says what kind of failure it is, `op` which operation failed, `code` the Redis error
 * code when the server sent one; `isRetryable` tells whether trying again can succeed.
 *
 * @since 0.1.0
 */
export class RedisError extends Schema.TaggedError<RedisError>()("RedisError", {
  reason: RedisErrorReason,
  op: Schema.String,
  message: Schema.String,
  code: Schema.optional(Schema.String)
}) {
  /** True when trying the same call again may succeed (connection, timeout, failover, loading, OOM, busy). */
  get isRetryable(): boolean {
    return retryableReasons.has(this.reason)
  }
}

/**
 * True for a `RedisError` that trying again may fix.
 *
 * @since 0.1.0
 */
export const isRetryable = (error: unknown): boolean => error instanceof RedisError && error.isRetryable
