import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import * as Waiter from "../../src/internal/waiter.js"

describe("Waiter", () => {
  it.effect("a result given before the wait is had at once; the first result given counts", () =>
    Effect.gen(function* () {
      const waiter = Waiter.make<number, string>()
      Waiter.complete(waiter, Effect.succeed(1))
      Waiter.complete(waiter, Effect.succeed(2))
      assert.strictEqual(yield* Waiter.wait(waiter), 1)
    })
  )

  it.effect("a waiting fiber is resumed by the result, a failure included", () =>
    Effect.gen(function* () {
      const waiter = Waiter.make<number, string>()
      const fiber = yield* Effect.forkChild(Waiter.wait(waiter))
      yield* Effect.yieldNow
      Waiter.complete(waiter, Effect.fail("refused"))
      assert.deepStrictEqual(yield* Fiber.await(fiber), Exit.fail("refused"))
    })
  )

  it.effect("an interrupted wait stops waiting; a later result is ignored", () =>
    Effect.gen(function* () {
      const waiter = Waiter.make<number, string>()
      const fiber = yield* Effect.forkChild(Waiter.wait(waiter))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(fiber)
      Waiter.complete(waiter, Effect.succeed(3))
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.hasInterrupts(exit))
    })
  )
})
