/**
 * Building `RedisError`s and the reasons capabilities give their own errors, driver-independent: the driver
 * (internal/redis/errors.ts) classifies what the client rejected with into these, and capabilities make them for
 * failures of their own (a timeout they enforce, an outcome they cannot know).
 *
 * @internal
 */
import * as Reason from "../RedisError.js"

/** The reasons a failure of a call can have (the pool and the layer's lifecycle make the others). */
const reasons = {
  Connection: Reason.Connection,
  Timeout: Reason.Timeout,
  Auth: Reason.Auth,
  Command: Reason.Command,
  Script: Reason.Script,
  CrossSlot: Reason.CrossSlot,
  ReadOnly: Reason.ReadOnly,
  Loading: Reason.Loading,
  ClusterDown: Reason.ClusterDown,
  OutOfMemory: Reason.OutOfMemory,
  Busy: Reason.Busy
}

/** The tag of a reason a call's failure can have. */
export type CallReason = keyof typeof reasons

/** A `RedisError` of operation `op` with the reason `tag`. */
export const redisError = (op: string, tag: CallReason, message: string, code?: string): Reason.RedisError =>
  new Reason.RedisError({ op, reason: new reasons[tag]({ message, ...(code === undefined ? {} : { code }) }) })

/** The reason a capability's error gives a failed write: `OutcomeUnknown` as it is, a `RedisError` wrapped. */
export const failureReason = (
  error: Reason.RedisError | Reason.OutcomeUnknown
): Reason.RedisFailure | Reason.OutcomeUnknown =>
  error._tag === "RedisError" ? new Reason.RedisFailure({ cause: error }) : error
