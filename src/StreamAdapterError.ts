/**
 * The error of the `StreamAdapter` module: `StreamAdapterError`, whose `reason` is one of the tagged classes below (match one with
 * `Effect.catchReason("StreamAdapterError", tag, …)`). `StreamAdapter` re-exports them all.
 *
 * @since 0.1.0
 */

import { Schema } from "effect"
import { OutcomeUnknown, RedisFailure } from "./RedisError.js"

const described = { message: Schema.String }

/**
 * A stored item (or an event's data) does not match the item schema; the error's `groupId` and `id` name it.
 *
 * @since 0.1.0
 */
export class Decode extends Schema.TaggedError<Decode>()("Decode", described) {
  readonly isRetryable = false
}

/**
 * An item to store does not match the item schema (or is not JSON-able).
 *
 * @since 0.1.0
 */
export class InvalidItem extends Schema.TaggedError<InvalidItem>()("InvalidItem", described) {
  readonly isRetryable = false
}

/**
 * A query's `limit` or `offset` is not a non-negative integer, or an operator is unknown.
 *
 * @since 0.1.0
 */
export class InvalidQuery extends Schema.TaggedError<InvalidQuery>()("InvalidQuery", described) {
  readonly isRetryable = false
}

/**
 * Why a live-state operation failed: one of the tagged classes above, `Redis` (a `RedisFailure`), or
 * `OutcomeUnknown` (a write whose reply was lost).
 *
 * @since 0.1.0
 */
export const StreamAdapterErrorReason = Schema.Union([Decode, InvalidItem, InvalidQuery, RedisFailure, OutcomeUnknown])

/**
 * A reason of {@link StreamAdapterError}.
 *
 * @since 0.1.0
 */
export type StreamAdapterErrorReason = typeof StreamAdapterErrorReason.Type

/**
 * A failed live-state operation: `reason` says why (`Effect.catchReason("StreamAdapterError", tag, …)`), `stream`,
 * `groupId` and `id` what it was about.
 *
 * @since 0.1.0
 */
export class StreamAdapterError extends Schema.TaggedError<StreamAdapterError>()("StreamAdapterError", {
  reason: StreamAdapterErrorReason,
  stream: Schema.String,
  groupId: Schema.optional(Schema.String),
  id: Schema.optional(Schema.String)
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
