/**
 * Making the errors of the `SubjectStorage` module (`SubjectStorageError`, its reasons declared in
 * SubjectStorageError.ts).
 *
 * @internal
 */
import type { OutcomeUnknown, RedisError } from "../../RedisError.js"
import { failureReason, type DescribedReason } from "../reasons.js"
import { SubjectStorageError, type SubjectStorageErrorReason } from "../../SubjectStorageError.js"

export type { SubjectStorageError } from "../../SubjectStorageError.js"

/** An error of `subject` (and `property`) with `reason`. */
const of = (reason: SubjectStorageErrorReason, subject: string, property: string | undefined) =>
  new SubjectStorageError({ reason, subject, ...(property === undefined ? {} : { property }) })

/** A `SubjectStorageError` of `subject` (and `property`) with `reason` made from `message`. */
export const fail = (
  reason: DescribedReason<SubjectStorageErrorReason>,
  message: string,
  subject: string,
  property?: string
): SubjectStorageError => of(new reason({ message }), subject, property)

/** Wraps a `RedisError` (or an `OutcomeUnknown`) of `subject`. */
export const fromRedis =
  (subject: string, property?: string) =>
  (cause: RedisError | OutcomeUnknown): SubjectStorageError =>
    of(failureReason(cause), subject, property)
