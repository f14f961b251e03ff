/**
 * ResumableStream against raw ioredis doing the same work:
 * (a) live tailing: 100 runs of 1,000 chunks, each appended and awaited one by one, with one reader per run started
 *     at the same time; figure = chunks delivered per second to the readers. Raw baselines: one connection doing a
 *     multiplexed XREAD over all keys (COUNT 100 per key), and one connection per reader.
 * (b) resuming a finished run of 10,000 chunks from the start; raw baseline: XRANGE paging (COUNT 1000), JSON-parsing
 *     each chunk as ours does.
 */
import { Effect, Layer, ManagedRuntime, Schema, Stream } from "effect"
import { Redis } from "ioredis"
import { setTimeout as sleep } from "node:timers/promises"
import * as RedisClient from "../dist/RedisClient.js"
import * as ResumableStream from "../dist/ResumableStream.js"
import { type Suite, throughput } from "./harness.js"

const runs = 100
const chunksPerRun = 1_000
const resumeChunks = 10_000
const chunkText = (i: number) => `token-${i} `

const Tail = ResumableStream.define({
  name: "tail",
  input: Schema.Struct({ n: Schema.Number }),
  chunk: Schema.String,
  run: ({ n }, writer) =>
    Effect.gen(function* () {
      for (let i = 0; i < n; i++) yield* writer.append(chunkText(i))
    })
})

/** Number of client connections the server sees. */
const connectedClients = async (admin: Redis) => {
  const info = await admin.info("clients")
  return Number(/connected_clients:(\d+)/.exec(info)?.[1] ?? 0)
}

const suite: Suite = {
  name: "ResumableStream",
  setup: async (url) => {
    const runtime = ManagedRuntime.make(
      ResumableStream.layer({ streams: [Tail], keyPrefix: "bench:rs:", unsignedTokens: true }).pipe(
        Layer.provideMerge(RedisClient.layer({ url }))
      )
    )
    const streams = await runtime.runPromise(ResumableStream.ResumableStream)
    const admin = new Redis(url, { protocol: 2 })
    const rawReader = new Redis(url, { protocol: 2 }) // for (b)
    const connections = { ours: 0, multiplexed: 0, perReader: 0 }
    let rawRound = 0

    const ours = () =>
      throughput(runs * chunksPerRun, () =>
        runtime.runPromise(
          Effect.gen(function* () {
            const started = yield* Effect.forEach(Array.from({ length: runs }), () =>
              streams.start(Tail, { n: chunksPerRun })
            )
            const sample = Effect.promise(async () => {
              connections.ours = (await connectedClients(admin)) - 2 // less admin and rawReader
            })
            const readers = Effect.forEach(
              started,
              (run) =>
                Stream.runFold(
                  streams.resume(Tail, run.token),
                  () => 0,
                  (count) => count + 1
                ),
              { concurrency: "unbounded" }
            )
            const [counts] = yield* Effect.all([readers, Effect.delay(sample, "20 millis")], {
              concurrency: "unbounded"
            })
            if (counts.some((count) => count !== chunksPerRun)) throw new Error("a reader missed chunks")
          })
        )
      )

    /** Raw producers: one XADD per chunk, awaited, 100 runs at once, on one connection. */
    const produceRaw = async (keys: ReadonlyArray<string>) => {
      const producer = new Redis(url, { protocol: 2 })
      await Promise.all(
        keys.map(async (key) => {
          for (let i = 0; i < chunksPerRun; i++) {
            await producer.xadd(key, "*", "data", JSON.stringify({ item: chunkText(i) }))
          }
        })
      )
      producer.disconnect()
    }
    /** Connections open `afterMs` into a raw round, less admin, rawReader and those our layer keeps open. */
    const rawConnectionsAfter = async (afterMs: number) => {
      await sleep(afterMs)
      return (await connectedClients(admin)) - 2 - connections.ours
    }

    type XReadReply = Array<[string, Array<[string, Array<string>]>]> | null

    const rawMultiplexed = () => {
      const keys = Array.from({ length: runs }, (_, i) => `bench:rs:raw:${rawRound}:${i}`)
      rawRound += 1
      return throughput(runs * chunksPerRun, async () => {
        const reader = new Redis(url, { protocol: 2 })
        const lastIds = new Map(keys.map((key) => [key, "0-0"]))
        const counts = new Map(keys.map((key) => [key, 0]))
        const read = async () => {
          while (lastIds.size > 0) {
            const active = Array.from(lastIds.keys())
            const reply = (await reader.xread(
              "COUNT",
              100,
              "BLOCK",
              1000,
              "STREAMS",
              ...active,
              ...active.map((key) => lastIds.get(key) as string)
            )) as XReadReply
            for (const [key, entries] of reply ?? []) {
              for (const [id, fields] of entries) {
                JSON.parse(fields[1] as string)
                lastIds.set(key, id)
              }
              const count = (counts.get(key) as number) + entries.length
              counts.set(key, count)
              if (count === chunksPerRun) lastIds.delete(key)
            }
          }
        }
        const sample = rawConnectionsAfter(20).then((count) => {
          connections.multiplexed = count
        })
        await Promise.all([read(), produceRaw(keys), sample])
        reader.disconnect()
      })
    }

    const rawPerReader = () => {
      const keys = Array.from({ length: runs }, (_, i) => `bench:rs:raw:${rawRound}:${i}`)
      rawRound += 1
      return throughput(runs * chunksPerRun, async () => {
        const readers = keys.map(() => new Redis(url, { protocol: 2 }))
        const read = (reader: Redis, key: string) => async () => {
          let lastId = "0-0"
          let count = 0
          while (count < chunksPerRun) {
            const reply = (await reader.xread("COUNT", 100, "BLOCK", 1000, "STREAMS", key, lastId)) as XReadReply
            for (const [, entries] of reply ?? []) {
              for (const [id, fields] of entries) {
                JSON.parse(fields[1] as string)
                lastId = id
                count += 1
              }
            }
          }
        }
        const sample = rawConnectionsAfter(50).then((count) => {
          connections.perReader = count
        })
        await Promise.all([...keys.map((key, i) => read(readers[i] as Redis, key)()), produceRaw(keys), sample])
        for (const reader of readers) reader.disconnect()
      })
    }

    // (b): one finished run of 10k chunks, read from the start
    const finished = await runtime.runPromise(
      Effect.gen(function* () {
        const started = yield* streams.start(Tail, { n: resumeChunks })
        yield* Stream.runDrain(started.stream)
        return started
      })
    )
    const finishedKey = `bench:rs:tail:{${finished.runId}}`

    const tailing = { unit: "chunks/s", higherIsBetter: true, ours }
    const connectionNote = (raw: () => number) => () => [
      `connections: ours ${connections.ours}, raw ${raw()} (the raw count includes its producers' connection)`
    ]
    return {
      scenarios: [
        {
          ...tailing,
          name: `tail ${runs} runs × ${chunksPerRun / 1000}k, vs raw multiplexed XREAD`,
          raw: rawMultiplexed,
          notes: connectionNote(() => connections.multiplexed)
        },
        {
          ...tailing,
          name: `tail ${runs} runs × ${chunksPerRun / 1000}k, vs raw connection per reader`,
          raw: rawPerReader,
          notes: connectionNote(() => connections.perReader)
        },
        {
          name: `resume a finished ${resumeChunks / 1000}k-chunk run`,
          unit: "entries/s",
          higherIsBetter: true,
          ours: () =>
            throughput(resumeChunks + 1, () =>
              runtime.runPromise(
                Stream.runFold(
                  streams.resume(Tail, finished.token),
                  () => 0,
                  (count) => count + 1
                )
              )
            ),
          raw: () =>
            throughput(resumeChunks + 1, async () => {
              let start = "-"
              for (;;) {
                const page = await rawReader.xrange(finishedKey, start, "+", "COUNT", 1000)
                for (const [, fields] of page) if (fields[0] === "data") JSON.parse(fields[1] as string)
                const last = page.at(-1)
                if (page.length < 1000 || last === undefined) break
                start = `(${last[0]}`
              }
            })
        }
      ],
      close: async () => {
        admin.disconnect()
        rawReader.disconnect()
        await runtime.dispose()
      }
    }
  }
}

export default suite
