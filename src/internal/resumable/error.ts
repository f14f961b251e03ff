/**
 * The error of the `ResumableStream` module.
 *
 * @internal
 */
import { Schema } from "effect"
import { RedisError } from "../../RedisError.js"

/**
 * Why a resumable-stream operation failed.
 *
 * - `InvalidToken`: malformed, tampered, unsigned where a signature is required, or signed with another secret.
 * - `NotFound`: no such run (or the stream name is not registered).
 * - `Expired`: the token or the run's data expired.
 * - `InvalidOffset`: the `after` entry id is malformed.
 * - `Truncated`: entries the reader needs were trimmed away (`maxChunks`), so it cannot resume without a gap.
 * - `ProducerLost`: the producer stopped heartbeating without writing an end marker (crashed, or shut down).
 * - `Cancelled`: the run was cancelled.
 * - `Failed`: the runner failed; `error` holds its typed failure (decoded when the definition has an error schema).
 * - `LifetimeExceeded`: the run ran longer than `maxLifetime` and was stopped.
 * - `ChunkTooLarge`: a chunk's encoded size exceeds `maxChunkBytes`.
 * - `Fenced`: another producer took the run over; this one may no longer write.
 * - `AlreadyRunning`, `AlreadyFinished`: a run with this id is live, or over.
 * - `InvalidInput`, `Decode`: the input or a stored chunk did not match its schema.
 * - `Redis`: Redis failed; `cause` is the `RedisError` (check its `isRetryable`).
 *
 * @since 0.1.0
 */
export const ResumableStreamErrorReason = Schema.Literals([
  "InvalidToken",
  "NotFound",
  "Expired",
  "InvalidOffset",
  "Truncated",
  "ProducerLost",
  "Cancelled",
  "Failed",
  "LifetimeExceeded",
  "ChunkTooLarge",
  "Fenced",
  "AlreadyRunning",
  "AlreadyFinished",
  "InvalidInput",
  "Decode",
  "Redis"
])

/**
 * A reason of {@link ResumableStreamError}.
 *
 * @since 0.1.0
 */
export type ResumableStreamErrorReason = typeof ResumableStreamErrorReason.Type

/**
 * A failed resumable-stream operation; `reason` says why, `runId` and `entryId` where they are known.
 *
 * @since 0.1.0
 */
export class ResumableStreamError extends Schema.TaggedError<ResumableStreamError>()("ResumableStreamError", {
  reason: ResumableStreamErrorReason,
  message: Schema.String,
  runId: Schema.optional(Schema.String),
  entryId: Schema.optional(Schema.String),
  /** The runner's typed failure, for reason `Failed`. */
  error: Schema.optional(Schema.Unknown),
  /** The Redis failure, for reason `Redis`. */
  cause: Schema.optional(RedisError)
}) {
  /** True when the same call may succeed later (only Redis failures that are themselves retryable). */
  get isRetryable(): boolean {
    return this.reason === "Redis" && this.cause?.isRetryable === true
  }
}

/** Wraps a `RedisError` of run `runId`. */
export const fromRedis =
  (runId?: string) =>
  (cause: RedisError): ResumableStreamError =>
    new ResumableStreamError({
      reason: "Redis",
      message: cause.message,
      cause,
      ...(runId === undefined ? {} : { runId })
    })

/** A `ResumableStreamError` with `reason`, `message` and the run id. */
export const fail = (reason: ResumableStreamErrorReason, message: string, runId?: string) =>
  new ResumableStreamError({ reason, message, ...(runId === undefined ? {} : { runId }) })
