/**
 * The error of the `StreamAdapter` module.
 *
 * @internal
 */
import { Schema } from "effect"
import { RedisError } from "../../RedisError.js"

/**
 * Why a live-state operation failed.
 *
 * - `Decode`: a stored item (or an event's data) does not match the item schema; `groupId` and `id` name it.
 * - `InvalidItem`: an item to store does not match the item schema (or is not JSON-able).
 * - `InvalidQuery`: a query's `limit` or `offset` is not a non-negative integer, or an operator is unknown.
 * - `Redis`: Redis failed; `cause` is the `RedisError`.
 *
 * @since 0.1.0
 */
export const StreamAdapterErrorReason = Schema.Literals(["Decode", "InvalidItem", "InvalidQuery", "Redis"])

/**
 * A reason of {@link StreamAdapterError}.
 *
 * @since 0.1.0
 */
export type StreamAdapterErrorReason = typeof StreamAdapterErrorReason.Type

/**
 * A failed live-state operation.
 *
 * @since 0.1.0
 */
export class StreamAdapterError extends Schema.TaggedError<StreamAdapterError>()("StreamAdapterError", {
  reason: StreamAdapterErrorReason,
  message: Schema.String,
  stream: Schema.String,
  groupId: Schema.optional(Schema.String),
  id: Schema.optional(Schema.String),
  /** The Redis failure, for reason `Redis`. */
  cause: Schema.optional(RedisError)
}) {
  /** True when the same call may succeed later (a retryable Redis failure). */
  get isRetryable(): boolean {
    return this.reason === "Redis" && this.cause?.isRetryable === true
  }
}
