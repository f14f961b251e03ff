/**
 * `npm run example:sink`: an instrumented program records its spans, logs and own events into a Redis Stream through
 * `EventSink`; Redis crashes for a moment (when the example started its own server) and every event emitted meanwhile
 * is written once it is back; then the stream is read back as StreamLL's consumer would, with the health snapshot.
 */
import { Console, Effect, Layer, Schedule, Stream } from "effect"
import * as EventSink from "../src/EventSink.js"
import * as RedisServer from "../src/testing/RedisServer.js"

/** The application: an "LLM call" per question, traced, logging, and emitting its own usage event. */
const answer = (question: string) =>
  Effect.gen(function* () {
    const sink = yield* EventSink.EventSink
    yield* Effect.logInfo(`answering: ${question}`)
    yield* Effect.sleep("10 millis").pipe(Effect.withSpan("llm.call", { attributes: { model: "small" } }))
    yield* sink.emit({
      event_type: "llm_call",
      operation: "answer_generation",
      data: { model: "small", tokens_used: question.length * 3 }
    })
  }).pipe(Effect.withSpan("answer"))

const program = Effect.gen(function* () {
  const sink = yield* EventSink.EventSink
  const server = yield* RedisServer.RedisServer
  yield* Effect.forEach(["what is Redis?", "what is Effect?"], answer, { discard: true })
  yield* sink.flush
  yield* Console.log(`written so far: ${(yield* sink.stats).written} events`)

  if (server.controllable) {
    yield* server.kill
    yield* Console.log("Redis is down; the application keeps answering (emit never waits on Redis)")
    yield* Effect.forEach(["and now?", "still there?"], answer, { discard: true })
    yield* Effect.sleep("1 second")
    const down = yield* sink.stats
    yield* Console.log(`breaker ${down.breaker}, ${down.buffered} events buffered, ${down.failedWrites} failed writes`)
    yield* server.start
    yield* Console.log("Redis is back (empty: this server keeps nothing on disk, so what was written before is gone)")
    // flush fails CircuitOpen until the breaker's next probe finds Redis again
    yield* sink.flush.pipe(Effect.retry({ schedule: Schedule.spaced("200 millis"), times: 50 }))
    const up = yield* sink.stats
    const path = up.transitions.map(({ from, to }) => `${from}→${to}`).join(", ")
    yield* Console.log(`every event of the outage is written: breaker ${up.breaker} (${path}), ${up.buffered} buffered`)
  }

  yield* Console.log("\nthe stream, as a StreamLL consumer reads it:")
  yield* Stream.runForEach(sink.events(), ({ id, event }) =>
    Console.log(`  ${id}  ${event.event_type.padEnd(8)} ${event.operation ?? ""} ${JSON.stringify(event.data)}`)
  )
  const health = yield* sink.health
  yield* Console.log(
    `\nhealth: ${health.length} entries, breaker ${health.breaker}, groups ${health.groups
      .map((group) => `${group.name} (pending ${group.pending}, lag ${group.lag})`)
      .join(", ")}`
  )
})

const Sink = EventSink.layer({
  streamKey: "example:ml_events",
  consumerGroup: "analytics",
  maxStreamLength: 10_000,
  failureThreshold: 2,
  openDuration: "300 millis",
  tags: { environment: "example" }
})

const Instrumented = Layer.merge(EventSink.layerTracer, EventSink.layerLogger).pipe(Layer.provideMerge(Sink))

const Live = Instrumented.pipe(
  Layer.provideMerge(RedisServer.layerClient()),
  Layer.provideMerge(RedisServer.layer({ url: process.env.REDIS_URL }))
)

Effect.runPromise(program.pipe(Effect.provide(Live))).catch((error) => {
  console.error(error)
  process.exit(1)
})
