/**
 * The HTTP routes against what a port reachable from a browser invites, with the routes open to every request
 * (`allowEveryone`), so that what holds is the guard every route set shares: a page of another origin in Chromium (a
 * `text/plain` form, a `no-cors` fetch) starts and stops nothing; a request naming a rebinding host is refused;
 * error bodies say nothing of Redis.
 */
import { createServer, request as httpRequest } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Layer, Schema } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { inputOf, makeChat } from "../examples/chat/answer.js"
import * as RedisClient from "../src/RedisClient.js"
import * as ResumableChat from "../src/ResumableChat.js"
import * as ResumableStream from "../src/ResumableStream.js"
import * as ResumableStreamHttp from "../src/ResumableStreamHttp.js"
import * as RedisServer from "../src/testing/RedisServer.js"
import { browser } from "./support/browser.js"
import { stopRequest, userMessage } from "./support/chat.js"

/** Runs of the tripwire stream started: any is an attack that got through. */
let tripped = 0
const Tripwire = ResumableStream.define({
  name: "tripwire",
  input: Schema.Unknown,
  chunk: Schema.String,
  run: () => Effect.sync(() => void tripped++)
})
/** A chat whose answer takes about 4 s (a word every 100 ms). */
const Chat = makeChat({ wordDelayMs: 100 })

/** The app under attack: its URL and its Redis node. */
class App extends Context.Service<App, { readonly url: string; readonly node: RedisServer.Node }>()("test/App") {}

/** The stream routes and the chat routes, open to every request, on 127.0.0.1 (a port of their own). */
const AppLive = Layer.unwrap(
  Effect.map(RedisServer.RedisServer, (node) =>
    Layer.effect(
      App,
      Effect.map(HttpServer.addressFormattedWith(Effect.succeed), (url) => ({ url, node }))
    ).pipe(
      Layer.provide(
        HttpRouter.serve(
          Layer.mergeAll(
            ResumableStreamHttp.routes({ authorize: ResumableStreamHttp.allowEveryone }),
            ResumableChat.routes({ stream: Chat, input: inputOf, authorize: ResumableChat.allowEveryone })
          ),
          { disableLogger: true, disableListenLog: true }
        ).pipe(Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })))
      ),
      Layer.provide(
        ResumableStream.layer({
          streams: [Tripwire, Chat],
          keyPrefix: RedisServer.uniquePrefix("sec"),
          unsignedTokens: true,
          outageTimeout: "1 second"
        })
      ),
      Layer.provide(RedisClient.layer({ url: node.url, commandTimeout: "1 second", connectTimeout: "2 seconds" }))
    )
  )
).pipe(Layer.provideMerge(RedisServer.layer()))

/** An attacker's page on another origin (another port of 127.0.0.1), serving `html`; its URL. */
const attackerPage = (html: string) =>
  Effect.map(
    Layer.build(
      HttpRouter.serve(HttpRouter.add("GET", "/", HttpServerResponse.html(html)), {
        disableLogger: true,
        disableListenLog: true
      }).pipe(Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })))
    ),
    (context) => Context.get(context, HttpServer.HttpServer).address
  ).pipe(Effect.map((address) => ("port" in address ? `http://127.0.0.1:${address.port}/` : "")))

/** A POST of a chat question for `chatId`, as `useChat` sends it. */
const question = (chatId: string): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ id: chatId, trigger: "submit-message", messages: [userMessage("a long question")] })
})

/** A raw HTTP request with headers fetch will not let one set (`Host`); its status and body. */
const rawRequest = (url: string, method: string, headers: Record<string, string>, body?: string) =>
  Effect.callback<{ readonly status: number; readonly body: string }>((resume) => {
    const request = httpRequest(url, { method, headers }, (response) => {
      let text = ""
      response.on("data", (chunk: Buffer) => (text += chunk.toString()))
      response.on("end", () => resume(Effect.succeed({ status: response.statusCode ?? 0, body: text })))
    })
    request.end(body)
  })

describe("the HTTP routes under attack", () => {
  layer(AppLive, { excludeTestServices: true, timeout: "30 seconds" })((it) => {
    it.effect(
      "a page of another origin in Chromium: a text/plain form and a no-cors fetch start and stop nothing",
      () =>
        Effect.gen(function* () {
          const { url } = yield* App
          tripped = 0
          // a victim's answer, running
          const victim = yield* Effect.promise(() => fetch(`${url}/api/chat`, question("victim-chat")))
          assert.strictEqual(victim.status, 200)
          const answer = Effect.runPromise(Effect.promise(() => victim.text()))
          const page = yield* attackerPage(`<!doctype html><body>
<form id="form" method="POST" action="${url}/streams/tripwire" enctype="text/plain">
<input name='{"a":"' value='"}'></form>
<script>
// the three requests are sent and settled (whatever their answers) before the form navigates the page away
Promise.allSettled([
  fetch("${url}/api/chat/victim-chat/stop", { method: "POST", mode: "no-cors" }),
  fetch("${url}/api/chat", { method: "POST", mode: "no-cors", body: '{"id":"attacker-chat","messages":[]}' }),
  fetch("${url}/streams/tripwire", { method: "POST", mode: "no-cors", body: "{}" })
]).then(() => document.getElementById("form").submit())
</script></body>`)
          const context = yield* browser
          const tab = yield* Effect.promise(() => context.newPage())
          yield* Effect.promise(() => tab.goto(page))
          // the form navigated to the routes' refusal, after the fetches settled
          yield* Effect.promise(() => tab.waitForURL(`${url}/streams/tripwire`, { timeout: 20_000 }))
          const refusal = (yield* Effect.promise(() => tab.textContent("body"))) ?? ""
          assert.include(refusal, "Forbidden")
          // nothing started, nothing stopped: the victim's answer reaches its end
          const text = yield* Effect.promise(() => answer)
          assert.include(text, '"type":"finish"')
          assert.notInclude(text, '"type":"abort"')
          assert.strictEqual(tripped, 0)
          const attacker = yield* Effect.promise(() => fetch(`${url}/api/chat/attacker-chat/stream`))
          assert.strictEqual(attacker.status, 204)
        }).pipe(Effect.scoped),
      { timeout: 30_000 }
    )

    it.effect("a request for a rebinding host, or from another origin, is refused before anything runs", () =>
      Effect.gen(function* () {
        const { url } = yield* App
        tripped = 0
        const json = { "content-type": "application/json" }
        for (const [path, method, body] of [
          ["/streams/tripwire", "POST", "{}"],
          ["/api/chat/any/stream", "GET", undefined],
          ["/api/chat/any/stop", "POST", "{}"]
        ] as const) {
          const rebound = yield* rawRequest(`${url}${path}`, method, { ...json, host: "rebind.attacker.example" }, body)
          assert.strictEqual(rebound.status, 403, path)
          assert.deepStrictEqual(JSON.parse(rebound.body), {
            reason: "Forbidden",
            message: 'this server does not answer for host "rebind.attacker.example" (allowedHosts)'
          })
          const crossSite = yield* rawRequest(`${url}${path}`, method, { ...json, origin: "http://evil.example" }, body)
          assert.strictEqual(crossSite.status, 403, path)
        }
        // a preflight from another origin is not answered with CORS headers
        const preflight = yield* rawRequest(`${url}/streams/tripwire`, "OPTIONS", {
          origin: "http://evil.example",
          "access-control-request-method": "POST"
        })
        assert.strictEqual(preflight.status, 403)
        assert.strictEqual(tripped, 0)
        // the page's own origin passes
        const own = yield* rawRequest(`${url}/streams/tripwire`, "POST", { ...json, origin: url }, "{}")
        assert.strictEqual(own.status, 200)
        assert.strictEqual(tripped, 1)
      })
    )

    it.effect("with Redis gone, refusals and failure events name no address, port, script or driver text", () =>
      Effect.gen(function* () {
        const { url, node } = yield* App
        yield* node.kill
        const leaks = (text: string) => {
          for (const secret of [
            "127.0.0.1",
            String(node.port),
            "ECONNREFUSED",
            "enableOfflineQueue",
            "script",
            "@user"
          ]) {
            assert.notInclude(text, secret)
          }
        }
        const started = yield* Effect.promise(async () => {
          const response = await fetch(`${url}/streams/tripwire`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: "{}"
          })
          return { status: response.status, body: await response.text() }
        })
        assert.strictEqual(started.status, 503)
        assert.deepStrictEqual(JSON.parse(started.body), {
          reason: "Redis",
          message: "the server's storage is unavailable; try again shortly"
        })
        leaks(started.body)
        const chat = yield* Effect.promise(async () => {
          const response = await fetch(`${url}/api/chat/any/stream`)
          return { status: response.status, body: await response.text() }
        })
        assert.strictEqual(chat.status, 503)
        leaks(chat.body)
        const stop = yield* Effect.promise(async () => {
          const response = await fetch(`${url}/api/chat/any/stop`, stopRequest)
          return { status: response.status, body: await response.text() }
        })
        leaks(stop.body)
        yield* node.start
      })
    )
  })
})
