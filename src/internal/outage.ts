/**
 * Riding out Redis outages in background loops: the backoff between attempts, and the log of outages: one warning when the first attempt fails, one line when an attempt
 * succeeds again (with how long it lasted and how many attempts failed), nothing for the retries in between.
 *
 * @internal
 */
import { Effect, Schedule } from "effect"

/**
 * Delays between attempts while Redis is unavailable: 50 ms doubling, capped at 500 ms, jittered. The short cap finds
 * a server that came back (or a new master) within half a second.
 */
export const backoff: Schedule.Schedule<unknown> = Schedule.min([
  Schedule.exponential("50 millis"),
  Schedule.spaced("500 millis")
]).pipe(Schedule.jittered)

/** What a loop reports after each attempt. */
export interface OutageLog {
  /** An attempt failed with `error`; warns when this starts an outage. */
  readonly failed: (error: { readonly message: string; readonly reason?: unknown }) => Effect.Effect<void>
  /** An attempt succeeded; logs the end of an outage in progress. */
  readonly succeeded: Effect.Effect<void>
  /** Whether an outage is in progress. */
  readonly inProgress: () => boolean
}

/**
 * The words of a failure for a log line that already names its component: a `RedisError`'s reason without the
 * operation it prefixes (`ResumableStream heartbeat: Command timed out`, not `…: ResumableStream.heartbeat: …`).
 */
const wordsOf = (error: { readonly message: string; readonly reason?: unknown }): string => {
  const reason = error.reason as { readonly message?: unknown } | undefined
  return typeof reason?.message === "string" ? reason.message : error.message
}

/**
 * An outage log for `component` (e.g. "ResumableStream heartbeat"). An outage lasts from the loop's last success
 * before its first failure (a call that timed out failed only a command timeout after Redis stopped answering) to
 * its next success.
 */
export const make = (component: string): OutageLog => {
  let since: number | undefined
  let lastSuccess: number | undefined
  let failures = 0
  return {
    failed: (error) =>
      Effect.suspend(() => {
        failures += 1
        if (since !== undefined) return Effect.void
        since = lastSuccess ?? Date.now()
        return Effect.logWarning(`${component}: ${wordsOf(error)}; retrying until Redis answers`)
      }),
    succeeded: Effect.suspend(() => {
      const now = Date.now()
      lastSuccess = now
      if (since === undefined) return Effect.void
      const lasted = now - since
      const failed = failures
      since = undefined
      failures = 0
      return Effect.logInfo(
        `${component}: Redis answers again, ${lasted} ms after the last success (${failed} failed attempts)`
      )
    }),
    inProgress: () => since !== undefined
  }
}

/**
 * `effect`, retried on the schedule `schedule()` makes while its error satisfies `while`, the schedule being made and
 * the retry set up only after a first failure: on hot paths (one call per write or read) the common case, a success,
 * pays nothing for the retry. The first retry runs at once, the next ones after the schedule's delays.
 */
export const retryAfterFailure = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  options: { readonly schedule: () => Schedule.Schedule<unknown, NoInfer<E>>; readonly while: (error: E) => boolean }
): Effect.Effect<A, E, R> =>
  Effect.catchIf(effect, options.while, () =>
    Effect.retry(effect, { schedule: options.schedule(), while: options.while })
  )
