/**
 * EventSink against raw ioredis doing the same work (each event built and JSON-encoded the same way on both sides):
 * (a) emit → written: 200,000 events of ~300 bytes emitted one by one, then flushed (figure: events/s until all are in
 *     Redis); raw baseline: pipelined `XADD MAXLEN ~ 1000000` in batches of 500, each batch awaited.
 * (b) the same sink against StreamLL's own design: one `XADD` per event, awaited (20,000 events).
 * (c) the cost of one `emit` call (µs), against queueing one XADD into an ioredis pipeline.
 */
import { randomUUID } from "node:crypto"
import { Effect, ManagedRuntime } from "effect"
import { Redis } from "ioredis"
import * as EventSink from "../dist/EventSink.js"
import * as RedisClient from "../dist/RedisClient.js"
import { type Suite, throughput } from "./harness.js"

const total = 200_000
const seedTotal = 20_000
const batchSize = 500
const maxLength = 1_000_000

/** The payload of event `i`: about 300 bytes once encoded. */
const input = (i: number): EventSink.EventInput => ({
  event_type: "llm_call",
  execution_id: `exec_${i % 100}`,
  operation: "answer_generation",
  data: { model: "gemini/gemini-2.0-flash", tokens_used: 287, cost_usd: 0.0023, response_time_ms: 1234, n: i },
  tags: { environment: "production", user_id: "user_123" }
})
const inputs = Array.from({ length: total }, (_, i) => input(i))

/** What raw code has to do per event to write the same entry: complete and encode it. */
const encodeRaw = (event: EventSink.EventInput) =>
  JSON.stringify({
    event_id: randomUUID(),
    event_type: event.event_type,
    timestamp: new Date().toISOString(),
    execution_id: event.execution_id,
    operation: event.operation,
    data: event.data,
    tags: event.tags
  })

const suite: Suite = {
  name: "EventSink",
  setup: async (url) => {
    const raw = new Redis(url, { protocol: 2 })
    let round = 0
    const newKey = () => `bench:sink:${++round}`

    const runtime = ManagedRuntime.make(RedisClient.layer({ url }))
    const redisContext = await runtime.runPromise(Effect.context<RedisClient.RedisClient>())

    /** Emits every event of `events` through a fresh sink and waits until all are in Redis. */
    const emitAndFlush = (events: ReadonlyArray<EventSink.EventInput>) =>
      Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const sink = yield* EventSink.make({
              streamKey: newKey(),
              bufferSize: events.length,
              maxBatchSize: batchSize,
              maxStreamLength: maxLength
            })
            yield* Effect.forEach(events, sink.emit, { discard: true })
            yield* sink.flush
            const stats = yield* sink.stats
            if (stats.written !== events.length) throw new Error(`wrote ${stats.written} of ${events.length}`)
          })
        ).pipe(Effect.provide(redisContext))
      )

    const rawPipelined = async () => {
      const key = newKey()
      for (let start = 0; start < total; start += batchSize) {
        const pipeline = raw.pipeline()
        for (let i = start; i < start + batchSize; i++) {
          pipeline.xadd(key, "MAXLEN", "~", maxLength, "*", "event", encodeRaw(inputs[i] as EventSink.EventInput))
        }
        await pipeline.exec()
      }
    }

    const rawOnePerEvent = async () => {
      const key = newKey()
      for (let i = 0; i < seedTotal; i++) {
        await raw.xadd(key, "MAXLEN", "~", maxLength, "*", "event", encodeRaw(inputs[i] as EventSink.EventInput))
      }
    }

    /** µs per emit call, the writer running meanwhile as it would. */
    const emitCost = () =>
      Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const sink = yield* EventSink.make({ streamKey: newKey(), bufferSize: total, maxBatchSize: batchSize })
            const started = performance.now()
            yield* Effect.forEach(inputs, sink.emit, { discard: true })
            const micros = ((performance.now() - started) * 1000) / total
            yield* sink.flush
            return micros
          })
        ).pipe(Effect.provide(redisContext))
      )

    /** µs per event to complete, encode and queue an XADD (the pipelines are sent meanwhile, awaited after). */
    const rawQueueCost = async () => {
      const key = newKey()
      const sent: Array<Promise<unknown>> = []
      const started = performance.now()
      let pipeline = raw.pipeline()
      for (let i = 0; i < total; i++) {
        pipeline.xadd(key, "MAXLEN", "~", maxLength, "*", "event", encodeRaw(inputs[i] as EventSink.EventInput))
        if ((i + 1) % batchSize === 0) {
          sent.push(pipeline.exec())
          pipeline = raw.pipeline()
        }
      }
      const micros = ((performance.now() - started) * 1000) / total
      await Promise.all(sent)
      return micros
    }

    return {
      scenarios: [
        {
          name: `emit → written, ${total / 1000}k events, vs pipelined XADD ×${batchSize}`,
          unit: "events/s",
          higherIsBetter: true,
          ours: () => throughput(total, () => emitAndFlush(inputs)),
          raw: () => throughput(total, rawPipelined)
        },
        {
          name: `emit → written, vs StreamLL's design (one awaited XADD per event)`,
          unit: "events/s",
          higherIsBetter: true,
          ours: () => throughput(total, () => emitAndFlush(inputs)),
          raw: () => throughput(seedTotal, rawOnePerEvent)
        },
        {
          name: `emit() cost per call, vs queueing an XADD in a pipeline`,
          unit: "µs/event",
          higherIsBetter: false,
          ours: emitCost,
          raw: rawQueueCost
        }
      ],
      close: async () => {
        raw.disconnect()
        await runtime.dispose()
      }
    }
  }
}

export default suite
