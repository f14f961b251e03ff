/**
 * Building `RedisError`s and the reasons capabilities give their own errors, driver-independent: the driver
 * (internal/redis/errors.ts) classifies what the client rejected with into these, and capabilities make them for
 * failures of their own (a timeout they enforce, an outcome they cannot know).
 *
 * @internal
 */
import * as Reason from "../RedisError.js"

/** The tag of a reason a call's failure can have (the pool and the layer's lifecycle make the others). */
export type CallReason = Exclude<Reason.RedisErrorReason["_tag"], "PoolExhausted" | "Closed">

/** A reason a call's failure can have: a message and the reply's (or the socket's) error code. */
type CallReasonClass = new (fields: { readonly message: string; readonly code?: string }) => Reason.RedisErrorReason

/** The reasons of `RedisError`, by tag. */
const reasonsByTag = new Map(
  Reason.RedisErrorReason.members.map((member) => [member.identifier, member as unknown as CallReasonClass] as const)
)

/** A `RedisError` of operation `op` with the reason `tag`. */
export const redisError = (op: string, tag: CallReason, message: string, code?: string): Reason.RedisError => {
  const reason = reasonsByTag.get(tag) as CallReasonClass
  return new Reason.RedisError({ op, reason: new reason({ message, ...(code === undefined ? {} : { code }) }) })
}

/** The reason a capability's error gives a failed write: `OutcomeUnknown` as it is, a `RedisError` wrapped. */
export const failureReason = (
  error: Reason.RedisError | Reason.OutcomeUnknown
): Reason.RedisFailure | Reason.OutcomeUnknown =>
  error._tag === "RedisError" ? new Reason.RedisFailure({ cause: error }) : error

/**
 * A reason class made from a message alone (most of a capability's reasons: those with fields of their own, such as
 * `Redis`, are made by their own functions). Capabilities' `fail` functions take one.
 */
export type DescribedReason<R> = new (fields: { readonly message: string }) => R

/**
 * The members of a reason union made from a message alone, by tag: for a tag stored in Redis (a run's terminal
 * reason) read back into its reason.
 */
export const describedByTag = <R>(union: {
  readonly members: ReadonlyArray<unknown>
}): ReadonlyMap<string, DescribedReason<R>> =>
  new Map(
    union.members.flatMap((member) => {
      const { identifier, fields } = member as { readonly identifier?: string; readonly fields?: object }
      const names = Object.keys(fields ?? {}).filter((name) => name !== "_tag")
      return identifier !== undefined && names.length === 1 && names[0] === "message"
        ? [[identifier, member as DescribedReason<R>] as const]
        : []
    })
  )
