/**
 * Slow consumers in a process of their own, for the memory test (run with `--expose-gc`): a run appends `n` chunks of
 * `bytes` bytes while the starter's own stream and a reader each take one chunk and then stall until the run has
 * ended; the heap is measured then, and both consumers read on to the end. Prints one JSON line: heap growth while
 * stalled (bytes), the overflow count, and each consumer's sequence check. Arguments: `single <url>` or
 * `cluster <host:port,…>`, the key prefix, n, bytes, and the live buffer bound (bytes).
 */
import { Deferred, Effect, Fiber, Layer, Metric, Schema, Stream } from "effect"
import * as ResumableStream from "../../src/ResumableStream.js"
import { clientFromArgs, runChild } from "./child.js"

const [mode, target, keyPrefix, n, bytes, liveBufferBytes] = process.argv.slice(2)

/** Appends `n` chunks of `bytes` characters, 1,000 at a time. */
const Sized = ResumableStream.define({
  name: "sized",
  input: Schema.Struct({ n: Schema.Number, bytes: Schema.Number }),
  chunk: Schema.String,
  run: (input, writer) =>
    Effect.gen(function* () {
      for (let start = 0; start < input.n; start += 1000) {
        const count = Math.min(1000, input.n - start)
        yield* writer.appendAll(Array.from({ length: count }, (_, i) => `${start + i}:`.padEnd(input.bytes, "x")))
      }
    })
})

const heapUsed = () => {
  ;(globalThis as { gc?: () => void }).gc?.()
  return process.memoryUsage().heapUsed
}

/** Consumes `stream`, stalling after its first entry until `gate` opens; true when the entries are 1…n in order. */
const stalled = (stream: Stream.Stream<ResumableStream.Entry<string>, unknown>, gate: Deferred.Deferred<void>) => {
  let expected = 1
  let inOrder = true
  return Stream.runForEach(stream, (entry) =>
    Effect.andThen(
      expected === 2 ? Deferred.await(gate) : Effect.void,
      Effect.sync(() => {
        inOrder &&= entry.seq === expected && entry.chunk.startsWith(`${expected - 1}:`)
        expected++
      })
    )
  ).pipe(Effect.map(() => inOrder && expected === Number(n) + 1))
}

const program = Effect.gen(function* () {
  const streams = yield* ResumableStream.ResumableStream
  const before = heapUsed()
  const gate = yield* Deferred.make<void>()
  const started = yield* streams.start(Sized, { n: Number(n), bytes: Number(bytes) })
  const starter = yield* Effect.forkChild(stalled(started.stream, gate))
  const reader = yield* Effect.forkChild(stalled(streams.resume(Sized, started.token), gate))
  // a reader that keeps up says when the run has ended
  yield* Stream.runDrain(streams.resume(Sized, started.token))
  yield* Effect.sleep("200 millis") // the last announcements reach the stalled reader's inbox
  const growth = heapUsed() - before
  yield* Deferred.succeed(gate, undefined)
  const [starterInOrder, readerInOrder] = yield* Fiber.joinAll([starter, reader])
  const snapshot = yield* Metric.snapshot
  const overflows = snapshot.find((metric) => metric.id === "resumable_stream_live_overflows")
  process.stdout.write(
    `${JSON.stringify({ growth, overflows: (overflows?.state as { count?: number } | undefined)?.count ?? 0, starterInOrder, readerInOrder })}\n`
  )
})

void runChild(
  program.pipe(
    Effect.provide(
      ResumableStream.layer({
        streams: [Sized],
        keyPrefix,
        unsignedTokens: true,
        liveBufferBytes: Number(liveBufferBytes)
      }).pipe(Layer.provide(clientFromArgs(mode, target)))
    )
  )
)
