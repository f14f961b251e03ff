import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as Combiner from "../../src/internal/combiner.js"

/** A combiner whose writes record their batches (after a short wait, so requests pile up meanwhile). */
const recording = (limits: {
  maxBatch?: number
  maxBatchBytes?: number
  weigh?: (request: number) => number
  maxBatchesInFlight?: number
}) =>
  Effect.gen(function* () {
    const batches: Array<ReadonlyArray<number>> = []
    /** Batches being written right now, and the most seen at once. */
    const inFlight = { now: 0, most: 0 }
    const combiner = Combiner.make<number, number, never, undefined>({
      scope: yield* Effect.scope,
      state: () => undefined,
      write: (_key, batch) =>
        Effect.sync(() => {
          inFlight.most = Math.max(inFlight.most, ++inFlight.now)
        }).pipe(
          Effect.andThen(Effect.sleep("5 millis")),
          Effect.as(batch.map((request) => Exit.succeed(request))),
          Effect.tap(() =>
            Effect.sync(() => {
              inFlight.now--
              batches.push(batch)
            })
          )
        ),
      ...limits
    })
    return { combiner, batches, inFlight }
  })

describe("Combiner", () => {
  it.live("a burst is written in batches of at most maxBatch requests, in order, each caller getting its own", () =>
    Effect.gen(function* () {
      const { combiner, batches } = yield* recording({})
      const results = yield* Effect.forEach(
        Array.from({ length: 2_500 }, (_, i) => i),
        (i) => combiner.submit("k", i),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(
        results,
        Array.from({ length: 2_500 }, (_, i) => i)
      )
      assert.isAtLeast(batches.length, 3)
      for (const batch of batches) assert.isAtMost(batch.length, 1000)
      assert.deepStrictEqual(batches.flat(), results)
    }).pipe(Effect.scoped)
  )

  it.live("maxBatchesInFlight 1 (the default): a key's batches are written one after another", () =>
    Effect.gen(function* () {
      const { combiner, inFlight } = yield* recording({ maxBatch: 10 })
      yield* Effect.forEach(
        Array.from({ length: 100 }, (_, i) => i),
        (i) => combiner.submit("k", i),
        {
          concurrency: "unbounded"
        }
      )
      assert.strictEqual(inFlight.most, 1)
    }).pipe(Effect.scoped)
  )

  it.live("maxBatchesInFlight 2: a key's queue is shared by two batches in flight; every caller gets its own", () =>
    Effect.gen(function* () {
      const { combiner, batches, inFlight } = yield* recording({ maxBatchesInFlight: 2 })
      const requests = Array.from({ length: 100 }, (_, i) => i)
      // 50 callers, each submitting twice in a row: the second waits for the first's result
      const results = yield* Effect.forEach(
        Array.from({ length: 50 }, (_, caller) => caller),
        (caller) =>
          Effect.zip(
            combiner.submit("k", caller),
            Effect.suspend(() => combiner.submit("k", caller + 50))
          ),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(
        results,
        Array.from({ length: 50 }, (_, caller) => [caller, caller + 50])
      )
      assert.strictEqual(inFlight.most, 2)
      // the first 50 were shared out: no batch took them all
      assert.isBelow(batches[0]?.length ?? 0, 50)
      assert.deepStrictEqual(
        [...batches.flat()].sort((a, b) => a - b),
        requests
      )
      yield* combiner.flush
      assert.strictEqual(inFlight.now, 0)
    }).pipe(Effect.scoped)
  )

  it.live("batches hold at most maxBatchBytes as weigh counts them; a larger request goes alone", () =>
    Effect.gen(function* () {
      const { combiner, batches } = yield* recording({ weigh: (request) => request, maxBatchBytes: 1_000 })
      const sizes = [10, 400, 400, 400, 5_000, 300, 300, 300, 300]
      yield* Effect.forEach(sizes, (size) => combiner.submit("k", size), { concurrency: "unbounded" })
      for (const batch of batches) {
        const bytes = batch.reduce((sum, size) => sum + size, 0)
        assert.isTrue(bytes <= 1_000 || batch.length === 1, `batch ${batch.join(",")} is within the limit`)
      }
      assert.deepStrictEqual(batches.flat(), sizes)
      assert.isTrue(batches.some((batch) => batch.length === 1 && batch[0] === 5_000))
    }).pipe(Effect.scoped)
  )
})
