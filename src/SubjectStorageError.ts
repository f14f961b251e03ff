/**
 * The error of the `SubjectStorage` module: `SubjectStorageError`, whose `reason` is one of the tagged classes below (match one with
 * `Effect.catchReason("SubjectStorageError", tag, …)`). `SubjectStorage` re-exports them all.
 *
 * @since 0.1.0
 */

import { Schema } from "effect"
import { OutcomeUnknown, RedisFailure } from "./RedisError.js"

const described = { message: Schema.String }

/**
 * An atomic read-modify-write (`set` with a function) or a `transaction` kept losing to concurrent writers until its
 * retry schedule ran out; nothing was written. Retryable.
 *
 * @since 0.1.0
 */
export class Conflict extends Schema.TaggedError<Conflict>()("Conflict", described) {
  readonly isRetryable = true
}

/**
 * A stored value is not JSON or does not match its schema.
 *
 * @since 0.1.0
 */
export class Decode extends Schema.TaggedError<Decode>()("Decode", described) {
  readonly isRetryable = false
}

/**
 * A value cannot be encoded (not JSON-able, or rejected by its schema).
 *
 * @since 0.1.0
 */
export class InvalidValue extends Schema.TaggedError<InvalidValue>()("InvalidValue", described) {
  readonly isRetryable = false
}

/**
 * `increment` on a property that holds something other than a number.
 *
 * @since 0.1.0
 */
export class NotANumber extends Schema.TaggedError<NotANumber>()("NotANumber", described) {
  readonly isRetryable = false
}

/**
 * A transaction's subjects live in different Cluster slots, where WATCH and MULTI cannot span them: nothing was sent.
 * Name subjects of one transaction with a shared hash tag (`SubjectStorage.tagged`).
 *
 * @since 0.1.0
 */
export class CrossSlot extends Schema.TaggedError<CrossSlot>()("CrossSlot", described) {
  readonly isRetryable = false
}

/**
 * A transaction read or wrote a subject it did not declare (and so does not watch): nothing was written.
 *
 * @since 0.1.0
 */
export class NotWatched extends Schema.TaggedError<NotWatched>()("NotWatched", described) {
  readonly isRetryable = false
}

/**
 * Why a subject-storage operation failed: one of the tagged classes above, `Redis` (a `RedisFailure`), or
 * `OutcomeUnknown` (a write whose reply was lost).
 *
 * @since 0.1.0
 */
export const SubjectStorageErrorReason = Schema.Union([
  Conflict,
  Decode,
  InvalidValue,
  NotANumber,
  CrossSlot,
  NotWatched,
  RedisFailure,
  OutcomeUnknown
])

/**
 * A reason of {@link SubjectStorageError}.
 *
 * @since 0.1.0
 */
export type SubjectStorageErrorReason = typeof SubjectStorageErrorReason.Type

/**
 * A failed subject-storage operation: `reason` says why (`Effect.catchReason("SubjectStorageError", tag, …)`),
 * `subject` and, where there is one, `property` name what it was about.
 *
 * @since 0.1.0
 */
export class SubjectStorageError extends Schema.TaggedError<SubjectStorageError>()("SubjectStorageError", {
  reason: SubjectStorageErrorReason,
  subject: Schema.String,
  property: Schema.optional(Schema.String)
}) {
  /** The reason's message. */
  override get message(): string {
    return this.reason.message
  }
  /** True when the same call may succeed later: a conflict, or a retryable Redis failure. */
  get isRetryable(): boolean {
    return this.reason.isRetryable
  }
}
