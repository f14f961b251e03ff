/**
 * The error of the `EventSink` module: `EventSinkError`, whose `reason` is one of the tagged classes below (match one with
 * `Effect.catchReason("EventSinkError", tag, …)`). `EventSink` re-exports them all.
 *
 * @since 0.1.0
 */

import { Schema } from "effect"
import { RedisFailure } from "./RedisError.js"

const described = { message: Schema.String }

/**
 * The local buffer is full and the overflow strategy is `fail`: the events were not taken.
 *
 * @since 0.1.0
 */
export class BufferFull extends Schema.TaggedError<BufferFull>()("BufferFull", described) {
  readonly isRetryable = false
}

/**
 * An event cannot be encoded as JSON (a cycle, a `BigInt`) or is larger than `maxEventBytes`.
 *
 * @since 0.1.0
 */
export class InvalidEvent extends Schema.TaggedError<InvalidEvent>()("InvalidEvent", described) {
  readonly isRetryable = false
}

/**
 * Redis is failing and the breaker is open: `flush` cannot complete now (nothing is lost: the events stay buffered).
 * Retryable.
 *
 * @since 0.1.0
 */
export class CircuitOpen extends Schema.TaggedError<CircuitOpen>()("CircuitOpen", described) {
  readonly isRetryable = true
}

/**
 * The sink's layer is closing or closed.
 *
 * @since 0.1.0
 */
export class Closed extends Schema.TaggedError<Closed>()("Closed", described) {
  readonly isRetryable = false
}

/**
 * A stored entry is not a sink event (reading side); `entryId` names it.
 *
 * @since 0.1.0
 */
export class Decode extends Schema.TaggedError<Decode>()("Decode", {
  message: Schema.String,
  entryId: Schema.String
}) {
  readonly isRetryable = false
}

/**
 * Why an event-sink operation failed: one of the tagged classes above, or `Redis` (a `RedisFailure`).
 *
 * @since 0.1.0
 */
export const EventSinkErrorReason = Schema.Union([BufferFull, InvalidEvent, CircuitOpen, Closed, Decode, RedisFailure])

/**
 * A reason of {@link EventSinkError}.
 *
 * @since 0.1.0
 */
export type EventSinkErrorReason = typeof EventSinkErrorReason.Type

/**
 * A failed event-sink operation: `reason` says why (`Effect.catchReason("EventSinkError", tag, …)`).
 *
 * @since 0.1.0
 */
export class EventSinkError extends Schema.TaggedError<EventSinkError>()("EventSinkError", {
  reason: EventSinkErrorReason
}) {
  /** The reason's message. */
  override get message(): string {
    return this.reason.message
  }
  /** True when the same call may succeed later: an open breaker, or a retryable Redis failure. */
  get isRetryable(): boolean {
    return this.reason.isRetryable
  }
}
