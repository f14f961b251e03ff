/**
 * Publisher / Subscriber against raw ioredis and BullMQ (the job queue teams pick for this) doing the same work, one
 * group of 4 consumers and 1 producer:
 * (a) end to end: 100,000 messages published in batches of 500 while the consumers take and acknowledge them;
 *     figure: messages/s from the first publish until every one is handled (on every side, the consumers are started
 *     and the group created before, and stopped after). Raw: pipelined XADD batches, 4 connections each running
 *     XREADGROUP COUNT 100 BLOCK and one XACK per read. BullMQ: `Queue.addBulk` of 500 jobs, 4 `Worker`s of
 *     concurrency 16 (ours: 4 consumers of concurrency 16), each on its own ioredis connections.
 * (b) latency at a fixed rate (5,000 messages/s with BullMQ, and 20,000 messages/s, beyond BullMQ's throughput, ours
 *     and raw only), for 2 seconds: p99 of publish → handler, in ms (p50 in the notes).
 * (c) many topics: 1,000 topics with one subscription each, 10 messages published to each; figure: messages/s until
 *     every one is handled. Ours reads them all on the client's shared connection (woken through its subscriber
 *     connection); raw ioredis gives each subscription a connection of its own for XREADGROUP BLOCK, the usual way.
 */
import { setTimeout as sleep } from "node:timers/promises"
import { Queue, Worker } from "bullmq"
import { Effect, Fiber, Layer, ManagedRuntime } from "effect"
import { Redis } from "ioredis"
import * as Message from "../dist/Message.js"
import * as Publisher from "../dist/Publisher.js"
import * as RedisClient from "../dist/RedisClient.js"
import * as Subscriber from "../dist/Subscriber.js"
import { rawReader } from "./support/raw-consumer.js"
import { allocatedPerOp, atFixedRate, deferred, percentile, type Scenario, type Suite, throughput } from "./harness.js"

const total = 100_000
const batch = 500
const consumers = 4
const concurrency = 16
const rateSeconds = 2
const payload = "x".repeat(100)
const manyTopics = 1_000
const perTopic = 10

/** `count` per second, done in `ms` milliseconds. */
const perSecond = (count: number, ms: number) => count / (ms / 1000)

const suite: Suite = {
  name: "Publisher/Subscriber",
  setup: async (url) => {
    const runtime = ManagedRuntime.make(
      Layer.mergeAll(Publisher.layer({ keyPrefix: "bench:" }), Subscriber.layer({ keyPrefix: "bench:" })).pipe(
        Layer.provide(RedisClient.layer({ url }))
      )
    )
    const publisher = await runtime.runPromise(Publisher.Publisher)
    const subscriber = await runtime.runPromise(Subscriber.Subscriber)
    const producer = new Redis(url, { protocol: 2 })
    const readers = Array.from({ length: consumers }, () => new Redis(url, { protocol: 2 }))
    const { hostname, port } = new URL(url)
    const bullConnection = { host: hostname, port: Number(port), maxRetriesPerRequest: null }
    let round = 0

    /** Runs 4 `consume`rs of a fresh topic while `produce` publishes; resolves when `expected` were handled. */
    const ours = async (
      expected: number,
      produce: (topic: string) => Promise<void>,
      onMessage: (m: Subscriber.Received) => void
    ) => {
      const topic = `t${++round}`
      let handled = 0
      const finished = deferred()
      const fibers = await runtime.runPromise(
        Effect.forEach(Array.from({ length: consumers }), (_, i) =>
          Effect.forkDetach(
            subscriber.consume(
              topic,
              (received) =>
                Effect.sync(() => {
                  onMessage(received)
                  if (++handled === expected) finished.resolve()
                }),
              { group: "g", consumer: `c${i}`, concurrency, maxInFlight: 400, start: "$" }
            )
          )
        )
      )
      await sleep(50) // groups created
      const started = performance.now()
      await produce(topic)
      await finished.promise
      const elapsed = performance.now() - started
      await runtime.runPromise(Effect.forEach(fibers, Fiber.interrupt))
      return elapsed
    }

    /** The raw equivalent: 4 XREADGROUP/XACK loops while `produce` publishes. */
    const raw = async (
      expected: number,
      produce: (key: string) => Promise<void>,
      onFields: (fields: Array<string>) => void
    ) => {
      const key = `bench:raw:${++round}`
      await producer.xgroup("CREATE", key, "g", "$", "MKSTREAM")
      const progress = { handled: 0 }
      const loops = readers.map((reader, i) => rawReader(reader, key, `c${i}`, expected, progress, onFields))
      const started = performance.now()
      await produce(key)
      await Promise.all(loops)
      return performance.now() - started
    }

    /**
     * BullMQ: a fresh queue, 4 `Worker`s of concurrency 16 (each with its own ioredis connections, as BullMQ requires:
     * `maxRetriesPerRequest: null`) while `produce` adds jobs through the `Queue`; resolves when `expected` were
     * processed. Completed jobs are removed (`removeOnComplete`), as in production.
     */
    const bull = async (
      expected: number,
      produce: (queue: Queue) => Promise<void>,
      onData: (data: { sent?: number }) => void
    ) => {
      const name = `bench-bull-${++round}`
      const queue = new Queue(name, { connection: bullConnection, defaultJobOptions: { removeOnComplete: true } })
      let handled = 0
      const finished = deferred()
      const workers = Array.from(
        { length: consumers },
        () =>
          new Worker(
            name,
            async (job) => {
              onData(job.data as { sent?: number })
              if (++handled === expected) finished.resolve()
            },
            { connection: bullConnection, concurrency }
          )
      )
      await Promise.all([queue.waitUntilReady(), ...workers.map((worker) => worker.waitUntilReady())])
      const started = performance.now()
      await produce(queue)
      await finished.promise
      const elapsed = performance.now() - started
      await Promise.all(workers.map((worker) => worker.close()))
      await queue.close()
      if (handled !== expected) throw new Error(`BullMQ processed ${handled} of ${expected}`)
      return elapsed
    }

    const messages = Array.from({ length: batch }, () => Message.make(payload))
    const jobs = Array.from({ length: batch }, () => ({ name: "m", data: { payload } }))

    /** Each side's producer of the end-to-end work: `total` messages in batches of `batch`. */
    const oursProduce = async (topic: string) => {
      for (let i = 0; i < total; i += batch) await runtime.runPromise(publisher.publish(topic, ...messages))
    }
    const rawProduce = async (key: string) => {
      for (let i = 0; i < total; i += batch) {
        const pipeline = producer.pipeline()
        for (let j = 0; j < batch; j++) {
          pipeline.xadd(key, "*", "uuid", String(i + j), "payload", payload, "metadata", "{}")
        }
        await pipeline.exec()
      }
    }
    const bullProduce = async (queue: Queue) => {
      for (let i = 0; i < total; i += batch) await queue.addBulk(jobs)
    }
    /** Bytes allocated per message published with nobody consuming (each side's producer alone). */
    const publishAllocation: Scenario = {
      name: `bytes allocated per message published, ${total / 1000}k in batches of ${batch}, no consumer`,
      unit: "B/op",
      higherIsBetter: false,
      ours: () => allocatedPerOp(total, () => oursProduce(`p${++round}`)),
      raw: () => allocatedPerOp(total, () => rawProduce(`bench:raw:p${++round}`)),
      peer: {
        name: "bullmq 6.7.0",
        measure: async () => {
          const queue = new Queue(`bench-bull-p${++round}`, { connection: bullConnection })
          await queue.waitUntilReady()
          const bytes = await allocatedPerOp(total, () => bullProduce(queue))
          await queue.obliterate({ force: true })
          await queue.close()
          return bytes
        }
      }
    }
    /** Bytes allocated per message published and consumed end to end (producer and 4 consumers in this process). */
    const endToEndAllocation: Scenario = {
      name: `bytes allocated per message published and consumed, ${total / 1000}k, 1 producer + ${consumers} consumers`,
      unit: "B/op",
      higherIsBetter: false,
      ours: () => allocatedPerOp(total, () => ours(total, oursProduce, () => undefined)),
      raw: () => allocatedPerOp(total, () => raw(total, rawProduce, () => undefined)),
      peer: {
        name: "bullmq 6.7.0",
        measure: () => allocatedPerOp(total, () => bull(total, bullProduce, () => undefined))
      }
    }

    /** Handles `perTopic` messages on each of `manyTopics` topics, each topic read by a subscription of its own. */
    const oursMany = async () => {
      const prefix = `many${++round}-`
      const topics = Array.from({ length: manyTopics }, (_, i) => `${prefix}${i}`)
      let handled = 0
      const finished = deferred()
      const fibers = await runtime.runPromise(
        Effect.forEach(topics, (topic) =>
          Effect.forkDetach(
            subscriber.consume(
              topic,
              () =>
                Effect.sync(() => {
                  if (++handled === manyTopics * perTopic) finished.resolve()
                }),
              { group: "g" }
            )
          )
        )
      )
      await sleep(1000) // the subscriptions are set up (raw's groups are created before it is timed too)
      const perTopicMessages = Array.from({ length: perTopic }, () => Message.make(payload))
      const rate = await throughput(manyTopics * perTopic, async () => {
        await runtime.runPromise(
          Effect.forEach(topics, (topic) => publisher.publish(topic, ...perTopicMessages), { concurrency: 100 })
        )
        await finished.promise
      })
      await runtime.runPromise(Effect.forEach(fibers, Fiber.interrupt, { concurrency: "unbounded" }))
      return rate
    }

    const rawMany = async () => {
      const prefix = `bench:rawmany${++round}-`
      const keys = Array.from({ length: manyTopics }, (_, i) => `${prefix}{${i}}`)
      const connections = await Promise.all(keys.map(() => new Redis(url, { protocol: 2 })))
      await Promise.all(keys.map((key) => producer.xgroup("CREATE", key, "g", "0", "MKSTREAM")))
      const progress = { handled: 0 }
      const loops = keys.map((key, i) =>
        rawReader(connections[i] as Redis, key, "c", manyTopics * perTopic, progress, () => undefined)
      )
      const rate = await throughput(manyTopics * perTopic, async () => {
        const pipeline = producer.pipeline()
        for (const key of keys) {
          for (let j = 0; j < perTopic; j++)
            pipeline.xadd(key, "*", "uuid", String(j), "payload", payload, "metadata", "{}")
        }
        await pipeline.exec()
        await Promise.all(loops)
      })
      for (const connection of connections) connection.disconnect()
      return rate
    }

    /** p99 of publish → handler at `perMs` messages per millisecond, with BullMQ beside ours and raw if `withBull`. */
    const latency = (perMs: number, withBull: boolean): Scenario => {
      const expected = perMs * 1000 * rateSeconds
      const p50 = { ours: 0, raw: 0, bull: 0 }
      /** Records p50 of `latencies` for `side` and returns p99. */
      const figures = (side: keyof typeof p50, latencies: Array<number>) => {
        if (latencies.length !== expected) throw new Error(`${side} handled ${latencies.length} of ${expected}`)
        p50[side] = percentile(latencies, 50)
        return percentile(latencies, 99)
      }
      // ours: publish of the messages due at each tick, the send time in their metadata
      const oursLatency = async () => {
        const latencies: Array<number> = []
        await ours(
          expected,
          (topic) =>
            atFixedRate(perMs, rateSeconds, (count) => {
              const sent = String(performance.now())
              const fresh = Array.from({ length: count }, () => Message.make(payload, { metadata: { sent } }))
              return runtime.runPromise(publisher.publish(topic, ...fresh))
            }),
          (received) => latencies.push(performance.now() - Number(received.message.metadata.sent))
        )
        return figures("ours", latencies)
      }
      // raw: one pipeline of XADDs per tick
      const rawLatency = async () => {
        const latencies: Array<number> = []
        await raw(
          expected,
          (key) =>
            atFixedRate(perMs, rateSeconds, (count) => {
              const sent = String(performance.now())
              const pipeline = producer.pipeline()
              for (let j = 0; j < count; j++) {
                pipeline.xadd(key, "*", "uuid", String(j), "payload", payload, "metadata", JSON.stringify({ sent }))
              }
              return pipeline.exec()
            }),
          (fields) => latencies.push(performance.now() - Number(JSON.parse(fields[5] as string).sent))
        )
        return figures("raw", latencies)
      }
      // BullMQ: one addBulk per tick
      const bullLatency = async () => {
        const latencies: Array<number> = []
        await bull(
          expected,
          (queue) =>
            atFixedRate(perMs, rateSeconds, (count) => {
              const sent = performance.now()
              return queue.addBulk(Array.from({ length: count }, () => ({ name: "m", data: { payload, sent } })))
            }),
          (data) => latencies.push(performance.now() - (data.sent as number))
        )
        return figures("bull", latencies)
      }
      const ms = (value: number) => `${value.toFixed(3)} ms`
      return {
        name: `p99 latency at ${perMs}k msgs/s`,
        unit: "ms",
        higherIsBetter: false,
        ours: oursLatency,
        raw: rawLatency,
        ...(withBull ? { peer: { name: "bullmq 6.7.0", measure: bullLatency } } : {}),
        notes: () => [
          `p50 latency: ours ${ms(p50.ours)}, raw ${ms(p50.raw)}` +
            (withBull ? `, BullMQ ${ms(p50.bull)}` : "") +
            " (last round)",
          ...(withBull
            ? []
            : [
                "BullMQ not run at this rate: its end-to-end throughput (first scenario) is below it, so its latency would grow with the backlog"
              ])
        ]
      }
    }

    return {
      scenarios: [
        {
          name: `end to end, ${total / 1000}k messages, 1 producer + ${consumers} consumers`,
          unit: "msgs/s",
          higherIsBetter: true,
          ours: async () => perSecond(total, await ours(total, oursProduce, () => undefined)),
          raw: async () => perSecond(total, await raw(total, rawProduce, () => undefined)),
          peer: {
            name: "bullmq 6.7.0",
            measure: async () => perSecond(total, await bull(total, bullProduce, () => undefined))
          },
          notes: () => [
            "BullMQ's connections: 1 for the Queue, 2 per Worker; each side's count of handled messages is checked"
          ]
        },
        latency(5, true),
        latency(20, false),
        {
          name: `${manyTopics.toLocaleString("en-US")} topics × 1 subscription, ${perTopic} messages each`,
          unit: "msgs/s",
          higherIsBetter: true,
          ours: oursMany,
          raw: rawMany,
          notes: () => [
            "no BullMQ figure: a queue per topic would take 1,000 Workers (2,000 connections)",
            `${manyTopics.toLocaleString("en-US")} subscriptions: ours on 2 connections (shared + subscriber), raw on ${manyTopics.toLocaleString("en-US")} (one blocking reader each)`
          ]
        },
        publishAllocation,
        endToEndAllocation
      ],
      close: async () => {
        producer.disconnect()
        for (const reader of readers) reader.disconnect()
        await runtime.dispose()
      }
    }
  }
}

export default suite
