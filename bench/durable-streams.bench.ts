/**
 * The Durable Streams server (DurableStreamsHttp on DurableStreams, in this process, on the bench's Redis) against the
 * reference server of the protocol (`@durable-streams/server` 0.3.7, streams in this process's memory) and a raw
 * ioredis endpoint (bench/support/raw-durable.ts: XADD/XRANGE/PUBLISH without the protocol's checks), all over HTTP
 * with Node's fetch, the same client for every side:
 * (a) appends: 5,000 POSTs of 100 bytes to one stream, 50 in flight; appends/s.
 * (b) catch-up reads: a stream of 1,000 entries of 10 KB (10 MB) read from the start, page after page, following
 *     Stream-Next-Offset; MB/s.
 * (c) long-poll wake-ups: 100 readers long-polling at the tail, one append, the time until each reader has its answer;
 *     10 rounds, p50 and p99 (ms).
 * (d) the same with the readers at a second server instance, the append made at the first: ours and raw (both wake
 *     through Redis pub/sub); the reference server cannot (its streams live in one process).
 */
import { NodeHttpServer } from "@effect/platform-node"
import { DurableStreamTestServer } from "@durable-streams/server"
import { Effect, Layer, ManagedRuntime } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { createServer } from "node:http"
import * as DurableStreams from "../dist/DurableStreams.js"
import * as DurableStreamsHttp from "../dist/DurableStreamsHttp.js"
import * as RedisClient from "../dist/RedisClient.js"
import { inFlight, percentile, type Scenario, type Suite, throughput } from "./harness.js"
import { startRawServer } from "./support/raw-durable.js"

const appends = 5_000
const appendBytes = 100
const catchUpEntries = 1_000
const catchUpEntryBytes = 10 * 1024
const readers = 100
const wakeRounds = 10
const peerName = "@durable-streams/server 0.3.7"
const longPollMs = 30_000

/** Our server in this process, on Redis at `url`. */
const startOurs = async (url: string) => {
  const runtime = ManagedRuntime.make(
    HttpRouter.serve(
      DurableStreamsHttp.routes({
        authorize: DurableStreamsHttp.allowEveryone,
        longPollTimeout: `${longPollMs} millis`
      }),
      { disableLogger: true, disableListenLog: true }
    ).pipe(
      Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
      Layer.provide(DurableStreams.layer({ keyPrefix: "bench:ds:" })),
      Layer.provide(RedisClient.layer({ url }))
    )
  )
  const address = await runtime.runPromise(HttpServer.addressFormattedWith(Effect.succeed))
  return { url: address, close: () => runtime.dispose() }
}

/** The reference server, in memory. */
const startPeer = async () => {
  const server = new DurableStreamTestServer({ port: 0, longPollTimeout: longPollMs })
  const url = await server.start()
  return { url, close: () => server.stop() }
}

let streamCounter = 0
/** A fresh stream at `base`. */
const newStream = async (base: string) => {
  const url = `${base}/v1/stream/bench-${process.pid}-${streamCounter++}`
  const response = await fetch(url, { method: "PUT", headers: { "content-type": "application/octet-stream" } })
  if (response.status !== 201) throw new Error(`PUT ${url}: ${response.status}`)
  return url
}

const append = async (url: string, body: Uint8Array<ArrayBuffer>) => {
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/octet-stream" }, body })
  if (response.status !== 204 && response.status !== 200) throw new Error(`POST ${url}: ${response.status}`)
  return response.headers.get("stream-next-offset")!
}

/** Reads a stream from the start to its tail, page by page; its bytes. */
const readAll = async (url: string) => {
  let offset = "-1"
  let bytes = 0
  for (;;) {
    const response = await fetch(`${url}?offset=${encodeURIComponent(offset)}`)
    const body = new Uint8Array(await response.arrayBuffer())
    bytes += body.length
    const next = response.headers.get("stream-next-offset")
    if (body.length === 0 || next === null || next === offset) return bytes
    offset = next
  }
}

/** 100 readers long-polling `readAt` at the tail, an append to `writeTo`; each reader's latency (ms), 10 rounds. */
const wakeLatencies = async (writeTo: string, readAt: string) => {
  const latencies: Array<number> = []
  let offset = await append(writeTo, new Uint8Array([0]))
  for (let round = 0; round < wakeRounds; round++) {
    let sentAt = 0
    const answers = Array.from({ length: readers }, () =>
      fetch(`${readAt}?offset=${encodeURIComponent(offset)}&live=long-poll`).then(async (response) => {
        await response.arrayBuffer()
        latencies.push(performance.now() - sentAt)
        return response.headers.get("stream-next-offset")!
      })
    )
    await new Promise((resolve) => setTimeout(resolve, 150))
    sentAt = performance.now()
    const next = await append(writeTo, new Uint8Array([round]))
    await Promise.all(answers)
    offset = next
  }
  return latencies
}

/** The same path on another server (the second instance). */
const sameStreamAt = (url: string, otherBase: string) => `${otherBase}${new URL(url).pathname}`

const suite: Suite = {
  name: "DurableStreams",
  setup: async (url) => {
    const ours = await startOurs(url)
    const oursB = await startOurs(url)
    const peer = await startPeer()
    const raw = await startRawServer(url, longPollMs)
    const rawB = await startRawServer(url, longPollMs)
    const bases = { ours: ours.url, peer: peer.url, raw: raw.url }
    const payload = new Uint8Array(appendBytes).fill(97)
    const big = new Uint8Array(catchUpEntryBytes).fill(98)

    const appendThroughput = (base: string) => async () => {
      const stream = await newStream(base)
      return throughput(appends, () => inFlight(appends, 50, () => append(stream, payload)))
    }

    // (b) one filled stream per side, read again at each measure
    const filled: Record<string, string> = {}
    for (const [side, base] of Object.entries(bases)) {
      const stream = await newStream(base)
      await inFlight(catchUpEntries, 20, () => append(stream, big))
      filled[side] = stream
    }
    const catchUp = (side: keyof typeof bases) => async () => {
      const started = performance.now()
      const bytes = await readAll(filled[side]!)
      if (bytes !== catchUpEntries * catchUpEntryBytes) throw new Error(`${side} read ${bytes} bytes`)
      return bytes / 1024 / 1024 / ((performance.now() - started) / 1000)
    }

    const wake = (base: string, other: string | undefined, p: number) => async () => {
      const stream = await newStream(base)
      return percentile(await wakeLatencies(stream, other === undefined ? stream : sameStreamAt(stream, other)), p)
    }

    const scenarios: Array<Scenario> = [
      {
        name: `appends, ${appendBytes} B, 50 in flight`,
        unit: "appends/s",
        higherIsBetter: true,
        ours: appendThroughput(ours.url),
        raw: appendThroughput(raw.url),
        peer: { name: peerName, measure: appendThroughput(peer.url) }
      },
      {
        name: "catch-up read of 10 MB (1,000 × 10 KB)",
        unit: "MB/s",
        higherIsBetter: true,
        ours: catchUp("ours"),
        raw: catchUp("raw"),
        peer: { name: peerName, measure: catchUp("peer") }
      },
      ...[50, 99].map((p): Scenario => ({
        name: `long-poll wake-up, ${readers} readers, p${p}`,
        unit: "ms",
        higherIsBetter: false,
        ours: wake(ours.url, undefined, p),
        raw: wake(raw.url, undefined, p),
        peer: { name: peerName, measure: wake(peer.url, undefined, p) }
      })),
      ...[50, 99].map((p): Scenario => ({
        name: `long-poll wake-up at a second instance, ${readers} readers, p${p}`,
        unit: "ms",
        higherIsBetter: false,
        ours: wake(ours.url, oursB.url, p),
        raw: wake(raw.url, rawB.url, p),
        notes: () =>
          p === 50
            ? ["the reference server cannot serve one stream from two instances (its streams live in one process)"]
            : []
      }))
    ]
    return {
      scenarios,
      close: async () => {
        await Promise.all([ours.close(), oursB.close(), peer.close(), raw.close(), rawB.close()])
      }
    }
  }
}

export default suite
