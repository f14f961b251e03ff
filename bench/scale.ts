/**
 * `npx tsx bench/scale.ts [runs] [chunksPerRun] [chunksPerSecond]`: ResumableStream at scale on one node. 1,000 runs
 * (default) of 200 chunks of ~40 bytes, each appended as fast as the runner can (or paced at `chunksPerSecond` per run,
 * as an LLM emits tokens), with 2 live readers per run started with it (all in this process, as a service that streams
 * and serves its readers). Prints chunks/s written and delivered, the
 * p50/p99 delivery latency (append → reader) and the peak RSS. Uses REDIS_URL when set, else a redis-server of its
 * own. Run it with `node --cpu-prof --import tsx bench/scale.ts` to see where the CPU goes.
 */
import { Effect, Layer, ManagedRuntime, Schema, Stream } from "effect"
import * as RedisClient from "../dist/RedisClient.js"
import * as ResumableStream from "../dist/ResumableStream.js"
import * as RedisServer from "../dist/testing/RedisServer.js"
import { percentile } from "./harness.js"

const runs = Number(process.argv[2] ?? 1_000)
const chunksPerRun = Number(process.argv[3] ?? 200)
const pace = Number(process.argv[4] ?? 0)
const readersPerRun = Number(process.env.READERS ?? 2)

/** A chunk carries the time it was appended, so a reader measures its delivery latency. */
const Scale = ResumableStream.define({
  name: "scale",
  input: Schema.Struct({ n: Schema.Number }),
  chunk: Schema.Struct({ at: Schema.Number, text: Schema.String }),
  run: ({ n }, writer) =>
    Effect.gen(function* () {
      for (let i = 0; i < n; i++) {
        if (pace > 0) yield* Effect.sleep(1000 / pace)
        yield* writer.append({ at: performance.now(), text: `token ${i} of the answer` })
      }
    })
})

const mb = (bytes: number) => Math.round(bytes / 2 ** 20)

const main = async () => {
  const server = process.env.REDIS_URL === undefined ? ManagedRuntime.make(RedisServer.layer()) : undefined
  const url = process.env.REDIS_URL ?? (await server!.runPromise(RedisServer.RedisServer)).url
  const runtime = ManagedRuntime.make(
    ResumableStream.layer({ streams: [Scale], keyPrefix: "bench:scale:", unsignedTokens: true }).pipe(
      Layer.provideMerge(RedisClient.layer({ url }))
    )
  )
  const streams = await runtime.runPromise(ResumableStream.ResumableStream)
  /** The process's memory before the runs start (its code, tsx's compiler, the connections), for comparison. */
  const idle = process.memoryUsage()
  /** The largest of each part of the process's memory seen (sampled every 100 ms), at the RSS peak. */
  let peak = idle
  const sampler = setInterval(() => {
    const now = process.memoryUsage()
    if (now.rss > peak.rss) peak = now
  }, 100)
  const latencies: Array<number> = []
  let delivered = 0

  const started = performance.now()
  await runtime.runPromise(
    Effect.forEach(
      Array.from({ length: runs }),
      () =>
        Effect.flatMap(streams.start(Scale, { n: chunksPerRun }), ({ token }) =>
          Effect.forEach(
            Array.from({ length: readersPerRun }),
            () =>
              Stream.runForEach(streams.resume(Scale, token), (entry) =>
                Effect.sync(() => {
                  delivered += 1
                  if (delivered % 10 === 0) latencies.push(performance.now() - entry.chunk.at)
                })
              ),
            { concurrency: "unbounded", discard: true }
          )
        ),
      { concurrency: "unbounded", discard: true }
    )
  )
  const seconds = (performance.now() - started) / 1000
  clearInterval(sampler)
  const expected = runs * chunksPerRun * readersPerRun
  console.log(
    [
      `${runs} runs × ${chunksPerRun} chunks${pace > 0 ? ` at ${pace}/s` : ""}, ${readersPerRun} readers each: ${delivered}/${expected} delivered in ${seconds.toFixed(1)} s`,
      `written ${Math.round((runs * chunksPerRun) / seconds)} chunks/s, delivered ${Math.round(delivered / seconds)} chunks/s`,
      `delivery latency p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms`,
      `peak RSS ${mb(peak.rss)} MB (V8 heap ${mb(peak.heapUsed)} used of ${mb(peak.heapTotal)}, external ${mb(peak.external)}, array buffers ${mb(peak.arrayBuffers)}); before the runs: RSS ${mb(idle.rss)} MB, V8 heap ${mb(idle.heapUsed)} used of ${mb(idle.heapTotal)}`
    ].join("\n")
  )
  await runtime.dispose()
  await server?.dispose()
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
