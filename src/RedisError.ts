/**
 * The one error every Redis call of this library fails with, and the reasons that the errors of the capabilities
 * carry when Redis failed them.
 *
 * A `RedisError` carries the operation that failed (`op`) and a `reason`: a tagged class per kind of failure, with its
 * own fields and `isRetryable`, so that `Effect.catchReason("RedisError", "Timeout", …)` handles one kind. Its message
 * never contains a password: every failure passes through one classifier (`internal/redis/errors.ts`) that scrubs secrets.
 *
 * @since 0.1.0
 */

import { Schema } from "effect"

const replyFields = {
  message: Schema.String,
  /** The Redis error code of the reply (`WRONGTYPE`, `NOGROUP`…) or the socket's (`ECONNREFUSED`…). */
  code: Schema.optional(Schema.String)
}

/**
 * The socket is down or never came up (refused, reset, closed, TLS handshake failed, offline). Retryable.
 *
 * @since 0.1.0
 */
export class Connection extends Schema.TaggedError<Connection>()("Connection", replyFields) {
  readonly isRetryable = true
}

/**
 * No reply within the connect or command timeout. The command may have run: retry only what is idempotent.
 * Retryable.
 *
 * @since 0.1.0
 */
export class Timeout extends Schema.TaggedError<Timeout>()("Timeout", replyFields) {
  readonly isRetryable = true
}

/**
 * Wrong username or password, or the ACL forbids the command or key (`WRONGPASS`, `NOAUTH`, `NOPERM`). Not retryable.
 *
 * @since 0.1.0
 */
export class Auth extends Schema.TaggedError<Auth>()("Auth", replyFields) {
  readonly isRetryable = false
}

/**
 * The server rejected the command (`WRONGTYPE`, a syntax error, `NOGROUP`…). Not retryable.
 *
 * @since 0.1.0
 */
export class Command extends Schema.TaggedError<Command>()("Command", replyFields) {
  readonly isRetryable = false
}

/**
 * A Lua script raised an error of its own. Not retryable.
 *
 * @since 0.1.0
 */
export class Script extends Schema.TaggedError<Script>()("Script", replyFields) {
  readonly isRetryable = false
}

/**
 * The keys of one command live in different cluster slots. Not retryable: give them a shared hash tag.
 *
 * @since 0.1.0
 */
export class CrossSlot extends Schema.TaggedError<CrossSlot>()("CrossSlot", replyFields) {
  readonly isRetryable = false
}

/**
 * A write reached a replica (usually during a failover). Retryable.
 *
 * @since 0.1.0
 */
export class ReadOnly extends Schema.TaggedError<ReadOnly>()("ReadOnly", replyFields) {
  readonly isRetryable = true
}

/**
 * The server is loading its dataset. Retryable.
 *
 * @since 0.1.0
 */
export class Loading extends Schema.TaggedError<Loading>()("Loading", replyFields) {
  readonly isRetryable = true
}

/**
 * The cluster is down or resharding (`CLUSTERDOWN`, `TRYAGAIN`, `MASTERDOWN`, too many redirections). Retryable.
 *
 * @since 0.1.0
 */
export class ClusterDown extends Schema.TaggedError<ClusterDown>()("ClusterDown", replyFields) {
  readonly isRetryable = true
}

/**
 * `OOM`: the server is at `maxmemory` and evicts nothing more. Retryable once memory is freed.
 *
 * @since 0.1.0
 */
export class OutOfMemory extends Schema.TaggedError<OutOfMemory>()("OutOfMemory", replyFields) {
  readonly isRetryable = true
}

/**
 * A script is running too long (`BUSY`). Retryable.
 *
 * @since 0.1.0
 */
export class Busy extends Schema.TaggedError<Busy>()("Busy", replyFields) {
  readonly isRetryable = true
}

/**
 * Every dedicated connection is in use (`maxDedicatedConnections`, named in `limit`) and none came free within the
 * connect timeout. Retryable.
 *
 * @since 0.1.0
 */
export class PoolExhausted extends Schema.TaggedError<PoolExhausted>()("PoolExhausted", {
  message: Schema.String,
  limit: Schema.Number
}) {
  readonly isRetryable = true
}

/**
 * The `RedisClient` layer was closed; no call can succeed any more. Not retryable.
 *
 * @since 0.1.0
 */
export class Closed extends Schema.TaggedError<Closed>()("Closed", { message: Schema.String }) {
  readonly isRetryable = false
}

/**
 * The kinds of Redis failure: one tagged class each.
 *
 * @since 0.1.0
 */
export const RedisErrorReason = Schema.Union([
  Connection,
  Timeout,
  Auth,
  Command,
  Script,
  CrossSlot,
  ReadOnly,
  Loading,
  ClusterDown,
  OutOfMemory,
  Busy,
  PoolExhausted,
  Closed
])

/**
 * A kind of Redis failure: see {@link RedisErrorReason}.
 *
 * @since 0.1.0
 */
export type RedisErrorReason = typeof RedisErrorReason.Type

/**
 * A failed Redis call: `op` is the operation that failed, `reason` what kind of failure it is (match it with
 * `Effect.catchReason("RedisError", tag, …)`), `code` the Redis error code when the server sent one, and
 * `isRetryable` whether trying again can succeed.
 *
 * @since 0.1.0
 */
export class RedisError extends Schema.TaggedError<RedisError>()("RedisError", {
  op: Schema.String,
  reason: RedisErrorReason
}) {
  /** `op: what happened`. */
  override get message(): string {
    return `${this.op}: ${this.reason.message}`
  }
  /** The Redis error code (`WRONGTYPE`, `NOGROUP`…) or socket error code, when there is one. */
  get code(): string | undefined {
    return "code" in this.reason ? this.reason.code : undefined
  }
  /** True when trying the same call again may succeed (connection, timeout, failover, loading, OOM, busy). */
  get isRetryable(): boolean {
    return this.reason.isRetryable
  }
}

/**
 * True for a `RedisError` that trying again may fix.
 *
 * @since 0.1.0
 */
export const isRetryable = (error: unknown): boolean => error instanceof RedisError && error.isRetryable

/**
 * The reason a capability's error carries when Redis failed it: `cause` is the `RedisError`; retryable when it is.
 * Its tag is `Redis`: `Effect.catchReason("SubjectStorageError", "Redis", …)`.
 *
 * @since 0.1.0
 */
export class RedisFailure extends Schema.TaggedError<RedisFailure>()("Redis", { cause: RedisError }) {
  /** The Redis error's message. */
  override get message(): string {
    return this.cause.message
  }
  /** Whether the Redis error is retryable. */
  get isRetryable(): boolean {
    return this.cause.isRetryable
  }
}

/**
 * The reason a capability's error carries when a write was sent and its reply never came (a timeout, a dropped
 * connection) and the library's own retries could not settle it: the write may or may not have been applied. Read
 * the state before writing again. Not retryable as it is: a blind retry may apply the write twice.
 *
 * @since 0.1.0
 */
export class OutcomeUnknown extends Schema.TaggedError<OutcomeUnknown>()("OutcomeUnknown", { cause: RedisError }) {
  /** What happened, and that the outcome is unknown. */
  override get message(): string {
    return `the outcome is unknown (the write may have been applied): ${this.cause.message}`
  }
  readonly isRetryable = false
}
