/**
 * Drives ioredis' synchronous `retryStrategy(times)` from an Effect `Schedule`.
 *
 * ioredis asks for the delay before each reconnect attempt; the answer here is the schedule's next delay. When the
 * schedule ends, ioredis is told to stop (`null`), and the client ends for good. After a successful reconnect the
 * schedule starts again from its first delay (`reset`).
 *
 * @internal
 */
import { Duration, Effect, Exit, Schedule } from "effect"

/** A `retryStrategy` for ioredis plus a `reset` to call when the connection is ready again. */
export interface RetryStrategy {
  readonly retryStrategy: (times: number) => number | null
  readonly reset: () => void
}

type Step = (now: number, input: unknown) => Effect.Effect<readonly [unknown, Duration.Duration], unknown>

/** Builds an ioredis `retryStrategy` whose delays are the steps of `schedule`. */
export const fromSchedule = (schedule: Schedule.Schedule<unknown, unknown>): RetryStrategy => {
  const makeStep = (): Step => Effect.runSync(Schedule.toStep(schedule)) as Step
  let step = makeStep()
  return {
    retryStrategy: () => {
      const exit = Effect.runSyncExit(step(Date.now(), undefined))
      return Exit.isSuccess(exit) ? Math.max(0, Math.round(Duration.toMillis(exit.value[1]))) : null
    },
    reset: () => {
      step = makeStep()
    }
  }
}

/** The default reconnect schedule: exponential from 50 ms, capped at 2 s, jittered, forever. */
export const defaultReconnectSchedule: Schedule.Schedule<unknown> = Schedule.min([
  Schedule.exponential("50 millis"),
  Schedule.spaced("2 seconds")
]).pipe(Schedule.jittered)
