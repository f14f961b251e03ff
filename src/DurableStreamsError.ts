/**
 * The error of the `DurableStreams` module: `DurableStreamsError`, whose `reason` is one of the tagged classes below
 * (match one with `Effect.catchReason("DurableStreamsError", tag, …)`). Each reason is one answer of the Durable
 * Streams protocol (the status `DurableStreamsHttp` gives it is in its comment). `DurableStreams` re-exports them all.
 *
 * @since 0.1.0
 */

import { Schema } from "effect"
import { RedisFailure } from "./RedisError.js"

const described = { message: Schema.String }

/**
 * No stream at this name (never created, deleted, or expired). HTTP 404.
 *
 * @since 0.1.0
 */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", described) {
  readonly isRetryable = false
}

/**
 * What was asked for is gone: the stream was deleted while forks still reference it (soft-deleted: its name answers
 * nothing until the last fork is gone), the offset read from is no longer kept (`retainEntries`), or, for a
 * ResumableStream run, its producer was lost before it ended the run. HTTP 410.
 *
 * @since 0.1.0
 */
export class Gone extends Schema.TaggedError<Gone>()("Gone", described) {
  readonly isRetryable = false
}

/**
 * The request conflicts with the stream: created with another configuration, another content type, a `Stream-Seq`
 * not above the last one, a soft-deleted name or fork source. HTTP 409.
 *
 * @since 0.1.0
 */
export class Conflict extends Schema.TaggedError<Conflict>()("Conflict", described) {
  readonly isRetryable = false
}

/**
 * The stream is closed: nothing more can be appended. `nextOffset` is its final offset. HTTP 409 with
 * `Stream-Closed: true`.
 *
 * @since 0.1.0
 */
export class StreamClosed extends Schema.TaggedError<StreamClosed>()("StreamClosed", {
  message: Schema.String,
  nextOffset: Schema.String
}) {
  readonly isRetryable = false
}

/**
 * A producer wrote with an epoch below the one the stream knows for it (a zombie, fenced). `epoch` is the current
 * one. HTTP 403 with `Producer-Epoch`.
 *
 * @since 0.1.0
 */
export class StaleEpoch extends Schema.TaggedError<StaleEpoch>()("StaleEpoch", {
  message: Schema.String,
  epoch: Schema.String
}) {
  readonly isRetryable = false
}

/**
 * A producer's sequence number skips one (a request was lost or arrived out of order): nothing was written. HTTP 409
 * with `Producer-Expected-Seq` and `Producer-Received-Seq`.
 *
 * @since 0.1.0
 */
export class SequenceGap extends Schema.TaggedError<SequenceGap>()("SequenceGap", {
  message: Schema.String,
  expected: Schema.String,
  received: Schema.String
}) {
  readonly isRetryable = false
}

/**
 * The request is malformed: a header, an offset, a body that is not JSON in JSON mode, an empty append. HTTP 400.
 *
 * @since 0.1.0
 */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", described) {
  readonly isRetryable = false
}

/**
 * The stream cannot be written through this server (a ResumableStream run, written by its producer). HTTP 405.
 *
 * @since 0.1.0
 */
export class ReadOnly extends Schema.TaggedError<ReadOnly>()("ReadOnly", described) {
  readonly isRetryable = false
}

/**
 * Why a Durable Streams operation failed: one of the tagged classes above, or `Redis` (a `RedisFailure`: HTTP 503).
 *
 * @since 0.1.0
 */
export const DurableStreamsErrorReason = Schema.Union([
  NotFound,
  Gone,
  Conflict,
  StreamClosed,
  StaleEpoch,
  SequenceGap,
  InvalidRequest,
  ReadOnly,
  RedisFailure
])

/**
 * A reason of {@link DurableStreamsError}.
 *
 * @since 0.1.0
 */
export type DurableStreamsErrorReason = typeof DurableStreamsErrorReason.Type

/**
 * A failed Durable Streams operation: `reason` says why, `stream` names the stream.
 *
 * @since 0.1.0
 */
export class DurableStreamsError extends Schema.TaggedError<DurableStreamsError>()("DurableStreamsError", {
  reason: DurableStreamsErrorReason,
  stream: Schema.String
}) {
  /** The reason's message. */
  override get message(): string {
    return this.reason.message
  }
  /** True when the same call may succeed later (a retryable Redis failure). */
  get isRetryable(): boolean {
    return this.reason.isRetryable
  }
}
