/**
 * Stream definitions shared by the ResumableStream tests and the child-process producer.
 */
import { Effect, Schema } from "effect"
import * as ResumableStream from "../../src/ResumableStream.js"
import * as RedisServer from "../../src/testing/RedisServer.js"

/** Appends `c0`…`c{n-1}`, `delayMs` apart. */
export const Counter = ResumableStream.define({
  name: "counter",
  input: Schema.Struct({ n: Schema.Number, delayMs: Schema.Number }),
  chunk: Schema.String,
  run: (input, writer) =>
    Effect.gen(function* () {
      for (let i = 0; i < input.n; i++) {
        yield* writer.append(`c${i}`)
        if (input.delayMs > 0) yield* Effect.sleep(input.delayMs)
      }
    })
})

/** The runner's typed failure. */
export class Boom extends Schema.TaggedError<Boom>()("Boom", { code: Schema.Number }) {}

/** Appends 3 chunks, then fails with `Boom`. */
export const Failing = ResumableStream.define({
  name: "failing",
  input: Schema.Struct({ code: Schema.Number }),
  chunk: Schema.String,
  error: Boom,
  run: (input, writer) =>
    Effect.gen(function* () {
      yield* writer.appendAll(["a", "b", "c"])
      return yield* new Boom({ code: input.code })
    })
})

/** Appends a tick every `everyMs` until stopped. */
export const Forever = ResumableStream.define({
  name: "forever",
  input: Schema.Struct({ everyMs: Schema.Number }),
  chunk: Schema.Number,
  run: (input, writer) =>
    Effect.gen(function* () {
      for (let i = 0; ; i++) {
        yield* writer.append(i)
        yield* Effect.sleep(input.everyMs)
      }
    })
})

/** Every definition of the tests. */
export const all = [Counter, Failing, Forever] as const

/** Options for the tests: every definition, a key prefix of the test's own, fast heartbeats. */
export const testOptions = (
  label: string,
  overrides: Partial<ResumableStream.Options<typeof all>> = {}
): ResumableStream.Options<typeof all> => ({
  streams: all,
  keyPrefix: RedisServer.uniquePrefix(label),
  heartbeatInterval: "100 millis",
  producerTimeout: "1 second",
  unsignedTokens: true,
  shutdownGrace: "200 millis",
  ...overrides
})
