/**
 * EventSink against raw ioredis and the sink a team hand-rolls with cockatiel (the resilience library) doing the same
 * work (each event built and JSON-encoded the same way on every side):
 * (a) emit → written: 200,000 events of ~300 bytes emitted one by one, then flushed (figure: events/s until all are in
 *     Redis); raw baseline: pipelined `XADD MAXLEN ~ 1000000` in batches of 500, each batch awaited; peer: an
 *     in-memory buffer written in the same pipelined batches of 500, each batch through cockatiel's `retry` wrapped
 *     around its `circuitBreaker`.
 * (b) the cost of one `emit` call (µs), against queueing one XADD into an ioredis pipeline, and against the
 *     hand-rolled sink's `emit`.
 */
import { randomUUID } from "node:crypto"
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleAll, type IPolicy, retry, wrap } from "cockatiel"
import { Effect, ManagedRuntime } from "effect"
import { Redis } from "ioredis"
import * as EventSink from "../dist/EventSink.js"
import * as RedisClient from "../dist/RedisClient.js"
import { type Suite, throughput } from "./harness.js"

const total = 200_000
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

/** Sends one batch of encoded events as a pipeline of `XADD`s; a failed command fails the batch. */
const writeBatch = async (redis: Redis, key: string, batch: ReadonlyArray<string>) => {
  const pipeline = redis.pipeline()
  for (const event of batch) pipeline.xadd(key, "MAXLEN", "~", maxLength, "*", "event", event)
  for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error
}

/**
 * The resilient sink a team writes by hand with cockatiel: `emit` encodes the event into an in-memory buffer; every
 * 500 events (and on `flush`) the buffer goes out as one pipelined batch through `policy` (retry around a circuit
 * breaker), one batch in flight at a time. A batch that still fails after the retries is counted as dropped.
 */
class CockatielSink {
  private buffer: Array<string> = []
  private writing: Promise<void> = Promise.resolve()
  dropped = 0

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly policy: IPolicy
  ) {}

  emit(event: EventSink.EventInput) {
    this.buffer.push(encodeRaw(event))
    if (this.buffer.length >= batchSize) this.send()
  }

  flush() {
    if (this.buffer.length > 0) this.send()
    return this.writing
  }

  private send() {
    const batch = this.buffer
    this.buffer = []
    this.writing = this.writing
      .then(() => this.policy.execute(() => writeBatch(this.redis, this.key, batch)))
      .catch(() => {
        this.dropped += batch.length
      })
  }
}

/** The usual cockatiel setup: 3 attempts with exponential backoff, around a breaker that opens after 5 failures. */
const cockatielPolicy = () =>
  wrap(
    retry(handleAll, { maxAttempts: 3, backoff: new ExponentialBackoff() }),
    circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) })
  )

const suite: Suite = {
  name: "EventSink",
  setup: async (url) => {
    const raw = new Redis(url, { protocol: 2 })
    const peerRedis = new Redis(url, { protocol: 2 }) // the hand-rolled sink's own connection
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

    /** The hand-rolled cockatiel sink: every event emitted, then flushed; checks that all are in Redis. */
    const peerSink = (redis: Redis) => async () => {
      const key = newKey()
      const sink = new CockatielSink(redis, key, cockatielPolicy())
      for (const event of inputs) sink.emit(event)
      await sink.flush()
      const written = await raw.xlen(key)
      if (written !== total || sink.dropped > 0) throw new Error(`cockatiel sink wrote ${written} of ${total}`)
    }

    /** µs per emit call of the hand-rolled sink (a synchronous loop: its batches go out once it yields, awaited after). */
    const peerEmitCost = (redis: Redis) => async () => {
      const sink = new CockatielSink(redis, newKey(), cockatielPolicy())
      const started = performance.now()
      for (const event of inputs) sink.emit(event)
      const micros = ((performance.now() - started) * 1000) / total
      await sink.flush()
      return micros
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
          name: `emit → written, ${total / 1000}k events (raw: pipelined XADD ×${batchSize})`,
          unit: "events/s",
          higherIsBetter: true,
          ours: () => throughput(total, () => emitAndFlush(inputs)),
          raw: () => throughput(total, rawPipelined),
          peer: { name: "cockatiel 3.2.1 (hand-rolled sink)", measure: () => throughput(total, peerSink(peerRedis)) },
          notes: () => [
            "every side's count of written entries is checked (ours: stats.written; the cockatiel sink: XLEN)",
            "the cockatiel sink: synchronous emit into an unbounded array, one pipelined batch in flight, a batch that fails 3 attempts is dropped; ours bounds its buffer in events and bytes"
          ]
        },
        {
          name: `emit() cost per call (raw: queueing an XADD in a pipeline)`,
          unit: "µs/event",
          higherIsBetter: false,
          ours: emitCost,
          raw: rawQueueCost,
          peer: { name: "cockatiel 3.2.1 (hand-rolled sink)", measure: peerEmitCost(peerRedis) }
        }
      ],
      close: async () => {
        raw.disconnect()
        peerRedis.disconnect()
        await runtime.dispose()
      }
    }
  }
}

export default suite
