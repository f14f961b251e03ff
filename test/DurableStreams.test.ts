import { assert } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Scope } from "effect"
import { stream as followStream } from "@durable-streams/client"
import { createServer, Socket } from "node:net"
import { NodeHttpServer } from "@effect/platform-node"
import { HttpRouter, HttpServer } from "effect/http"
import { createServer as createHttpServer } from "node:http"
import * as DurableStreams from "../src/DurableStreams.js"
import * as RedisClient from "../src/RedisClient.js"
import * as DurableStreamsHttp from "../src/DurableStreamsHttp.js"
import * as ResumableStream from "../src/ResumableStream.js"
import * as ResumableStreamHttp from "../src/ResumableStreamHttp.js"
import * as RedisServer from "../src/testing/RedisServer.js"
import { firstLine, spawnChild } from "./support/child.js"
import { Counter, testOptions } from "./support/definitions.js"
import { anotherClient, forEachTarget, TestTopology } from "./support/targets.js"

const serverChild = new URL("./support/durable-server-child.ts", import.meta.url).pathname

/** The reason tag of a failed effect. */
const failedWith = <A>(effect: Effect.Effect<A, DurableStreams.DurableStreamsError>) =>
  Effect.map(Effect.flip(effect), (error) => error.reason)

const texts = (entries: ReadonlyArray<Uint8Array>) => entries.map((entry) => Buffer.from(entry).toString("utf8"))

const json = { contentType: "application/json" } as const

/** A TCP proxy to `port` whose open connections can be cut (a dropped connection, the server still up). */
const proxyTo = (port: number) =>
  Effect.acquireRelease(
    Effect.promise(
      () =>
        new Promise<{ readonly port: number; readonly cut: () => number; readonly close: () => void }>((resolve) => {
          const sockets = new Set<Socket>()
          const server = createServer((client) => {
            const upstream = new Socket()
            upstream.connect(port, "127.0.0.1")
            for (const socket of [client, upstream]) {
              sockets.add(socket)
              socket.on("close", () => sockets.delete(socket))
              socket.on("error", () => undefined)
            }
            client.pipe(upstream).pipe(client)
          })
          server.listen(0, "127.0.0.1", () =>
            resolve({
              port: (server.address() as { port: number }).port,
              cut: () => {
                const open = sockets.size
                for (const socket of sockets) socket.destroy()
                return open
              },
              close: () => {
                for (const socket of sockets) socket.destroy()
                server.close()
              }
            })
          )
        })
    ),
    (proxy) => Effect.sync(proxy.close)
  )

forEachTarget("DurableStreams", (it) => {
  it.effect("JSON mode keeps each message's exact text; producers are deduplicated and fenced; close is final", () =>
    Effect.gen(function* () {
      const streams = yield* DurableStreams.make({ keyPrefix: RedisServer.uniquePrefix("ds") })
      const created = yield* streams.create("chat/1", json)
      assert.isTrue(created.created)
      assert.isFalse((yield* streams.create("chat/1", json)).created)
      assert.strictEqual((yield* failedWith(streams.create("chat/1", { contentType: "text/plain" })))._tag, "Conflict")
      const producer = { id: "writer", epoch: 0, seq: 0 }
      const first = yield* streams.append("chat/1", '[{"n":1}, {"big":12345678901234567890}]', {
        ...json,
        producer
      })
      assert.isFalse(first.duplicate)
      // a retry of the same request writes nothing and says so
      const retry = yield* streams.append("chat/1", '[{"n":1}, {"big":12345678901234567890}]', { ...json, producer })
      assert.isTrue(retry.duplicate)
      assert.strictEqual(retry.nextOffset, first.nextOffset)
      assert.strictEqual(
        (yield* failedWith(streams.append("chat/1", "{}", { ...json, producer: { ...producer, seq: 2 } })))._tag,
        "SequenceGap"
      )
      yield* streams.append("chat/1", '"restarted"', { ...json, producer: { ...producer, epoch: 1 } })
      const stale = yield* failedWith(streams.append("chat/1", "{}", { ...json, producer: { ...producer, seq: 1 } }))
      assert.deepStrictEqual([stale._tag, stale._tag === "StaleEpoch" ? stale.epoch : ""], ["StaleEpoch", "1"])
      assert.strictEqual((yield* failedWith(streams.append("chat/1", "{oops", json)))._tag, "InvalidRequest")
      assert.strictEqual((yield* failedWith(streams.append("chat/1", "[]", json)))._tag, "InvalidRequest")
      const read = yield* streams.read("chat/1")
      assert.deepStrictEqual(texts(read.entries), ['{"n":1}', '{"big":12345678901234567890}', '"restarted"'])
      assert.isTrue(read.upToDate)
      // from an offset it returned, and from the tail
      const after = yield* streams.read("chat/1", first.nextOffset)
      assert.deepStrictEqual(texts(after.entries), ['"restarted"'])
      assert.deepStrictEqual((yield* streams.read("chat/1", "now")).entries, [])
      assert.strictEqual((yield* failedWith(streams.read("chat/1", "12,3")))._tag, "InvalidRequest")
      const closed = yield* streams.close("chat/1")
      assert.isTrue(closed.closed)
      const refused = yield* failedWith(streams.append("chat/1", "1", json))
      assert.deepStrictEqual(
        [refused._tag, refused._tag === "StreamClosed" ? refused.nextOffset : ""],
        ["StreamClosed", closed.nextOffset]
      )
      const end = yield* streams.read("chat/1", closed.nextOffset, { wait: "5 seconds" })
      assert.isTrue(end.closed && end.upToDate)
      assert.strictEqual((yield* failedWith(streams.read("chat/2")))._tag, "NotFound")
      // at most 10,000 messages per write (each is an argument of one script call); a TTL of 1 s to 10 years; an
      // expiry in the future
      const many = `[${Array.from({ length: 10_001 }, () => "0").join(",")}]`
      yield* streams.create("many", json)
      assert.strictEqual((yield* failedWith(streams.append("many", many, json)))._tag, "InvalidRequest")
      assert.strictEqual((yield* failedWith(streams.create("zero", { ttlSeconds: 0 })))._tag, "InvalidRequest")
      const past = new Date(Date.now() - 1000)
      assert.strictEqual((yield* failedWith(streams.create("past", { expiresAt: past })))._tag, "InvalidRequest")
      assert.isTrue(Exit.hasDies(yield* Effect.exit(DurableStreams.make({ retainEntries: 0 }))))
      // names that cannot be keys of one slot are refused before anything is sent
      for (const name of ["", "a{b}", "x".repeat(1025)]) {
        assert.strictEqual((yield* failedWith(streams.create(name)))._tag, "InvalidRequest")
      }
    })
  )

  it.effect("over HTTP, authorize decides per stream and action; a fork needs the right to read its source", () =>
    Effect.gen(function* () {
      const keyPrefix = RedisServer.uniquePrefix("ds")
      const asked: Array<string> = []
      const routes = DurableStreamsHttp.routes({
        authorize: (_request, access) => {
          asked.push(`${access.action} ${access.stream}`)
          return Effect.succeed(!(access.stream === "secret" && access.action === "read"))
        }
      })
      const context = yield* Layer.build(
        HttpRouter.serve(routes, { disableLogger: true, disableListenLog: true }).pipe(
          Layer.provideMerge(NodeHttpServer.layer(createHttpServer, { port: 0, host: "127.0.0.1" })),
          Layer.provideMerge(DurableStreams.layer({ keyPrefix }))
        )
      )
      const base = yield* HttpServer.addressFormattedWith(Effect.succeed).pipe(Effect.provideContext(context))
      const statuses = yield* Effect.promise(async () => {
        const put = (path: string, headers: Record<string, string> = {}) =>
          fetch(`${base}/v1/stream/${path}`, { method: "PUT", headers: { "content-type": "text/plain", ...headers } })
        const created = (await put("secret")).status
        const read = (await fetch(`${base}/v1/stream/secret?offset=-1`)).status
        const fork = (await put("copy", { "stream-forked-from": "/v1/stream/secret" })).status
        const open = (await put("open")).status
        const forkOpen = (await put("copy", { "stream-forked-from": "/v1/stream/open" })).status
        const readOpen = await fetch(`${base}/v1/stream/open?offset=-1`)
        // a stream's bytes are served sandboxed; a source that is no URL is no stream (not a crash)
        const sandboxed = readOpen.headers.get("content-security-policy") === "default-src 'none'; sandbox"
        const badSource = (await put("bad", { "stream-forked-from": "http://[::1" })).status
        return [created, read, fork, open, forkOpen, sandboxed, badSource]
      })
      assert.deepStrictEqual(statuses, [201, 403, 403, 201, 201, true, 404])
      assert.deepStrictEqual(asked, [
        "create secret",
        "read secret",
        "create copy",
        "read secret",
        "create open",
        "create copy",
        "read open",
        "read open",
        "create bad"
      ])
    })
  )

  it.effect(
    "retainEntries keeps the last entries: reads from the start begin at the oldest kept, older offsets are Gone",
    () =>
      Effect.gen(function* () {
        const streams = yield* DurableStreams.make({ keyPrefix: RedisServer.uniquePrefix("ds"), retainEntries: 3 })
        yield* streams.create("log", json)
        const offsets: Array<string> = []
        for (let i = 0; i < 5; i++) offsets.push((yield* streams.append("log", `{"i":${i}}`, json)).nextOffset)
        const kept = yield* streams.read("log")
        assert.deepStrictEqual(texts(kept.entries), ['{"i":2}', '{"i":3}', '{"i":4}'])
        assert.strictEqual(kept.offset, offsets[1])
        assert.deepStrictEqual(texts((yield* streams.read("log", offsets[1])).entries), [
          '{"i":2}',
          '{"i":3}',
          '{"i":4}'
        ])
        assert.strictEqual((yield* failedWith(streams.read("log", offsets[0])))._tag, "Gone")
        // bytes: whole appends are kept or trimmed, the kept data starts after the last trimmed byte
        yield* streams.create("bytes", { contentType: "text/plain" })
        for (const part of ["aa", "bbb", "c", "dd"]) yield* streams.append("bytes", part, { contentType: "text/plain" })
        const bytes = yield* streams.read("bytes")
        assert.strictEqual(Buffer.concat(bytes.entries).toString(), "bbbcdd")
        assert.strictEqual(bytes.offset, "0000000000000002_0000000000000000")
        // a fork starts where its source's kept data starts
        yield* streams.create("copy", { fork: { from: "log" } })
        const copy = yield* streams.read("copy")
        assert.deepStrictEqual([copy.offset, texts(copy.entries)], [offsets[1], ['{"i":2}', '{"i":3}', '{"i":4}']])
        const tooOld = yield* failedWith(streams.create("old", { fork: { from: "log", offset: offsets[0] } }))
        assert.strictEqual(tooOld._tag, "Gone")
        // the tail is still found: HEAD and offset=now
        assert.strictEqual((yield* streams.head("log")).nextOffset, offsets[4])
        assert.strictEqual((yield* streams.read("log", "now")).nextOffset, offsets[4])
      })
  )

  it.effect("a stream that expired leaves nothing behind: created again, it starts empty", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const keyPrefix = RedisServer.uniquePrefix("ds")
      const streams = yield* DurableStreams.make({ keyPrefix })
      // created empty with an expiry: its entries and its producers' state are written later, and expire with it
      yield* streams.create("short", { contentType: "text/plain", expiresAt: new Date(Date.now() + 1_000) })
      yield* streams.append("short", "old", { contentType: "text/plain", producer: { id: "p", epoch: 3, seq: 0 } })
      yield* streams.create("ttl", { contentType: "text/plain", ttlSeconds: 1 })
      yield* streams.append("ttl", "old", { contentType: "text/plain" })
      yield* Effect.sleep("1500 millis")
      for (const name of ["short", "ttl"]) {
        assert.strictEqual((yield* failedWith(streams.head(name)))._tag, "NotFound")
        for (const part of ["meta", "data", "producers", "forks"]) {
          assert.strictEqual(yield* redis.send<number>("EXISTS", `${keyPrefix}{${name}}:${part}`), 0, `${name} ${part}`)
        }
        yield* streams.create(name, { contentType: "text/plain" })
        assert.deepStrictEqual((yield* streams.read(name)).entries, [])
      }
      // the producer starts afresh on the new stream (epoch 0 is not stale)
      yield* streams.append("short", "new", { contentType: "text/plain", producer: { id: "p", epoch: 0, seq: 0 } })
    })
  )

  it.effect("forks copy their source up to the fork offset; a source deleted under forks is gone, then collected", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const keyPrefix = RedisServer.uniquePrefix("ds")
      const streams = yield* DurableStreams.make({ keyPrefix })
      yield* streams.create("src", { contentType: "text/plain", body: Buffer.from("hello") })
      const middle = (yield* streams.append("src", " world", { contentType: "text/plain" })).nextOffset
      const forkAt = { from: "src", offset: "0000000000000005_0000000000000000", subOffset: 3 }
      yield* streams.create("fork", { fork: forkAt })
      // a sub-offset reaches into the next append, not past it (" world" is 6 bytes)
      const past = yield* failedWith(streams.create("past", { fork: { ...forkAt, subOffset: 7 } }))
      assert.strictEqual(past._tag, "InvalidRequest")
      yield* streams.append("fork", "!", { contentType: "text/plain" })
      assert.strictEqual(Buffer.concat((yield* streams.read("fork")).entries).toString(), "hello wo!")
      assert.strictEqual((yield* streams.head("fork")).contentType, "text/plain")
      const beyond = yield* failedWith(
        streams.create("far", { fork: { from: "src", offset: "0000000000000099_0000000000000000" } })
      )
      assert.strictEqual(beyond._tag, "InvalidRequest")
      yield* streams.create("fork2", { fork: { from: "fork" } })
      yield* streams.delete("src")
      assert.strictEqual((yield* failedWith(streams.head("src")))._tag, "Gone")
      // a retried fork create answers as an idempotent create though its source is gone
      assert.isFalse((yield* streams.create("fork", { fork: forkAt })).created)
      assert.strictEqual((yield* failedWith(streams.create("src", { contentType: "text/plain" })))._tag, "Conflict")
      yield* streams.delete("fork")
      assert.strictEqual((yield* failedWith(streams.head("fork")))._tag, "Gone")
      assert.strictEqual(Buffer.concat((yield* streams.read("fork2")).entries).toString(), "hello wo!")
      // the last fork goes: the chain above it is collected
      yield* streams.delete("fork2")
      for (const name of ["fork2", "fork", "src"]) {
        assert.strictEqual((yield* failedWith(streams.head(name)))._tag, "NotFound")
      }
      assert.strictEqual(middle.length, 33)
      // a tombstone whose forks all went without releasing it (their release failed, or they expired) is collected
      // by the next delete, and its name can be created again
      yield* streams.create("orphaned", { contentType: "text/plain" })
      yield* streams.create("child", { fork: { from: "orphaned" } })
      yield* streams.delete("orphaned")
      yield* redis.send("HDEL", `${keyPrefix}{orphaned}:forks`, "child")
      assert.strictEqual((yield* failedWith(streams.delete("orphaned")))._tag, "Gone")
      assert.isTrue((yield* streams.create("orphaned", { contentType: "text/plain" })).created)
    })
  )

  it.effect(
    "a deploy answers pending long-polls at once (204), instead of holding the shutdown for their timeout",
    () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const server = ResumableStreamHttp.endOnShutdown(
          HttpRouter.serve(
            DurableStreamsHttp.routes({ authorize: DurableStreamsHttp.allowEveryone, longPollTimeout: "30 seconds" }),
            { disableLogger: true, disableListenLog: true }
          ).pipe(Layer.provideMerge(NodeHttpServer.layer(createHttpServer, { port: 0, host: "127.0.0.1" })))
        ).pipe(Layer.provideMerge(DurableStreams.layer({ keyPrefix: RedisServer.uniquePrefix("ds") })))
        const context = yield* Layer.buildWithScope(server, scope)
        const base = yield* HttpServer.addressFormattedWith(Effect.succeed).pipe(Effect.provideContext(context))
        const url = `${base}/v1/stream/deployed`
        const answer = yield* Effect.promise(async () => {
          await fetch(url, { method: "PUT", headers: { "content-type": "text/plain" } })
          const polling = fetch(`${url}?offset=now&live=long-poll`)
          await new Promise((resolve) => setTimeout(resolve, 300))
          return { polling }
        })
        const startedAt = Date.now()
        yield* Effect.forkChild(Scope.close(scope, Exit.void))
        const response = yield* Effect.promise(() => answer.polling)
        assert.strictEqual(response.status, 204)
        assert.strictEqual(response.headers.get("stream-up-to-date"), "true")
        assert.isBelow(Date.now() - startedAt, 5_000)
      })
  )

  it.effect("a reader waiting at one instance wakes at an append through another, at once", () =>
    Effect.gen(function* () {
      const topology = yield* TestTopology
      const keyPrefix = RedisServer.uniquePrefix("ds")
      const here = yield* DurableStreams.make({ keyPrefix })
      yield* here.create("live", { contentType: "text/plain" })
      const wakes: Array<number> = []
      yield* Effect.gen(function* () {
        const there = yield* DurableStreams.make({ keyPrefix })
        let offset = (yield* here.head("live")).nextOffset
        for (let i = 0; i < 20; i++) {
          const reader = yield* Effect.forkChild(here.read("live", offset, { wait: "5 seconds" }))
          yield* Effect.sleep("30 millis")
          const sentAt = performance.now()
          yield* there.append("live", `m${i}`, { contentType: "text/plain" })
          const result = yield* Fiber.join(reader)
          wakes.push(performance.now() - sentAt)
          assert.deepStrictEqual(texts(result.entries), [`m${i}`])
          offset = result.nextOffset
        }
      }).pipe(Effect.provide(anotherClient(topology)))
      wakes.sort((a, b) => a - b)
      // at once: a pub/sub announcement, not a poll (the worst of 20 far below any polling interval worth having)
      assert.isBelow(wakes[19]!, 250, `wake latencies ${wakes.map((ms) => ms.toFixed(1)).join(", ")}`)
    })
  )

  it.effect(
    "two server processes: a producer's request to A, A killed mid-request, retried at B: no duplicate, no gap",
    () =>
      Effect.gen(function* () {
        const topology = yield* TestTopology
        const keyPrefix = RedisServer.uniquePrefix("ds")
        const a = yield* spawnChild(serverChild, topology, [keyPrefix])
        const b = yield* spawnChild(serverChild, topology, [keyPrefix])
        const [urlA, urlB] = [yield* firstLine(a), yield* firstLine(b)]
        const path = "/v1/stream/orders"
        const post = (base: string, seq: number) =>
          fetch(`${base}${path}`, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              "producer-id": "checkout",
              "producer-epoch": "0",
              "producer-seq": String(seq)
            },
            body: JSON.stringify({ seq })
          })
        const statuses: Record<number, number> = {}
        yield* Effect.promise(async () => {
          const created = await fetch(`${urlA}${path}`, {
            method: "PUT",
            headers: { "content-type": "application/json" }
          })
          assert.strictEqual(created.status, 201)
          for (let seq = 0; seq < 200; seq++) {
            if (seq === 100) {
              // the request is on its way to A when A dies: its outcome is unknown, the retry at B settles it
              const inFlight = post(urlA, seq).then(
                (response) => response.status,
                () => 0
              )
              a.kill("SIGKILL")
              await inFlight
            }
            const response = await post(seq < 100 ? urlA : urlB, seq)
            statuses[response.status] = (statuses[response.status] ?? 0) + 1
          }
        })
        const read = yield* Effect.promise(() => fetch(`${urlB}${path}?offset=-1`).then((response) => response.json()))
        assert.deepStrictEqual(
          read,
          Array.from({ length: 200 }, (_, seq) => ({ seq }))
        )
        // every request but the one retried at B wrote new data (200); the retry either wrote it or found it (204)
        assert.strictEqual((statuses[200] ?? 0) + (statuses[204] ?? 0), 200)
        assert.isAtMost(statuses[204] ?? 0, 1)
      })
  )

  /** A run of 60 chunks followed by `@durable-streams/client` through the run routes of a server process, via a proxy. */
  const followRun = (live: "long-poll" | "sse", cutAt: number | undefined) =>
    Effect.gen(function* () {
      const topology = yield* TestTopology
      const keyPrefix = RedisServer.uniquePrefix("ds")
      const runs = yield* ResumableStream.make(testOptions("ds", { keyPrefix: `${keyPrefix}runs:` }))
      const server = yield* spawnChild(serverChild, topology, [keyPrefix])
      const url = yield* firstLine(server)
      const proxy = yield* proxyTo(Number(new URL(url).port))
      const started = yield* runs.start(Counter, { n: 60, delayMs: 25 })
      const received: Array<unknown> = []
      let cuts = 0
      yield* Effect.promise(async () => {
        const response = await followStream({
          url: `http://127.0.0.1:${proxy.port}/v1/runs/${started.token}`,
          live,
          json: true,
          warnOnHttp: false
        })
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`stalled after ${received.length} chunks`)), 30_000)
          response.subscribeJson((batch) => {
            received.push(...batch.items)
            if (cutAt !== undefined && received.length >= cutAt && cuts === 0) cuts = proxy.cut()
            if (batch.streamClosed) {
              clearTimeout(timer)
              response.cancel()
              resolve()
            }
          })
        })
      })
      assert.deepStrictEqual(
        received,
        Array.from({ length: 60 }, (_, i) => `c${i}`)
      )
      return cuts
    })

  it.effect("@durable-streams/client long-polls a ResumableStream run to its end across a dropped connection", () =>
    Effect.map(followRun("long-poll", 20), (cuts) => assert.isAbove(cuts, 0))
  )

  it.effect("@durable-streams/client follows a run over SSE across the server ending its responses (a deploy)", () =>
    // the server process ends each SSE response after 500 ms (sseReconnectAfter): the client reconnects from the
    // last offset it saw, three times or more over the run
    Effect.map(followRun("sse", undefined), (cuts) => assert.strictEqual(cuts, 0))
  )
})
