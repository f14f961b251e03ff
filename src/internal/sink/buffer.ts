/**
 * The sink's local buffer: a bounded Effect `Queue` of encoded events with the chosen overflow strategy, how batches
 * are taken from it (by size or after a linger, whichever first), and the progress that tells `flush` when every
 * event accepted so far has left it.
 *
 * Events leave the buffer in the order they entered, whether written or dropped, so "everything accepted before
 * `flush` has left" is simply "the count of settled events reached the count accepted at the call".
 *
 * @internal
 */
import { Deferred, Duration, Effect, Exit, Queue } from "effect"
import { type EventSinkError, fail } from "./error.js"

/**
 * What `emit` does when the buffer is full: drop the oldest buffered event (`dropOldest`), drop the new one
 * (`dropNewest`), or refuse it with a typed `BufferFull` error (`fail`).
 *
 * @since 0.1.0
 */
export type OverflowStrategy = "dropOldest" | "dropNewest" | "fail"

/** Running totals of the sink, shared by the buffer and the writer; never reset. */
export interface Counters {
  /** Events taken into the buffer. */
  accepted: number
  /** Events in Redis. */
  written: number
  /** Events the overflow strategy dropped (`dropOldest`, `dropNewest`). */
  droppedOverflow: number
  /** Events Redis refused for good (a data error such as `WRONGTYPE`): reported and dropped. */
  droppedRejected: number
  /** Events still buffered when the layer closed and its flush deadline passed. */
  droppedShutdown: number
  /** Events refused with `BufferFull` (strategy `fail`): the caller got the error. */
  refused: number
  /** Writes that failed. */
  failedWrites: number
}

/** The buffer of one sink. */
export interface Buffer {
  /** Takes `events` in, applying the overflow strategy; fails `BufferFull` (strategy `fail`) taking none of them. */
  readonly offer: (events: ReadonlyArray<string>) => EventSinkError | undefined
  /**
   * Events accepted that have not left yet (not written, not dropped): those in the queue, the batch being
   * assembled and the batch being written.
   */
  readonly pending: () => number
  /**
   * Waits for the next batch: at least one event, and up to `maxBatchSize`; returns as soon as the batch is full,
   * `linger` passed since its first event, or someone is waiting for a flush.
   */
  readonly takeBatch: Effect.Effect<ReadonlyArray<string>>
  /** Takes everything buffered, without waiting. */
  readonly takeAll: Effect.Effect<ReadonlyArray<string>>
  /** Records that `count` events left the buffer (written or dropped); completes the flushes they were waited for. */
  readonly settle: (count: number) => void
  /** Waits until every event accepted before the call has left the buffer. */
  readonly drained: Effect.Effect<void, EventSinkError>
  /** Fails every waiting `drained` with `error` (the breaker opened). */
  readonly failWaiters: (error: EventSinkError) => void
  /** Wakes a lingering `takeBatch` so the next batch goes out now. */
  readonly hurry: () => void
}

interface Waiter {
  readonly target: number
  readonly done: Deferred.Deferred<void, EventSinkError>
}

/** Makes the buffer. `counters` is updated in place. */
export const make = (options: {
  readonly capacity: number
  readonly strategy: OverflowStrategy
  readonly maxBatchSize: number
  readonly linger: Duration.Duration
  readonly counters: Counters
}): Effect.Effect<Buffer> =>
  Effect.gen(function* () {
    const { capacity, strategy, maxBatchSize, linger, counters } = options
    const queue =
      strategy === "dropOldest" ? yield* Queue.sliding<string>(capacity) : yield* Queue.dropping<string>(capacity)
    let settled = 0
    let waiters: Array<Waiter> = []
    // a lingering takeBatch waits on `wake`, for `needed` more events
    let wake = Deferred.makeUnsafe<void>()
    let needed = 0

    const hurry = () => {
      const current = wake
      wake = Deferred.makeUnsafe<void>()
      needed = 0
      Deferred.doneUnsafe(current, Exit.void)
    }

    const offer = (events: ReadonlyArray<string>): EventSinkError | undefined => {
      const free = capacity - Queue.sizeUnsafe(queue)
      if (strategy === "fail" && events.length > free) {
        counters.refused += events.length
        return fail("BufferFull", `the buffer holds ${capacity} events and has room for ${Math.max(0, free)}`)
      }
      if (strategy === "dropOldest") {
        const dropped = Math.max(0, events.length - free)
        Queue.offerAllUnsafe(queue, events)
        counters.accepted += events.length
        counters.droppedOverflow += dropped
        // the oldest buffered events left without being written
        settled += dropped
      } else {
        const rejected = Queue.offerAllUnsafe(queue, events).length
        counters.accepted += events.length - rejected
        counters.droppedOverflow += rejected
      }
      if (needed > 0 && Queue.sizeUnsafe(queue) >= needed) hurry()
      return undefined
    }

    const takeAvailable = (max: number) =>
      Queue.sizeUnsafe(queue) === 0 ? Effect.succeed([]) : Queue.takeBetween(queue, 1, max)

    const takeBatch = Effect.gen(function* () {
      const first = yield* Queue.takeBetween(queue, 1, maxBatchSize)
      const missing = maxBatchSize - first.length
      if (missing === 0 || Duration.isZero(linger) || waiters.length > 0) return first
      const woken = wake
      needed = missing
      if (Queue.sizeUnsafe(queue) < missing) yield* Effect.raceFirst(Effect.sleep(linger), Deferred.await(woken))
      needed = 0
      const rest = yield* takeAvailable(missing)
      return rest.length === 0 ? first : [...first, ...rest]
    })

    const settle = (count: number) => {
      settled += count
      if (waiters.length === 0) return
      const remaining: Array<Waiter> = []
      for (const waiter of waiters) {
        if (waiter.target <= settled) Deferred.doneUnsafe(waiter.done, Exit.void)
        else remaining.push(waiter)
      }
      waiters = remaining
    }

    const drained = Effect.suspend(() => {
      const target = counters.accepted
      if (settled >= target) return Effect.void
      const done = Deferred.makeUnsafe<void, EventSinkError>()
      waiters.push({ target, done })
      hurry()
      return Deferred.await(done)
    })

    const failWaiters = (error: EventSinkError) => {
      for (const waiter of waiters) Deferred.doneUnsafe(waiter.done, Exit.fail(error))
      waiters = []
    }

    return {
      offer,
      pending: () => counters.accepted - settled,
      takeBatch,
      takeAll: Queue.clear(queue),
      settle,
      drained,
      failWaiters,
      hurry
    }
  })
