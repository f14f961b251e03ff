/**
 * The error of the `ResumableStream` module: `ResumableStreamError`, whose `reason` is one of the tagged classes below (match one with
 * `Effect.catchReason("ResumableStreamError", tag, …)`). `ResumableStream` re-exports them all.
 *
 * @since 0.1.0
 */

import { Schema } from "effect"
import { RedisFailure } from "./RedisError.js"

const described = { message: Schema.String }

/**
 * A malformed, tampered or foreign token, an unsigned one where a signature is required, or one signed with another
 * secret.
 *
 * @since 0.1.0
 */
export class InvalidToken extends Schema.TaggedError<InvalidToken>()("InvalidToken", described) {
  readonly isRetryable = false
}

/**
 * No such run, or the stream name is not registered here.
 *
 * @since 0.1.0
 */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", described) {
  readonly isRetryable = false
}

/**
 * The token or the run's data expired.
 *
 * @since 0.1.0
 */
export class Expired extends Schema.TaggedError<Expired>()("Expired", described) {
  readonly isRetryable = false
}

/**
 * The `after` entry id is malformed or out of range.
 *
 * @since 0.1.0
 */
export class InvalidOffset extends Schema.TaggedError<InvalidOffset>()("InvalidOffset", described) {
  readonly isRetryable = false
}

/**
 * Entries the reader needs were trimmed away (`maxChunks`): it cannot resume without a gap.
 *
 * @since 0.1.0
 */
export class Truncated extends Schema.TaggedError<Truncated>()("Truncated", described) {
  readonly isRetryable = false
}

/**
 * The producer stopped heartbeating without writing an end marker (it crashed, or shut down).
 *
 * @since 0.1.0
 */
export class ProducerLost extends Schema.TaggedError<ProducerLost>()("ProducerLost", described) {
  readonly isRetryable = false
}

/**
 * The run was cancelled.
 *
 * @since 0.1.0
 */
export class Cancelled extends Schema.TaggedError<Cancelled>()("Cancelled", described) {
  readonly isRetryable = false
}

/**
 * The runner failed: `error` holds its typed failure (decoded when the definition has an error schema).
 *
 * @since 0.1.0
 */
export class Failed extends Schema.TaggedError<Failed>()("Failed", {
  message: Schema.String,
  error: Schema.optional(Schema.Unknown)
}) {
  readonly isRetryable = false
}

/**
 * The run ran longer than `maxLifetime` and was stopped.
 *
 * @since 0.1.0
 */
export class LifetimeExceeded extends Schema.TaggedError<LifetimeExceeded>()("LifetimeExceeded", described) {
  readonly isRetryable = false
}

/**
 * A chunk's encoded size exceeds `maxChunkBytes`.
 *
 * @since 0.1.0
 */
export class ChunkTooLarge extends Schema.TaggedError<ChunkTooLarge>()("ChunkTooLarge", described) {
  readonly isRetryable = false
}

/**
 * Another producer took the run over; this one may no longer write.
 *
 * @since 0.1.0
 */
export class Fenced extends Schema.TaggedError<Fenced>()("Fenced", described) {
  readonly isRetryable = false
}

/**
 * A live producer holds a run with this id.
 *
 * @since 0.1.0
 */
export class AlreadyRunning extends Schema.TaggedError<AlreadyRunning>()("AlreadyRunning", described) {
  readonly isRetryable = false
}

/**
 * The run with this id is over.
 *
 * @since 0.1.0
 */
export class AlreadyFinished extends Schema.TaggedError<AlreadyFinished>()("AlreadyFinished", described) {
  readonly isRetryable = false
}

/**
 * The input does not match the stream's input schema.
 *
 * @since 0.1.0
 */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", described) {
  readonly isRetryable = false
}

/**
 * A chunk does not match the chunk schema (`entryId` names a stored one).
 *
 * @since 0.1.0
 */
export class Decode extends Schema.TaggedError<Decode>()("Decode", {
  message: Schema.String,
  entryId: Schema.optional(Schema.String)
}) {
  readonly isRetryable = false
}

/**
 * Why a resumable-stream operation failed: one of the tagged classes above, or `Redis` (a `RedisFailure`).
 *
 * @since 0.1.0
 */
export const ResumableStreamErrorReason = Schema.Union([
  InvalidToken,
  NotFound,
  Expired,
  InvalidOffset,
  Truncated,
  ProducerLost,
  Cancelled,
  Failed,
  LifetimeExceeded,
  ChunkTooLarge,
  Fenced,
  AlreadyRunning,
  AlreadyFinished,
  InvalidInput,
  Decode,
  RedisFailure
])

/**
 * A reason of {@link ResumableStreamError}.
 *
 * @since 0.1.0
 */
export type ResumableStreamErrorReason = typeof ResumableStreamErrorReason.Type

/**
 * A failed resumable-stream operation: `reason` says why (`Effect.catchReason("ResumableStreamError", tag, …)`),
 * `runId` which run, when it is known.
 *
 * @since 0.1.0
 */
export class ResumableStreamError extends Schema.TaggedError<ResumableStreamError>()("ResumableStreamError", {
  reason: ResumableStreamErrorReason,
  runId: Schema.optional(Schema.String)
}) {
  /** The reason's message. */
  override get message(): string {
    return this.reason.message
  }
  /** True when the same call may succeed later (only Redis failures that are themselves retryable). */
  get isRetryable(): boolean {
    return this.reason.isRetryable
  }
}
