/**
 * Drives ioredis' synchronous `retryStrategy(times)` from an Effect `Schedule`.
 *
 * ioredis asks for the delay before each reconnect attempt; the answer here is the schedule's next delay. When the
 * schedule ends, ioredis is told to stop (`null`), and the client ends for good. After a successful reconnect the
 * schedule starts again from its first delay (`reset`).
 *
 * @internal
 */
import { Duration, Schedule } from "effect"
import { delays } from "../schedules.js"

/** A `retryStrategy` for ioredis plus a `reset` to call when the connection is ready again. */
export interface RetryStrategy {
  readonly retryStrategy: (times: number) => number | null
  readonly reset: () => void
}

/** Builds an ioredis `retryStrategy` whose delays are the steps of `schedule`. */
export const fromSchedule = (schedule: Schedule.Schedule<unknown, unknown>): RetryStrategy => {
  let next = delays(schedule)
  return {
    retryStrategy: () => {
      const delay = next()
      return delay === undefined ? null : Math.max(0, Math.round(Duration.toMillis(delay)))
    },
    reset: () => {
      next = delays(schedule)
    }
  }
}

/**
 * The default reconnect schedule: exponential from 50 ms, capped at 500 ms, jittered, forever. A server that comes
 * back, or the new master of a failover, is found within about half a second.
 */
export const defaultReconnectSchedule: Schedule.Schedule<unknown> = Schedule.min([
  Schedule.exponential("50 millis"),
  Schedule.spaced("500 millis")
]).pipe(Schedule.jittered)
