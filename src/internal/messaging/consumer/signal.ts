/**
 * Wake-ups of a consumer's loops, raised from outside them (a pub/sub listener, a nack): the reader's "new entries"
 * signal and the retry loop's due time.
 *
 * @internal
 */
import { Deferred, Duration, Effect, Exit } from "effect"

/** A flag raised by events and awaited by one loop, which lowers it before it looks for work. */
export interface Signal {
  /** Raises the flag, waking the waiting loop. */
  readonly raise: () => void
  /** Lowers the flag: what is raised from now on wakes the next `await`. */
  readonly lower: () => void
  /** Waits until the flag is raised, at most `timeout`; at once when it is up. */
  readonly await: (timeout: Duration.Duration) => Effect.Effect<void>
}

/** A lowered flag. */
export const makeSignal = (): Signal => {
  let raised = false
  let waiter: Deferred.Deferred<void> | undefined
  return {
    raise: () => {
      raised = true
      if (waiter === undefined) return
      Deferred.doneUnsafe(waiter, Exit.void)
      waiter = undefined
    },
    lower: () => {
      raised = false
    },
    await: (timeout) =>
      Effect.suspend(() => {
        if (raised) return Effect.void
        waiter ??= Deferred.makeUnsafe<void>()
        return Effect.asVoid(Effect.timeoutOption(Deferred.await(waiter), timeout))
      })
  }
}

/** When a consumer expects the group's next retry to be due, in ms since the epoch (its clock). */
export interface DueClock {
  /** The earliest due time known (infinity: none). */
  readonly next: () => number
  /** Forgets what is known before asking Redis (a `poke` meanwhile lowers it again). */
  readonly reset: () => void
  /** Notes a retry due at `at` (0: now, a message was handed back), waking the retry loop when it is earlier. */
  readonly poke: (at: number) => void
  /** Waits until `until` (ms since the epoch) or an earlier poke. */
  readonly sleepUntil: (until: number) => Effect.Effect<void>
}

/** A due clock that knows of no retry. */
export const makeDueClock = (): DueClock => {
  let nextDueAt = Number.POSITIVE_INFINITY
  let waiter: Deferred.Deferred<void> | undefined
  return {
    next: () => nextDueAt,
    reset: () => {
      nextDueAt = Number.POSITIVE_INFINITY
    },
    poke: (at) => {
      if (at >= nextDueAt) return
      nextDueAt = at
      if (waiter === undefined) return
      Deferred.doneUnsafe(waiter, Exit.void)
      waiter = undefined
    },
    sleepUntil: (until) =>
      Effect.suspend(() => {
        const wait = until - Date.now()
        if (wait <= 0) return Effect.void
        waiter ??= Deferred.makeUnsafe<void>()
        return Effect.asVoid(Effect.timeoutOption(Deferred.await(waiter), Duration.millis(wait)))
      })
  }
}
