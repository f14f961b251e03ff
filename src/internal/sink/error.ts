/**
 * The error of the `EventSink` module.
 *
 * @internal
 */
import { Schema } from "effect"
import { RedisError } from "../../RedisError.js"

/**
 * Why an event-sink operation failed.
 *
 * - `BufferFull`: the local buffer is full and the overflow strategy is `fail`; the events were not taken.
 * - `InvalidEvent`: an event cannot be encoded as JSON (a cycle, a `BigInt`) or is larger than `maxEventBytes`.
 * - `CircuitOpen`: Redis is failing and the breaker is open; `flush` cannot complete now (nothing is lost: the events
 *   stay buffered). Retryable.
 * - `Closed`: the sink's layer is closing or closed.
 * - `Decode`: a stored entry is not a sink event (reading side); `entryId` names it.
 * - `Redis`: Redis failed; `cause` is the `RedisError`.
 *
 * @since 0.1.0
 */
export const EventSinkErrorReason = Schema.Literals([
  "BufferFull",
  "InvalidEvent",
  "CircuitOpen",
  "Closed",
  "Decode",
  "Redis"
])

/**
 * A reason of {@link EventSinkError}.
 *
 * @since 0.1.0
 */
export type EventSinkErrorReason = typeof EventSinkErrorReason.Type

/**
 * A failed event-sink operation: `reason` says why.
 *
 * @since 0.1.0
 */
export class EventSinkError extends Schema.TaggedError<EventSinkError>()("EventSinkError", {
  reason: EventSinkErrorReason,
  message: Schema.String,
  /** The entry that does not decode, for reason `Decode`. */
  entryId: Schema.optional(Schema.String),
  /** The Redis failure, for reason `Redis`. */
  cause: Schema.optional(RedisError)
}) {
  /** True when the same call may succeed later: an open breaker, or a retryable Redis failure. */
  get isRetryable(): boolean {
    return this.reason === "CircuitOpen" || (this.reason === "Redis" && this.cause?.isRetryable === true)
  }
}

/** An `EventSinkError` with `reason` and `message`. */
export const fail = (reason: EventSinkErrorReason, message: string) => new EventSinkError({ reason, message })

/** Wraps a `RedisError`. */
export const fromRedis = (cause: RedisError): EventSinkError =>
  new EventSinkError({ reason: "Redis", message: cause.message, cause })
