/**
 * What SSE clients can hold of a server: idle clients (connected, never reading) of a large run stay within the
 * stated memory per client, the cap on open streams refuses the next one with 503 and `Retry-After`, and a client
 * that stopped reading is disconnected after the stall timeout, freeing its place. The server runs in a process of
 * its own, so that its memory is its own.
 */
import { connect, type Socket } from "node:net"
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as RedisServer from "../src/testing/RedisServer.js"
import { firstLine, spawnChild } from "./support/child.js"
import { type Topology } from "./support/targets.js"

const childScript = new URL("./support/sse-server-child.ts", import.meta.url).pathname

interface Memory {
  readonly heapUsed: number
  readonly external: number
  readonly rss: number
}

/** The server child: a run of `chunks` 1 KB chunks, at most `maxOpen` streams; its URL and the run's token. */
const serve = (options: { chunks: number; maxOpen: number; stallMs: number; keepAliveMs: number }) =>
  Effect.gen(function* () {
    const node = yield* RedisServer.RedisServer
    const topology: Topology = { kind: "single", nodes: [node], killAll: node.kill, startAll: node.start }
    const child = yield* spawnChild(
      childScript,
      topology,
      [
        RedisServer.uniquePrefix("sse"),
        String(options.chunks),
        String(options.maxOpen),
        String(options.stallMs),
        String(options.keepAliveMs)
      ],
      ["--expose-gc"]
    )
    const [url, token] = (yield* firstLine(child)).split(" ")
    return { url: url ?? "", resume: `/streams/big/resume?token=${encodeURIComponent(token ?? "")}` }
  })

const memoryOf = (url: string) => Effect.promise(async () => (await (await fetch(`${url}/memory`)).json()) as Memory)

/** `count` clients that ask for `path` and never read: their sockets, destroyed with the scope. */
const idleClients = (url: string, path: string, count: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const port = Number(new URL(url).port)
      return Array.from({ length: count }, () => {
        const socket: Socket = connect(port, "127.0.0.1")
        socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
        socket.pause()
        socket.on("error", () => {})
        return socket
      })
    }),
    (sockets) => Effect.sync(() => sockets.forEach((socket) => socket.destroy()))
  )

/** The status and `Retry-After` of one more client's request. */
const oneMore = (url: string, path: string) =>
  Effect.promise(async () => {
    const response = await fetch(`${url}${path}`)
    await response.body?.cancel()
    return { status: response.status, retryAfter: response.headers.get("retry-after") }
  })

/** Memory once it stopped moving (two readings a second apart within 2 MB, after 5 s at least), within `seconds`. */
const settledMemory = (url: string, seconds: number) =>
  Effect.gen(function* () {
    yield* Effect.sleep("5 seconds")
    let last = yield* memoryOf(url)
    for (let i = 0; i < seconds; i++) {
      yield* Effect.sleep("1 second")
      const now = yield* memoryOf(url)
      if (Math.abs(now.heapUsed + now.external - last.heapUsed - last.external) < 2e6) return now
      last = now
    }
    return last
  })

describe("SSE responses are bounded", () => {
  layer(RedisServer.layer(), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.effect(
      "300 idle clients of a 20 MB run hold at most 1 MiB each (heap and buffers); the cap refuses the 301st with 503",
      () =>
        Effect.gen(function* () {
          const { url, resume } = yield* serve({ chunks: 20_000, maxOpen: 300, stallMs: 120_000, keepAliveMs: 15_000 })
          const before = yield* memoryOf(url)
          yield* idleClients(url, resume, 300)
          const after = yield* settledMemory(url, 25)
          const perClient = (after.heapUsed + after.external - before.heapUsed - before.external) / 300
          const rssPerClient = (after.rss - before.rss) / 300
          console.log(
            `300 idle clients: ${(perClient / 1024).toFixed(0)} KiB each (heap + external), RSS +${((after.rss - before.rss) / 1e6).toFixed(0)} MB`
          )
          assert.isBelow(perClient, 1024 * 1024)
          assert.isBelow(rssPerClient, 2 * 1024 * 1024)
          const refused = yield* oneMore(url, resume)
          assert.deepStrictEqual(refused, { status: 503, retryAfter: "5" })
        }).pipe(Effect.scoped),
      { timeout: 60_000 }
    )

    it.effect(
      "a client that stopped reading is disconnected after the stall timeout, and its place is free again",
      () =>
        Effect.gen(function* () {
          const { url, resume } = yield* serve({ chunks: 20_000, maxOpen: 5, stallMs: 2_000, keepAliveMs: 1_000 })
          yield* idleClients(url, resume, 5)
          yield* Effect.sleep("1 second")
          assert.strictEqual((yield* oneMore(url, resume)).status, 503)
          // stalled for 2 s, judged within a second more
          yield* Effect.sleep("3500 millis")
          assert.strictEqual((yield* oneMore(url, resume)).status, 200)
        }).pipe(Effect.scoped),
      { timeout: 30_000 }
    )
  })
})
