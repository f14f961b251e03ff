/**
 * The sink's local buffer: an Effect `Queue` of encoded events bounded in count and in bytes (the length of their JSON
 * text) with the chosen overflow strategy, how batches are taken from it (by size or after a linger, whichever first),
 * and the progress that tells `flush` when every event accepted so far has left it.
 *
 * Events leave the buffer in the order they entered, whether written or dropped, so "everything accepted before
 * `flush` has left" is simply "the count of settled events reached the count accepted at the call".
 *
 * @internal
 */
import { Deferred, Duration, Effect, Exit, Queue } from "effect"
import { fail } from "./error.js"
import { type EventSinkError } from "../../EventSinkError.js"
import * as Reasons from "../../EventSinkError.js"
import type { OverflowStrategy } from "../../EventSink.js"

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
  /** Most bytes of encoded events buffered. */
  readonly capacityBytes: number
  readonly strategy: OverflowStrategy
  readonly maxBatchSize: number
  readonly linger: Duration.Duration
  readonly counters: Counters
}): Effect.Effect<Buffer> =>
  Effect.gen(function* () {
    const { capacity, capacityBytes, strategy, maxBatchSize, linger, counters } = options
    // never full by itself: `offer` makes room (or refuses) before it offers
    const queue = yield* Queue.unbounded<string>()
    /** Bytes of the events in the queue. */
    let bytes = 0
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

    const sizeOf = (events: ReadonlyArray<string>) => events.reduce((sum, event) => sum + event.length, 0)
    const fits = (count: number, size: number) =>
      Queue.sizeUnsafe(queue) + count <= capacity && bytes + size <= capacityBytes

    /** Drops the oldest buffered event (it leaves the buffer unwritten). */
    const dropOldest = () => {
      const oldest = Queue.takeUnsafe(queue)
      if (oldest === undefined || Exit.isFailure(oldest)) return false
      bytes -= oldest.value.length
      counters.droppedOverflow += 1
      settled += 1
      return true
    }

    /** The new events that fit after the buffered ones, in order (`dropNewest`: the first ones). */
    const fittingPrefix = (events: ReadonlyArray<string>) => {
      let count = 0
      let size = 0
      for (const event of events) {
        if (!fits(count + 1, size + event.length)) break
        count += 1
        size += event.length
      }
      return events.slice(0, count)
    }

    const offer = (events: ReadonlyArray<string>): EventSinkError | undefined => {
      const size = sizeOf(events)
      if (strategy === "fail" && !fits(events.length, size)) {
        counters.refused += events.length
        return fail(
          Reasons.BufferFull,
          `the buffer holds at most ${capacity} events and ${capacityBytes} bytes; it has ${Queue.sizeUnsafe(queue)} events and ${bytes} bytes`
        )
      }
      let taken = events
      if (strategy === "dropOldest") {
        while (!fits(events.length, size) && dropOldest()) {
          // made room by dropping the oldest buffered event
        }
        // new events that alone exceed the buffer: the oldest of them go too
        if (!fits(events.length, size)) taken = events.slice(events.length - fittingSuffixLength(events))
      } else if (strategy === "dropNewest") {
        taken = fittingPrefix(events)
      }
      Queue.offerAllUnsafe(queue, taken)
      bytes += taken === events ? size : sizeOf(taken)
      counters.accepted += strategy === "dropOldest" ? events.length : taken.length
      const dropped = events.length - taken.length
      counters.droppedOverflow += dropped
      // new events dropped by `dropOldest` were accepted and left unwritten at once
      if (strategy === "dropOldest") settled += dropped
      if (needed > 0 && Queue.sizeUnsafe(queue) >= needed) hurry()
      return undefined
    }

    /** How many of the last events fit in an empty buffer. */
    const fittingSuffixLength = (events: ReadonlyArray<string>) => {
      let count = 0
      let size = 0
      for (let index = events.length - 1; index >= 0; index--) {
        size += (events[index] as string).length
        if (count + 1 > capacity || size > capacityBytes) break
        count += 1
      }
      return count
    }

    /** Records that `events` left the queue. */
    const removed = (events: ReadonlyArray<string>) => {
      bytes -= sizeOf(events)
      return events
    }

    const takeAvailable = (max: number) =>
      Queue.sizeUnsafe(queue) === 0 ? Effect.succeed([]) : Effect.map(Queue.takeBetween(queue, 1, max), removed)

    const takeBatch = Effect.gen(function* () {
      const first = removed(yield* Queue.takeBetween(queue, 1, maxBatchSize))
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
      takeAll: Effect.map(Queue.clear(queue), removed),
      settle,
      drained,
      failWaiters,
      hurry
    }
  })
