/**
 * The error of the `SubjectStorage` module.
 *
 * @internal
 */
import { Schema } from "effect"
import { RedisError } from "../../RedisError.js"

/**
 * Why a subject-storage operation failed.
 *
 * - `Conflict`: an atomic read-modify-write (`set` with a function) kept losing to concurrent writers until its retry
 *   schedule ran out; nothing was written. Retryable.
 * - `Decode`: a stored value is not JSON or does not match its schema.
 * - `InvalidValue`: a value cannot be encoded (not JSON-able, or rejected by its schema).
 * - `NotANumber`: `increment` on a property that holds something other than a number.
 * - `Redis`: Redis failed; `cause` is the `RedisError`.
 *
 * @since 0.1.0
 */
export const SubjectStorageErrorReason = Schema.Literals(["Conflict", "Decode", "InvalidValue", "NotANumber", "Redis"])

/**
 * A reason of {@link SubjectStorageError}.
 *
 * @since 0.1.0
 */
export type SubjectStorageErrorReason = typeof SubjectStorageErrorReason.Type

/**
 * A failed subject-storage operation, naming the subject and, where there is one, the property.
 *
 * @since 0.1.0
 */
export class SubjectStorageError extends Schema.TaggedError<SubjectStorageError>()("SubjectStorageError", {
  reason: SubjectStorageErrorReason,
  message: Schema.String,
  subject: Schema.String,
  property: Schema.optional(Schema.String),
  /** The Redis failure, for reason `Redis`. */
  cause: Schema.optional(RedisError)
}) {
  /** True when the same call may succeed later: a conflict, or a retryable Redis failure. */
  get isRetryable(): boolean {
    return this.reason === "Conflict" || (this.reason === "Redis" && this.cause?.isRetryable === true)
  }
}

/** A `SubjectStorageError` of `subject` (and `property`). */
export const fail = (
  reason: SubjectStorageErrorReason,
  message: string,
  subject: string,
  property?: string
): SubjectStorageError =>
  new SubjectStorageError({ reason, message, subject, ...(property === undefined ? {} : { property }) })

/** Wraps a `RedisError` of `subject`. */
export const fromRedis =
  (subject: string, property?: string) =>
  (cause: RedisError): SubjectStorageError =>
    new SubjectStorageError({
      reason: "Redis",
      message: cause.message,
      subject,
      cause,
      ...(property === undefined ? {} : { property })
    })
