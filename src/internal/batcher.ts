/**
 * Read batching: the requests submitted while the submitting fibers run (until the microtasks queued meanwhile ran:
 * fibers resumed together by one reply, or started together by one scheduler turn) go to Redis as one batch,
 * and a batch does not wait for the previous one (reads need no order), so a steady load keeps as many round trips in
 * flight as it needs, each carrying what arrived together. Each request gets its own result.
 *
 * For writes whose order matters, see `combiner.ts` (one batch at a time per key).
 *
 * @internal
 */
import { Effect, Exit, type Scope } from "effect"
import { afterMicrotasks } from "./microtasks.js"
import * as Waiter from "./waiter.js"

/** A batcher of requests of type `Req`. */
export interface Batcher<Req, Res, E> {
  readonly submit: (request: Req) => Effect.Effect<Res, E>
}

interface Pending<Req, Res, E> {
  readonly request: Req
  readonly done: Waiter.Waiter<Res, E>
}

/** Makes a batcher: `run` answers a batch with one exit per request, in order; batches hold at most `maxBatch`. */
export const make = <Req, Res, E>(options: {
  readonly scope: Scope.Scope
  readonly run: (batch: ReadonlyArray<Req>) => Effect.Effect<ReadonlyArray<Exit.Exit<Res, E>>>
  readonly maxBatch?: number | undefined
}): Batcher<Req, Res, E> => {
  const maxBatch = options.maxBatch ?? 1000
  let pending: Array<Pending<Req, Res, E>> = []

  const runBatch = (batch: ReadonlyArray<Pending<Req, Res, E>>) =>
    Effect.flatMap(options.run(batch.map((item) => item.request)), (exits) =>
      Effect.sync(() =>
        batch.forEach((item, index) =>
          Waiter.complete(item.done, exits[index] ?? Exit.die(new Error("no result for a batched request")))
        )
      )
    ).pipe(
      Effect.onInterrupt(() => Effect.sync(() => batch.forEach((item) => Waiter.complete(item.done, Effect.interrupt))))
    )

  /** Sends what is pending, in batches of at most `maxBatch`, each without waiting for the others. */
  const flush = Effect.suspend(() => {
    const batch = pending
    pending = []
    const batches: Array<ReadonlyArray<Pending<Req, Res, E>>> = []
    for (let start = 0; start < batch.length; start += maxBatch) batches.push(batch.slice(start, start + maxBatch))
    return Effect.forEach(batches, runBatch, { concurrency: "unbounded", discard: true })
  })

  /**
   * The flush of the batch being gathered, once the running fibers had their turn. Interrupted before it took the
   * batch (its scope closed), it interrupts the waiting callers instead of leaving them waiting.
   */
  const scheduled = () => {
    let took = false
    return Effect.andThen(
      afterMicrotasks,
      Effect.suspend(() => {
        took = true
        return flush
      })
    ).pipe(
      Effect.onInterrupt(() =>
        Effect.sync(() => {
          if (took) return
          const left = pending
          pending = []
          for (const item of left) Waiter.complete(item.done, Effect.interrupt)
        })
      )
    )
  }

  return {
    submit: (request) =>
      Effect.suspend(() => {
        const done = Waiter.make<Res, E>()
        // queued, and the first request of a batch schedules its flush (after the fibers running now had their
        // turn), as one step: interrupted in between, it would leave a batch that no flush takes
        const enqueue = Effect.suspend(() => {
          pending.push({ request, done })
          return pending.length === 1
            ? Effect.asVoid(Effect.forkIn(scheduled(), options.scope, { startImmediately: true }))
            : Effect.void
        })
        return Effect.andThen(Effect.uninterruptible(enqueue), Waiter.wait(done))
      })
  }
}
