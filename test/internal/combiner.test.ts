import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as Combiner from "../../src/internal/combiner.js"

/** A combiner whose writes record their batches (after a short wait, so requests pile up meanwhile). */
const recording = (limits: { maxBatch?: number; maxBatchBytes?: number; weigh?: (request: number) => number }) =>
  Effect.gen(function* () {
    const batches: Array<ReadonlyArray<number>> = []
    const combiner = Combiner.make<number, number, never, undefined>({
      scope: yield* Effect.scope,
      state: () => undefined,
      write: (_key, batch) =>
        Effect.as(
          Effect.sleep("5 millis"),
          batch.map((request) => Exit.succeed(request))
        ).pipe(Effect.tap(() => Effect.sync(() => batches.push(batch)))),
      ...limits
    })
    return { combiner, batches }
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
