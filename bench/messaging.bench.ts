/**
 * Publisher / Subscriber against raw ioredis doing the same work, one group of 4 consumers (each on its own
 * connection) and 1 producer:
 * (a) end to end: 100,000 messages published in batches of 500 while the consumers take and acknowledge them;
 *     figure: messages/s until every one is acknowledged. Raw: pipelined XADD batches, XREADGROUP COUNT 100 BLOCK and
 *     one XACK per read.
 * (b) latency at a fixed 20,000 messages/s (20 per millisecond tick, 2 seconds): p99 of publish → handler, in ms
 *     (p50 in the notes).
 * (c) many topics: 1,000 topics with one subscription each, 10 messages published to each; figure: messages/s until
 *     every one is handled. Ours reads them all on the client's shared connection (woken through its subscriber
 *     connection); raw ioredis gives each subscription a connection of its own for XREADGROUP BLOCK, the usual way.
 */
import { setTimeout as sleep } from "node:timers/promises"
import { Effect, Fiber, Layer, ManagedRuntime } from "effect"
import { Redis } from "ioredis"
import * as Message from "../dist/Message.js"
import * as Publisher from "../dist/Publisher.js"
import * as RedisClient from "../dist/RedisClient.js"
import * as Subscriber from "../dist/Subscriber.js"
import { type Suite, throughput } from "./harness.js"

const total = 100_000
const batch = 500
const consumers = 4
const ratePerMs = 20
const rateSeconds = 2
const payload = "x".repeat(100)
const manyTopics = 1_000
const perTopic = 10

const percentile = (values: Array<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

/**
 * A raw consumer: `XREADGROUP … BLOCK 100` and one `XACK` per read on its own connection, until the readers sharing
 * `progress` handled `expected` entries.
 */
const rawReader = async (
  reader: Redis,
  key: string,
  consumer: string,
  expected: number,
  progress: { handled: number },
  onFields: (fields: Array<string>) => void
) => {
  while (progress.handled < expected) {
    const reply = (await reader.xreadgroup(
      "GROUP",
      "g",
      consumer,
      "COUNT",
      100,
      "BLOCK",
      100,
      "STREAMS",
      key,
      ">"
    )) as Array<[string, Array<[string, Array<string>]>]> | null
    const entries = reply?.[0]?.[1] ?? []
    if (entries.length === 0) continue
    for (const [, fields] of entries) onFields(fields)
    await reader.xack(key, "g", ...entries.map(([id]) => id))
    progress.handled += entries.length
  }
}

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
    let round = 0
    const p50 = { ours: 0, raw: 0 }

    /** Runs 4 `consume`rs of a fresh topic while `produce` publishes; resolves when `expected` were handled. */
    const ours = async (
      expected: number,
      produce: (topic: string) => Promise<void>,
      onMessage: (m: Subscriber.Received) => void
    ) => {
      const topic = `t${++round}`
      let handled = 0
      let done: () => void = () => undefined
      const finished = new Promise<void>((resolve) => {
        done = resolve
      })
      const fibers = await runtime.runPromise(
        Effect.forEach(Array.from({ length: consumers }), (_, i) =>
          Effect.forkDetach(
            subscriber.consume(
              topic,
              (received) =>
                Effect.sync(() => {
                  onMessage(received)
                  if (++handled === expected) done()
                }),
              { group: "g", consumer: `c${i}`, concurrency: 16, maxInFlight: 400, start: "$" }
            )
          )
        )
      )
      await sleep(50) // groups created
      await produce(topic)
      await finished
      await runtime.runPromise(Effect.forEach(fibers, Fiber.interrupt))
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
      await produce(key)
      await Promise.all(loops)
    }

    const messages = Array.from({ length: batch }, () => Message.make(payload))

    /** Publishes at `ratePerMs` messages per millisecond for `rateSeconds`, via `send`. */
    const atFixedRate = async (send: (count: number) => Promise<unknown>) => {
      const start = performance.now()
      let sent = 0
      const target = ratePerMs * 1000 * rateSeconds
      while (sent < target) {
        const due = Math.min(target, Math.floor((performance.now() - start) * ratePerMs))
        if (due > sent) {
          const count = due - sent
          sent = due
          await send(count)
        } else {
          await sleep(1)
        }
      }
    }

    /** Handles `perTopic` messages on each of `manyTopics` topics, each topic read by a subscription of its own. */
    const oursMany = async () => {
      const prefix = `many${++round}-`
      const topics = Array.from({ length: manyTopics }, (_, i) => `${prefix}${i}`)
      let handled = 0
      let done: () => void = () => undefined
      const finished = new Promise<void>((resolve) => {
        done = resolve
      })
      const fibers = await runtime.runPromise(
        Effect.forEach(topics, (topic) =>
          Effect.forkDetach(
            subscriber.consume(
              topic,
              () =>
                Effect.sync(() => {
                  if (++handled === manyTopics * perTopic) done()
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
        await finished
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

    return {
      scenarios: [
        {
          name: `end to end, ${total / 1000}k messages, 1 producer + ${consumers} consumers`,
          unit: "msgs/s",
          higherIsBetter: true,
          ours: () =>
            throughput(total, () =>
              ours(
                total,
                async (topic) => {
                  for (let i = 0; i < total; i += batch) await runtime.runPromise(publisher.publish(topic, ...messages))
                },
                () => undefined
              )
            ),
          raw: () =>
            throughput(total, () =>
              raw(
                total,
                async (key) => {
                  for (let i = 0; i < total; i += batch) {
                    const pipeline = producer.pipeline()
                    for (let j = 0; j < batch; j++) {
                      pipeline.xadd(key, "*", "uuid", String(i + j), "payload", payload, "metadata", "{}")
                    }
                    await pipeline.exec()
                  }
                },
                () => undefined
              )
            )
        },
        {
          name: `p99 latency at ${ratePerMs}k msgs/s`,
          unit: "ms",
          higherIsBetter: false,
          ours: async () => {
            const latencies: Array<number> = []
            await ours(
              ratePerMs * 1000 * rateSeconds,
              (topic) =>
                atFixedRate((count) => {
                  const sent = String(performance.now())
                  const fresh = Array.from({ length: count }, () => Message.make(payload, { metadata: { sent } }))
                  return runtime.runPromise(publisher.publish(topic, ...fresh))
                }),
              (received) => latencies.push(performance.now() - Number(received.message.metadata.sent))
            )
            p50.ours = percentile(latencies, 50)
            return percentile(latencies, 99)
          },
          raw: async () => {
            const latencies: Array<number> = []
            await raw(
              ratePerMs * 1000 * rateSeconds,
              (key) =>
                atFixedRate((count) => {
                  const sent = String(performance.now())
                  const pipeline = producer.pipeline()
                  for (let j = 0; j < count; j++) {
                    pipeline.xadd(key, "*", "uuid", String(j), "payload", payload, "metadata", JSON.stringify({ sent }))
                  }
                  return pipeline.exec()
                }),
              (fields) => latencies.push(performance.now() - Number(JSON.parse(fields[5] as string).sent))
            )
            p50.raw = percentile(latencies, 50)
            return percentile(latencies, 99)
          },
          notes: () => [`p50 latency: ours ${p50.ours.toFixed(3)} ms, raw ${p50.raw.toFixed(3)} ms (last round)`]
        },
        {
          name: `${manyTopics.toLocaleString("en-US")} topics × 1 subscription, ${perTopic} messages each`,
          unit: "msgs/s",
          higherIsBetter: true,
          ours: oursMany,
          raw: rawMany,
          notes: () => [
            `${manyTopics.toLocaleString("en-US")} subscriptions: ours on 2 connections (shared + subscriber), raw on ${manyTopics.toLocaleString("en-US")} (one blocking reader each)`
          ]
        }
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
