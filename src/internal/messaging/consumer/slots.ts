/**
 * A consumer's in-flight slots: the messages it holds (received, not yet acknowledged or dead-lettered) with when
 * each was last delivered, at most `maxInFlight`; the reader waits for a free slot before it reads.
 *
 * @internal
 */
import { Deferred, Effect, Exit } from "effect"

/** The in-flight messages of one consumer. */
export interface Slots {
  /** The held messages' ids, with when each was last delivered (or its lease renewed), in ms since the epoch. */
  readonly inFlight: Map<string, number>
  /** How many more messages may be held now. */
  readonly free: () => number
  /** Waits for at least one free slot; how many are free. */
  readonly wait: Effect.Effect<number>
  /** Frees the slot of `id` (wakes the reader waiting for one). */
  readonly release: (id: string) => void
}

/** Slots for at most `maxInFlight` messages. */
export const make = (maxInFlight: number): Slots => {
  const inFlight = new Map<string, number>()
  let waiter: Deferred.Deferred<void> | undefined
  const free = () => maxInFlight - inFlight.size
  const wait: Effect.Effect<number> = Effect.suspend(() => {
    const n = free()
    if (n > 0) return Effect.succeed(n)
    waiter ??= Deferred.makeUnsafe<void>()
    return Effect.andThen(Deferred.await(waiter), wait)
  })
  const release = (id: string) => {
    if (!inFlight.delete(id) || waiter === undefined) return
    Deferred.doneUnsafe(waiter, Exit.void)
    waiter = undefined
  }
  return { inFlight, free, wait, release }
}
