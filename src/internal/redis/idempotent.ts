/**
 * An idempotent script call that ends within its `retryWithin` (`RedisClient.evalIdempotent`): the attempts carry one
 * marker key, so a retry after a lost reply is applied once; retryable failures are retried until the deadline; the
 * whole call ends by then, an attempt still waiting for its reply being given up (its outcome unknown).
 *
 * The common case, one attempt that succeeds, pays one timer: the first attempt is cut by a timer of its own, not by a
 * race of fibers; only after a first failure is the retry loop set up, under a timeout for the time left.
 *
 * @internal
 */
import { Duration, Effect, Schedule } from "effect"
import { redisError } from "../reasons.js"
import * as Outage from "../outage.js"
import { OutcomeUnknown, type RedisError } from "../../RedisError.js"
import { mayHaveRun } from "./errors.js"

/** How an attempt is cut when its reply is late: after `ms`, failing with `late()`. */
export interface Cut {
  readonly ms: number
  readonly late: () => RedisError
}

/** What an idempotent call needs. */
export interface IdempotentCall<Reply> {
  /** The script's name (the `op` of its errors). */
  readonly op: string
  /** How long retryable failures are retried; zero: one attempt, retried once at once. */
  readonly within: Duration.Duration
  /** One attempt of the script with its marker key, cut as `cut` says when given. */
  readonly attempt: (cut: Cut | undefined) => Effect.Effect<Reply, RedisError>
}

/** Runs the call (see the module). */
export const run = <Reply>(call: IdempotentCall<Reply>): Effect.Effect<Reply, RedisError | OutcomeUnknown> =>
  Effect.suspend(() => {
    const { op, within } = call
    const withinMs = Duration.toMillis(within)
    const deadline = Date.now() + withinMs
    let lostReply = false
    let inFlight = false
    let lastError: RedisError | undefined
    const noReply = () => redisError(op, "Timeout", `no reply within ${Duration.format(within)} (retryWithin)`)
    /** The call's deadline passed with an attempt waiting for its reply: it ends, not retried. */
    let cutLate = false
    const late = () => {
      cutLate = true
      lostReply = true
      return noReply()
    }
    /** Notes what a failed attempt tells: whether its write may have run, and the call's last failure. */
    const noteFailure = (error: RedisError) => {
      lostReply ||= mayHaveRun(error)
      lastError = error
    }
    const outcome = (error: RedisError) =>
      lostReply && error.isRetryable ? new OutcomeUnknown({ cause: error }) : error
    // the last attempt starts a little before the deadline: one that fails at once (Redis away, nothing sent) ends
    // before it, and only one still waiting for its reply is cut there; between attempts, the last failure is the call's
    const retryRest = () => {
      const left = Math.max(0, deadline - Date.now())
      const attempt = Effect.suspend(() => {
        inFlight = true
        return call.attempt(withinMs === 0 ? undefined : { ms: Math.max(0, deadline - Date.now()), late })
      }).pipe(
        Effect.tapError((error) => Effect.sync(() => noteFailure(error))),
        Effect.ensuring(Effect.sync(() => (inFlight = false)))
      )
      const retried = Effect.retry(attempt, {
        schedule: Schedule.upTo(Outage.backoff, { duration: Duration.millis(Math.max(0, left - 100)) }),
        while: (error) => error.isRetryable && !cutLate
      })
      return Effect.mapError(
        withinMs === 0
          ? retried
          : retried.pipe(
              Effect.timeoutOrElse({
                duration: Duration.millis(left),
                orElse: () => {
                  lostReply ||= inFlight
                  return Effect.fail(inFlight || lastError === undefined ? noReply() : lastError)
                }
              })
            ),
        outcome
      )
    }
    // the first attempt goes alone: the retry loop and its bookkeeping are set up only after it failed
    return Effect.catch(call.attempt(withinMs === 0 ? undefined : { ms: withinMs, late }), (error) => {
      noteFailure(error)
      return error.isRetryable && !cutLate ? retryRest() : Effect.fail(outcome(error))
    })
  })
