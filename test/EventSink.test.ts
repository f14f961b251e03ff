import { assert } from "@effect/vitest"
import { Effect, Layer, Logger, Schema, Stream } from "effect"
import * as EventSink from "../src/EventSink.js"
import * as RedisClient from "../src/RedisClient.js"
import * as RedisServer from "../src/testing/RedisServer.js"
import { entriesOf } from "./support/streams.js"
import { forEachTarget, onEveryNode, type Topology, TestTopology } from "./support/targets.js"

/** Options for one test: a stream of its own, and short timings. */
const sinkOptions = (overrides: EventSink.Options = {}): EventSink.Options => ({
  streamKey: `${RedisServer.uniquePrefix("sink")}events`,
  flushInterval: "20 millis",
  failureThreshold: 2,
  openDuration: "200 millis",
  writeTimeout: "1 second",
  shutdownTimeout: "2 seconds",
  ...overrides
})

/** Runs `f` with a sink of its own, closed (flushed) when `f` is done. */
const withSink = <A, E, R>(options: EventSink.Options, f: (sink: EventSink.Service) => Effect.Effect<A, E, R>) =>
  Effect.scoped(Effect.flatMap(EventSink.make(options), f))

const numbered = (from: number, to: number): Array<EventSink.EventInput> =>
  Array.from({ length: to - from }, (_, i) => ({ event_type: "tick", data: { n: from + i } }))

/** The stream's entries as the seed's consumer reads them: XRANGE, then `JSON.parse(fields.event)`. */
const rawEvents = (streamKey: string) =>
  Effect.map(entriesOf(streamKey), (entries) =>
    entries.map(({ id, ...fields }) => ({ id, fields, event: JSON.parse(fields.event as string) as EventSink.Event }))
  )

const numbersOf = (streamKey: string) =>
  Effect.map(rawEvents(streamKey), (entries) => entries.map((entry) => entry.event.data.n as number))

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

/** Events per script call that reached Redis, from the slow log (every command logged; long argument lists abridged). */
const batchSizes = (topology: Topology) =>
  Effect.map(
    onEveryNode(topology, (node) => node.call("SLOWLOG", "GET", "100000") as Promise<Array<Array<unknown>>>),
    (logs) =>
      logs.flat().flatMap((entry) => {
        const args = (entry[3] as Array<string>).map(String)
        if (args[0]?.toLowerCase() !== "evalsha") return []
        const more = /^\.\.\. \((\d+) more arguments\)$/.exec(args.at(-1) ?? "")
        const count = more === null ? args.length : args.length - 1 + Number(more[1])
        return [count - 9] // evalsha sha numkeys key marker group kind approx threshold, then the events
      })
  )

/** Collects log lines of level Warning and above. */
const captureWarnings = Effect.sync(() => {
  const lines: Array<string> = []
  const logger = Logger.make((options) => {
    if (options.logLevel === "Warn" || options.logLevel === "Error") {
      lines.push((options.message as Array<unknown>).map(String).join(" "))
    }
  })
  return { lines, layer: Logger.layer([logger]) }
})

class Boom extends Schema.TaggedError<Boom>()("Boom", { code: Schema.Number }) {}

forEachTarget("EventSink", (it) => {
  it.effect("100k events are all written, in emit order", () =>
    Effect.gen(function* () {
      const options = sinkOptions({ bufferSize: 200_000 })
      const stats = yield* withSink(options, (sink) =>
        Effect.gen(function* () {
          for (let start = 0; start < 100_000; start += 1_000) yield* sink.emitAll(numbered(start, start + 1_000))
          yield* sink.flush
          return yield* sink.stats
        })
      )
      assert.deepStrictEqual(yield* numbersOf(options.streamKey as string), range(0, 100_000))
      assert.strictEqual(stats.written, 100_000)
      assert.strictEqual(stats.buffered, 0)
    })
  )

  it.effect("stats count as buffered the events of a batch still being assembled", () =>
    withSink(sinkOptions({ flushInterval: "5 seconds", maxBatchSize: 100 }), (sink) =>
      Effect.gen(function* () {
        yield* sink.emitAll(numbered(0, 10))
        yield* Effect.sleep("100 millis") // the writer took them and waits for the batch to fill
        const stats = yield* sink.stats
        assert.deepStrictEqual([stats.written, stats.buffered], [0, 10])
        yield* sink.flush
        const flushed = yield* sink.stats
        assert.deepStrictEqual([flushed.written, flushed.buffered], [10, 0])
      })
    )
  )

  it.effect("no batch that reaches Redis holds more than maxBatchSize events", () =>
    Effect.gen(function* () {
      const topology = yield* TestTopology
      const options = sinkOptions({ maxBatchSize: 100, bufferSize: 10_000 })
      yield* withSink(options, (sink) =>
        Effect.gen(function* () {
          yield* sink.emit({ event_type: "warm-up" }) // loads the script, so no NOSCRIPT retry is logged
          yield* sink.flush
          yield* onEveryNode(topology, (node) =>
            node
              .config("SET", "slowlog-log-slower-than", "0")
              .then(() => node.config("SET", "slowlog-max-len", "100000"))
              .then(() => node.call("SLOWLOG", "RESET"))
          )
          for (let i = 0; i < 5_000; i++) yield* sink.emit({ event_type: "tick", data: { n: i } })
          yield* sink.flush
        })
      )
      const sizes = yield* batchSizes(topology)
      yield* onEveryNode(topology, (node) => node.config("SET", "slowlog-log-slower-than", "10000"))
      assert.strictEqual(
        sizes.reduce((a, b) => a + b, 0),
        5_000
      )
      assert.isAtMost(Math.max(...sizes), 100)
      assert.isAtLeast(sizes.length, 50)
    })
  )

  it.effect("dropOldest drops exactly the oldest events beyond the buffer, and counts them", () =>
    Effect.gen(function* () {
      const options = sinkOptions({ bufferSize: 100, overflowStrategy: "dropOldest" })
      const stats = yield* withSink(options, (sink) =>
        // one synchronous burst: the writer cannot take anything meanwhile
        Effect.sync(() => numbered(0, 150).forEach(sink.emitUnsafe)).pipe(
          Effect.andThen(sink.flush),
          Effect.andThen(sink.stats)
        )
      )
      assert.deepStrictEqual(yield* numbersOf(options.streamKey as string), range(50, 150))
      assert.strictEqual(stats.dropped.overflow, 50)
      assert.strictEqual(stats.emitted, 150)
      assert.strictEqual(stats.written, 100)
    })
  )

  it.effect("dropNewest drops exactly the newest events beyond the buffer, and counts them", () =>
    Effect.gen(function* () {
      const options = sinkOptions({ bufferSize: 100, overflowStrategy: "dropNewest" })
      const stats = yield* withSink(options, (sink) =>
        sink.emitAll(numbered(0, 150)).pipe(Effect.andThen(sink.flush), Effect.andThen(sink.stats))
      )
      assert.deepStrictEqual(yield* numbersOf(options.streamKey as string), range(0, 100))
      assert.strictEqual(stats.dropped.overflow, 50)
      assert.strictEqual(stats.written, 100)
    })
  )

  it.effect("bufferBytes bounds the buffer in bytes: dropOldest keeps the newest events that fit, fail refuses", () =>
    Effect.gen(function* () {
      const bufferBytes = 20_000
      const big = (from: number, to: number) =>
        numbered(from, to).map((event) => ({ ...event, data: { ...event.data, pad: "x".repeat(1000) } }))
      const options = sinkOptions({ bufferSize: 10_000, bufferBytes, overflowStrategy: "dropOldest" })
      const stats = yield* withSink(options, (sink) =>
        Effect.sync(() => big(0, 100).forEach(sink.emitUnsafe)).pipe(
          Effect.andThen(sink.flush),
          Effect.andThen(sink.stats)
        )
      )
      const written = yield* rawEvents(options.streamKey as string)
      const numbers = written.map((entry) => entry.event.data.n as number)
      const writtenBytes = written.reduce((sum, entry) => sum + (entry.fields.event as string).length, 0)
      assert.isAtMost(writtenBytes, bufferBytes)
      assert.isAtLeast(numbers.length, 10)
      assert.deepStrictEqual(numbers, range(100 - numbers.length, 100))
      assert.strictEqual(stats.dropped.overflow, 100 - numbers.length)

      const failing = sinkOptions({ bufferSize: 10_000, bufferBytes, overflowStrategy: "fail" })
      const error = yield* withSink(failing, (sink) => Effect.flip(sink.emitAll(big(0, 100))))
      assert.strictEqual(error.reason._tag, "BufferFull")
      assert.deepStrictEqual(yield* numbersOf(failing.streamKey as string), [])
    })
  )

  it.effect("fail refuses what does not fit with a typed BufferFull, and takes nothing of it", () =>
    Effect.gen(function* () {
      const options = sinkOptions({ bufferSize: 100, overflowStrategy: "fail" })
      const [batchError, singleError, stats] = yield* withSink(options, (sink) =>
        Effect.gen(function* () {
          const batchError = yield* Effect.flip(sink.emitAll(numbered(0, 150)))
          yield* sink.emitAll(numbered(0, 100))
          const singleError = yield* Effect.flip(sink.emit({ event_type: "tick", data: { n: 100 } }))
          yield* sink.flush
          return [batchError, singleError, yield* sink.stats] as const
        })
      )
      assert.strictEqual(batchError.reason._tag, "BufferFull")
      assert.strictEqual(singleError.reason._tag, "BufferFull")
      assert.isFalse(singleError.isRetryable)
      assert.deepStrictEqual(yield* numbersOf(options.streamKey as string), range(0, 100))
      assert.strictEqual(stats.refused, 151)
      assert.strictEqual(stats.dropped.overflow, 0)
    })
  )

  it.effect(
    "a stream written by the sink reads with plain XRANGE and JSON.parse(fields.event), as the seed's consumer",
    () =>
      Effect.gen(function* () {
        const options = sinkOptions({ tags: { environment: "test" } })
        yield* withSink(options, (sink) =>
          sink.emit({
            event_type: "llm_call",
            execution_id: "exec_abc123",
            operation: "answer_generation",
            data: { model: "gemini/gemini-2.0-flash", tokens_used: 287, cost_usd: 0.0023 },
            tags: { user_id: "user_123" }
          })
        )
        const [entry] = yield* rawEvents(options.streamKey as string)
        assert.deepStrictEqual(Object.keys(entry?.fields ?? {}), ["event"])
        const event = entry?.event as EventSink.Event
        assert.deepStrictEqual(Object.keys(event), [
          "event_id",
          "event_type",
          "timestamp",
          "execution_id",
          "operation",
          "data",
          "tags"
        ])
        assert.strictEqual(event.event_type, "llm_call")
        assert.strictEqual(event.execution_id, "exec_abc123")
        assert.strictEqual(event.data.model, "gemini/gemini-2.0-flash")
        assert.deepStrictEqual(event.tags, { environment: "test", user_id: "user_123" })
        assert.strictEqual(new Date(event.timestamp).toISOString(), event.timestamp)
        assert.match(event.event_id, /^[0-9a-f-]{36}$/)
      })
  )

  it.effect("approximate trimming keeps the stream near maxStreamLength; exact trimming keeps it at it", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const approximate = sinkOptions({ maxStreamLength: 1_000, bufferSize: 30_000 })
      const exact = sinkOptions({ maxStreamLength: 1_000, approximateTrimming: false, bufferSize: 30_000 })
      for (const options of [approximate, exact]) {
        yield* withSink(options, (sink) => sink.emitAll(numbered(0, 20_000)).pipe(Effect.andThen(sink.flush)))
      }
      const approximateLength = yield* redis.use("xlen", (c) => c.xlen(approximate.streamKey as string))
      assert.isAtLeast(approximateLength, 1_000)
      assert.isBelow(approximateLength, 1_200) // whole nodes of 100 entries are trimmed
      assert.strictEqual(yield* redis.use("xlen", (c) => c.xlen(exact.streamKey as string)), 1_000)
      const last = (yield* numbersOf(exact.streamKey as string)).at(-1)
      assert.strictEqual(last, 19_999)
    })
  )

  it.effect("maxStreamAge trims entries older than the age (MINID), by the server's clock", () =>
    Effect.gen(function* () {
      const options = sinkOptions({ maxStreamAge: "300 millis", approximateTrimming: false })
      yield* withSink(options, (sink) =>
        Effect.gen(function* () {
          yield* sink.emitAll(numbered(0, 10))
          yield* sink.flush
          yield* Effect.sleep("500 millis")
          yield* sink.emitAll(numbered(10, 20))
        })
      )
      assert.deepStrictEqual(yield* numbersOf(options.streamKey as string), range(10, 20))
    })
  )

  it.effect("a consumer group is created at start (MKSTREAM); health reports length, pending and lag", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const options = sinkOptions({ consumerGroup: "analytics" })
      const health = yield* withSink(options, (sink) =>
        Effect.gen(function* () {
          const empty = yield* sink.health
          assert.deepStrictEqual(
            empty.groups.map((group) => group.name),
            ["analytics"]
          )
          yield* sink.emitAll(numbered(0, 10))
          yield* sink.flush
          yield* redis.use("xreadgroup", (c) =>
            c.xreadgroup("GROUP", "analytics", "worker", "COUNT", 4, "STREAMS", options.streamKey as string, ">")
          )
          return yield* sink.health
        })
      )
      assert.strictEqual(health.length, 10)
      assert.strictEqual(health.breaker, "Closed")
      assert.deepStrictEqual(
        health.groups.map(({ name, pending, lag }) => ({ name, pending, lag })),
        [{ name: "analytics", pending: 4, lag: 6 }]
      )
    })
  )

  it.effect("events() reads a time range back, decoded; an entry that is not an event is skipped or fails typed", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const options = sinkOptions()
      yield* withSink(options, (sink) =>
        Effect.gen(function* () {
          yield* sink.emitAll(numbered(0, 5))
          yield* sink.flush
          yield* Effect.sleep("20 millis")
          const middle = Date.now()
          yield* Effect.sleep("20 millis")
          yield* redis.use("xadd", (c) => c.xadd(options.streamKey as string, "*", "event", "not json"))
          yield* sink.emitAll(numbered(5, 10))
          yield* sink.flush
          const all = yield* Stream.runCollect(sink.events({ pageSize: 3 }))
          assert.deepStrictEqual(
            all.map((stored) => stored.event.data.n),
            range(0, 10)
          )
          const later = yield* Stream.runCollect(sink.events({ from: middle }))
          assert.deepStrictEqual(
            later.map((stored) => stored.event.data.n),
            range(5, 10)
          )
          const error = yield* Effect.flip(Stream.runCollect(sink.events({ onInvalid: "fail" })))
          assert.strictEqual(error.reason._tag, "Decode")
          assert.match(error.reason._tag === "Decode" ? error.reason.entryId : "", /^\d+-\d+$/)
        })
      )
    })
  )

  it.effect(
    "an event that cannot be encoded or is too large is refused InvalidEvent; a batch with one is refused whole",
    () =>
      Effect.gen(function* () {
        const options = sinkOptions({ maxEventBytes: 1_000 })
        const stats = yield* withSink(options, (sink) =>
          Effect.gen(function* () {
            const cyclic: Record<string, unknown> = {}
            cyclic.self = cyclic
            const errors = [
              yield* Effect.flip(sink.emit({ event_type: "bad", data: { n: 10n } })),
              yield* Effect.flip(sink.emit({ event_type: "bad", data: cyclic })),
              yield* Effect.flip(sink.emit({ event_type: "big", data: { text: "é".repeat(600) } })),
              yield* Effect.flip(sink.emitAll([...numbered(0, 3), { event_type: "bad", data: { n: 1n } }]))
            ]
            for (const error of errors) assert.strictEqual(error.reason._tag, "InvalidEvent")
            yield* sink.emit({ event_type: "tick", data: { n: 0 } })
            yield* sink.flush
            return yield* sink.stats
          })
        )
        assert.deepStrictEqual(yield* numbersOf(options.streamKey as string), [0])
        assert.strictEqual(stats.invalid, 7)
      })
  )

  it.effect(
    "a data error (WRONGTYPE) is reported and dropped without tripping the breaker; later events go through",
    () =>
      Effect.gen(function* () {
        const redis = yield* RedisClient.RedisClient
        const options = sinkOptions({ failureThreshold: 1 })
        const key = options.streamKey as string
        const { lines, layer } = yield* captureWarnings
        const stats = yield* withSink(options, (sink) =>
          Effect.gen(function* () {
            yield* redis.use("set", (c) => c.set(key, "not a stream"))
            yield* sink.emitAll(numbered(0, 5))
            yield* sink.flush
            const afterReject = yield* sink.stats
            assert.strictEqual(afterReject.breaker, "Closed")
            yield* redis.use("del", (c) => c.del(key))
            yield* sink.emitAll(numbered(5, 8))
            yield* sink.flush
            return yield* sink.stats
          })
        ).pipe(Effect.provide(layer))
        assert.deepStrictEqual(yield* numbersOf(key), [5, 6, 7])
        assert.strictEqual(stats.dropped.rejected, 5)
        assert.deepStrictEqual(stats.transitions, [])
        assert.isTrue(lines.some((line) => line.includes("refused a batch of 5 events")))
      })
  )

  it.effect("emit after the layer closed fails Closed; closing flushes what is buffered at once", () =>
    Effect.gen(function* () {
      const options = sinkOptions({ flushInterval: "1 hour", maxBatchSize: 10_000 })
      const sink = yield* withSink(options, (sink) => Effect.as(sink.emitAll(numbered(0, 50)), sink))
      assert.deepStrictEqual(yield* numbersOf(options.streamKey as string), range(0, 50))
      const error = yield* Effect.flip(sink.emit({ event_type: "late" }))
      assert.strictEqual(error.reason._tag, "Closed")
      assert.strictEqual((yield* sink.stats).dropped.shutdown, 0)
    })
  )

  it.effect(
    "spans become start/end events with parent, duration and attributes; a failure becomes an error event",
    () =>
      Effect.gen(function* () {
        const options = sinkOptions()
        const events = yield* withSink(options, (sink) =>
          Effect.gen(function* () {
            const traced = Layer.merge(EventSink.layerTracer, EventSink.layerLogger).pipe(
              Layer.provide(Layer.succeed(EventSink.EventSink, sink))
            )
            const program = Effect.gen(function* () {
              yield* Effect.annotateCurrentSpan("model", "small")
              yield* Effect.logInfo("thinking")
              yield* Effect.sleep("5 millis").pipe(Effect.withSpan("child"))
              yield* Effect.exit(new Boom({ code: 7 }).pipe(Effect.withSpan("failing")))
            }).pipe(Effect.withSpan("parent"))
            yield* Effect.provide(program, traced)
            yield* sink.flush
            return yield* Stream.runCollect(sink.events())
          })
        )
        const byOperation = (type: string, operation: string) =>
          events.map((stored) => stored.event).find((e) => e.event_type === type && e.operation === operation)
        const parentEnd = byOperation("end", "parent")
        const childStart = byOperation("start", "child")
        const childEnd = byOperation("end", "child")
        const failed = byOperation("error", "failing")
        const log = events.map((stored) => stored.event).find((e) => e.event_type === "log")
        assert.isDefined(byOperation("start", "parent"))
        assert.isDefined(parentEnd)
        assert.strictEqual(childStart?.data.parent_span_id, parentEnd?.data.span_id)
        assert.strictEqual(childEnd?.execution_id, parentEnd?.execution_id)
        assert.isAtLeast(childEnd?.data.duration_ms as number, 4)
        assert.deepStrictEqual(parentEnd?.data.attributes, { model: "small" })
        assert.strictEqual(failed?.data.error_type, "Boom")
        assert.strictEqual(failed?.data.parent_span_id, parentEnd?.data.span_id)
        assert.strictEqual(log?.data.message, "thinking")
        assert.strictEqual(log?.operation, "parent")
        assert.strictEqual(log?.execution_id, parentEnd?.execution_id)
      })
  )

  it.effect("closing while Redis is down gives up after shutdownTimeout and reports how many events were lost", () =>
    Effect.gen(function* () {
      const topology = yield* TestTopology
      const options = sinkOptions({ shutdownTimeout: "400 millis" })
      const { lines, layer } = yield* captureWarnings
      const sink = yield* Effect.gen(function* () {
        yield* topology.killAll
        return yield* withSink(options, (sink) => Effect.as(sink.emitAll(numbered(0, 120)), sink))
      }).pipe(Effect.provide(layer), Effect.ensuring(topology.startAll.pipe(Effect.orDie)))
      const stats = yield* sink.stats
      assert.strictEqual(stats.dropped.shutdown, 120)
      assert.strictEqual(stats.buffered, 0)
      assert.isTrue(
        lines.some((line) => line.includes("120 events")),
        lines.join("\n")
      )
    })
  )
})
