import { NodeHttpServer } from "@effect/platform-node"
import { assert } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { createServer } from "node:http"
import * as ResumableStream from "../src/ResumableStream.js"
import * as ResumableStreamHttp from "../src/ResumableStreamHttp.js"
import { all, testOptions } from "./support/definitions.js"
import { collect, type SseEvent } from "./support/sse.js"
import { forEachTarget } from "./support/targets.js"

const options = (overrides: Partial<ResumableStream.Options<typeof all>> = {}) => testOptions("rs-http", overrides)

/** Runs `f` with the base URL of a real HTTP server (random port) serving the routes. */
const withServer = <A, E, R>(
  streamOptions: ResumableStream.Options<typeof all>,
  f: (baseUrl: string) => Effect.Effect<A, E, R>
) =>
  HttpServer.addressFormattedWith((url) => f(url)).pipe(
    Effect.provide(
      HttpRouter.serve(ResumableStreamHttp.routes({ authorize: ResumableStreamHttp.allowEveryone }), {
        disableLogger: true,
        disableListenLog: true
      }).pipe(
        Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
        Layer.provideMerge(ResumableStream.layer(streamOptions))
      )
    )
  )

const post = (body: unknown): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body)
})

const chunks = (events: ReadonlyArray<SseEvent>) =>
  events.filter((e) => e.event === "chunk").map((e) => JSON.parse(e.data) as unknown)
const tokenOf = (events: ReadonlyArray<SseEvent>) =>
  (JSON.parse(events.find((e) => e.event === "start")?.data ?? "{}") as { token: string }).token
const counted = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `c${from + i}`)

forEachTarget("ResumableStream over HTTP", (it) => {
  it.effect("POST answers with SSE: the token first, chunks with entry ids, then end", () =>
    withServer(options(), (baseUrl) =>
      Effect.gen(function* () {
        const result = yield* collect(`${baseUrl}/streams/counter`, post({ n: 5, delayMs: 1 }))
        assert.strictEqual(result.status, 200)
        assert.strictEqual(result.events[0]?.event, "start")
        assert.match(tokenOf(result.events), /^v1\./)
        assert.deepStrictEqual(chunks(result.events), counted(0, 5))
        for (const event of result.events.filter((e) => e.event === "chunk")) assert.match(event.id ?? "", /^\d+-\d+$/)
        assert.strictEqual(result.events.at(-1)?.event, "end")
      })
    )
  )

  it.effect("a client that drops after k chunks reconnects with Last-Event-ID: every chunk exactly once", () =>
    withServer(options(), (baseUrl) =>
      Effect.gen(function* () {
        const first = yield* collect(
          `${baseUrl}/streams/counter`,
          post({ n: 40, delayMs: 5 }),
          (events) => chunks(events).length === 7
        )
        const token = tokenOf(first.events)
        const lastId = first.events.at(-1)?.id ?? ""
        const rest = yield* collect(`${baseUrl}/streams/counter/resume?token=${encodeURIComponent(token)}`, {
          headers: { "last-event-id": lastId }
        })
        assert.deepStrictEqual([...chunks(first.events), ...chunks(rest.events)], counted(0, 40))
        assert.strictEqual(rest.events.at(-1)?.event, "end")
        // `after` in the query does the same when there is no header
        const fromThird = first.events.filter((e) => e.event === "chunk")[2]?.id ?? ""
        const after = yield* collect(
          `${baseUrl}/streams/counter/resume?token=${encodeURIComponent(token)}&after=${fromThird}`
        )
        assert.deepStrictEqual(chunks(after.events), counted(3, 40))
      })
    )
  )

  it.effect("DELETE cancels the run: a reader gets a Cancelled failure event", () =>
    withServer(options(), (baseUrl) =>
      Effect.gen(function* () {
        const first = yield* collect(
          `${baseUrl}/streams/forever`,
          post({ everyMs: 10 }),
          (events) => events.length >= 3
        )
        const token = encodeURIComponent(tokenOf(first.events))
        const cancelled = yield* Effect.promise(() =>
          fetch(`${baseUrl}/streams/forever?token=${token}&reason=stop`, { method: "DELETE" })
        )
        assert.strictEqual(cancelled.status, 200)
        assert.deepStrictEqual(yield* Effect.promise(() => cancelled.json()), { status: "cancelled" })
        const resumed = yield* collect(`${baseUrl}/streams/forever/resume?token=${token}`)
        const failure = resumed.events.at(-1)
        assert.strictEqual(failure?.event, "failure")
        assert.strictEqual((JSON.parse(failure?.data ?? "{}") as { reason: string }).reason, "Cancelled")
      })
    )
  )

  it.effect("a failing runner ends the SSE with its typed error", () =>
    withServer(options(), (baseUrl) =>
      Effect.gen(function* () {
        const result = yield* collect(`${baseUrl}/streams/failing`, post({ code: 7 }))
        assert.deepStrictEqual(chunks(result.events), ["a", "b", "c"])
        const failure = JSON.parse(result.events.at(-1)?.data ?? "{}") as { reason: string; error: unknown }
        assert.strictEqual(failure.reason, "Failed")
        assert.deepStrictEqual(failure.error, { _tag: "Boom", code: 7 })
      })
    )
  )

  it.effect(
    "refusals get HTTP statuses: bad input 400, unknown stream 404, bad or foreign token 401, expired 410",
    () =>
      withServer(options({ secret: Redacted.make("http-secret"), tokenTtl: "300 millis" }), (baseUrl) =>
        Effect.gen(function* () {
          const status = (url: string, init?: RequestInit) => Effect.map(collect(url, init), (result) => result.status)
          assert.strictEqual(yield* status(`${baseUrl}/streams/counter`, post({ n: "x" })), 400)
          const json = { "content-type": "application/json" }
          assert.strictEqual(
            yield* status(`${baseUrl}/streams/counter`, { method: "POST", headers: json, body: "{not json" }),
            400
          )
          // not said to be JSON: 415 before anything is read (a cross-site form cannot say it)
          assert.strictEqual(yield* status(`${baseUrl}/streams/counter`, { method: "POST", body: "{}" }), 415)
          assert.strictEqual(yield* status(`${baseUrl}/streams/nope`, post({})), 404)
          assert.strictEqual(yield* status(`${baseUrl}/streams/counter/resume?token=v1.e30.AAAA`), 401)
          assert.strictEqual(yield* status(`${baseUrl}/streams/counter/resume`), 400)
          const started = yield* collect(`${baseUrl}/streams/counter`, post({ n: 1, delayMs: 0 }))
          const token = encodeURIComponent(tokenOf(started.events))
          // route by route: a token of another stream is InvalidToken (401), an unknown stream NotFound (404)
          const refusal = (url: string, init?: RequestInit) =>
            Effect.promise(async () => {
              const response = await fetch(url, init)
              return { status: response.status, ...((await response.json()) as { reason: string; message: string }) }
            })
          const foreign = yield* refusal(`${baseUrl}/streams/failing/resume?token=${token}`)
          assert.deepStrictEqual(foreign, {
            status: 401,
            reason: "InvalidToken",
            message: 'the token is for a stream "counter", not "failing"'
          })
          assert.deepStrictEqual(
            yield* refusal(`${baseUrl}/streams/failing?token=${token}`, { method: "DELETE" }),
            foreign
          )
          const unknown = yield* refusal(`${baseUrl}/streams/nope/resume?token=${token}`)
          assert.deepStrictEqual(unknown, { status: 404, reason: "NotFound", message: 'no stream named "nope" here' })
          assert.deepStrictEqual(
            yield* refusal(`${baseUrl}/streams/nope?token=${token}`, { method: "DELETE" }),
            unknown
          )
          assert.strictEqual(
            yield* status(`${baseUrl}/streams/counter/resume?token=${token}`, { headers: { "last-event-id": "x" } }),
            400
          )
          assert.strictEqual(
            yield* status(`${baseUrl}/streams/counter/resume?token=${token}&after=18446744073709551616-0`),
            400
          )
          const fromZero = yield* collect(`${baseUrl}/streams/counter/resume?token=${token}&after=0-0`)
          assert.deepStrictEqual(chunks(fromZero.events), counted(0, 1))
          // a body larger than maxBodyBytes (1 MiB by default): 413, with or without a content length
          const large = JSON.stringify({ n: 1, delayMs: 0, padding: "x".repeat(5 * 1024 * 1024) })
          assert.strictEqual(
            yield* status(`${baseUrl}/streams/counter`, { method: "POST", headers: json, body: large }),
            413
          )
          const chunked = new ReadableStream({
            start: (controller) => {
              controller.enqueue(new TextEncoder().encode(large))
              controller.close()
            }
          })
          const streamed = { method: "POST", headers: json, body: chunked, duplex: "half" } as RequestInit
          assert.strictEqual(yield* status(`${baseUrl}/streams/counter`, streamed), 413)
          yield* Effect.sleep("400 millis")
          assert.strictEqual(yield* status(`${baseUrl}/streams/counter/resume?token=${token}`), 410)
          assert.strictEqual(yield* status(`${baseUrl}/streams/counter?token=${token}`, { method: "DELETE" }), 410)
        })
      )
  )
})
