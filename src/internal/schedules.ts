/**
 * Reading the delays of an Effect `Schedule` synchronously, for places that need a number now (ioredis' reconnect
 * strategy, the n-th redelivery delay).
 *
 * @internal
 */
import { Duration, Effect, Exit, Schedule } from "effect"

type Step = (now: number, input: unknown) => Effect.Effect<readonly [unknown, Duration.Duration], unknown>

/** A fresh walk through `schedule`: each call gives its next delay, or undefined once the schedule is done. */
export const delays = (schedule: Schedule.Schedule<unknown, any>): (() => Duration.Duration | undefined) => {
  const step = Effect.runSync(Schedule.toStep(schedule)) as Step
  return () => {
    const exit = Effect.runSyncExit(step(Date.now(), undefined))
    return Exit.isSuccess(exit) ? exit.value[1] : undefined
  }
}

/** The n-th delay of `schedule` (1-based); the last one when it has fewer, zero when it has none. */
export const nthDelay = (schedule: Schedule.Schedule<unknown, any>, n: number): Duration.Duration => {
  const next = delays(schedule)
  let delay = Duration.zero
  for (let i = 0; i < n; i++) {
    const step = next()
    if (step === undefined) break
    delay = step
  }
  return delay
}
