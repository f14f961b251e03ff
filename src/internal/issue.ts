/**
 * What a failed Schema decode or encode says, as one line to put in an error message ("Expected string at
 * ["name"]"), so that a user reads what is wrong, not only that something is.
 *
 * @internal
 */
import { Cause } from "effect"

/** An error's message on one line. */
export const oneLine = (error: Error): string => error.message.replace(/\s*\n\s*/g, " ")

/** The message of the first failure of `cause` on one line, or its pretty form. */
export const issueOf = (cause: Cause.Cause<unknown>): string => {
  const failure = cause.reasons.find(Cause.isFailReason)?.error
  return failure instanceof Error ? oneLine(failure) : Cause.pretty(cause).replace(/\s*\n\s*/g, " ")
}
