/**
 * The error of the `SubjectStorage` module.
 *
 * @internal
 */
import { OutcomeUnknown, type RedisError } from "../../RedisError.js"
import { failureReason } from "../reasons.js"
import {
  Conflict,
  CrossSlot,
  Decode,
  InvalidValue,
  NotANumber,
  NotWatched,
  SubjectStorageErrorReason,
  SubjectStorageError
} from "../../SubjectStorageError.js"

export {
  Conflict,
  CrossSlot,
  Decode,
  InvalidValue,
  NotANumber,
  NotWatched,
  SubjectStorageErrorReason,
  SubjectStorageError
} from "../../SubjectStorageError.js"

const describedReasons = { Conflict, CrossSlot, Decode, InvalidValue, NotANumber, NotWatched }

/** An error of `subject` (and `property`) with `reason`. */
const of = (reason: SubjectStorageErrorReason, subject: string, property: string | undefined) =>
  new SubjectStorageError({ reason, subject, ...(property === undefined ? {} : { property }) })

/** A `SubjectStorageError` of `subject` (and `property`) with the reason `tag`. */
export const fail = (
  tag: keyof typeof describedReasons,
  message: string,
  subject: string,
  property?: string
): SubjectStorageError => of(new describedReasons[tag]({ message }), subject, property)

/** Wraps a `RedisError` (or an `OutcomeUnknown`) of `subject`. */
export const fromRedis =
  (subject: string, property?: string) =>
  (cause: RedisError | OutcomeUnknown): SubjectStorageError =>
    of(failureReason(cause), subject, property)
