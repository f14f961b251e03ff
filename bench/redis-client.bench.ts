/**
 * RedisClient overhead: the same SET and GET work through `RedisClient.use` (Effect) and through raw ioredis.
 * No peer package: the comparison that matters here is the client ours wraps (ioredis) itself. The notes of the
 * first scenario measure, in the same run, what of the gap is not this library's: the same fibers around raw ioredis
 * promises (`Effect.forEach` + `Effect.promise`, no RedisClient), and raw ioredis with the 5 s command timeout our
 * client sets by default (a timer per command: a silent server fails calls instead of hanging them).
 */
import { Effect, ManagedRuntime } from "effect"
import { Redis } from "ioredis"
import * as RedisClient from "../dist/RedisClient.js"
import { format, latencyMicros, type Suite, throughput } from "./harness.js"

const total = 100_000
const inFlight = 1_000
const pipelineSize = 1_000
const sequential = 10_000
const value = "x".repeat(100)

const suite: Suite = {
  name: "RedisClient",
  setup: async (url) => {
    const runtime = ManagedRuntime.make(RedisClient.layer({ url }))
    const redis = await runtime.runPromise(RedisClient.RedisClient)
    const raw = new Redis(url, { protocol: 2 })
    const rawWithTimeout = new Redis(url, { protocol: 2, commandTimeout: 5_000 })
    const keys = Array.from({ length: total }, (_, i) => `bench:set:${i}`)
    const chunks = Array.from({ length: total / pipelineSize }, (_, i) =>
      keys.slice(i * pipelineSize, (i + 1) * pipelineSize)
    )

    /** Raw ioredis: chunks of `inFlight` SETs, each chunk awaited whole. */
    const rawInFlight = (client: Redis) =>
      throughput(total, async () => {
        for (const chunk of chunks) await Promise.all(chunk.map((key) => client.set(key, value)))
      })

    return {
      scenarios: [
        {
          name: `SET ×${total / 1000}k, ${inFlight} in flight`,
          unit: "ops/s",
          higherIsBetter: true,
          ours: () =>
            throughput(total, () =>
              runtime.runPromise(
                Effect.forEach(keys, (key) => redis.use("set", (c) => c.set(key, value)), {
                  concurrency: inFlight,
                  discard: true
                })
              )
            ),
          raw: () => rawInFlight(raw),
          notes: async () => {
            const fibers = await throughput(total, () =>
              runtime.runPromise(
                Effect.forEach(keys, (key) => Effect.promise(() => raw.set(key, value)), {
                  concurrency: inFlight,
                  discard: true
                })
              )
            )
            const timed = await rawInFlight(rawWithTimeout)
            return [
              `Effect.forEach + Effect.promise around raw ioredis (Effect's fibers, no RedisClient): ${format(fibers)} ops/s`,
              `raw ioredis with commandTimeout 5 s (our default): ${format(timed)} ops/s`
            ]
          }
        },
        {
          name: `SET ×${total / 1000}k, pipelines of ${pipelineSize}`,
          unit: "ops/s",
          higherIsBetter: true,
          ours: () =>
            throughput(total, () =>
              runtime.runPromise(
                Effect.forEach(
                  chunks,
                  (chunk) =>
                    redis.use("pipeline", (c) => {
                      const pipeline = c.pipeline()
                      for (const key of chunk) pipeline.set(key, value)
                      return pipeline.exec()
                    }),
                  { discard: true }
                )
              )
            ),
          raw: () =>
            throughput(total, async () => {
              for (const chunk of chunks) {
                const pipeline = raw.pipeline()
                for (const key of chunk) pipeline.set(key, value)
                await pipeline.exec()
              }
            })
        },
        {
          name: `GET latency, ${sequential / 1000}k sequential`,
          unit: "µs/op",
          higherIsBetter: false,
          ours: () =>
            latencyMicros(sequential, () =>
              runtime.runPromise(
                Effect.forEach(keys.slice(0, sequential), (key) => redis.use("get", (c) => c.get(key)), {
                  discard: true
                })
              )
            ),
          raw: () =>
            latencyMicros(sequential, async () => {
              for (const key of keys.slice(0, sequential)) await raw.get(key)
            })
        }
      ],
      close: async () => {
        raw.disconnect()
        rawWithTimeout.disconnect()
        await runtime.dispose()
      }
    }
  }
}

export default suite
