/**
 * `npm run example:chat`: a chat-like server whose answers stream over SSE and survive a reload.
 *
 * Open http://localhost:3000 (PORT to change), ask something: the answer streams word by word from a background
 * runner. Reload the page mid-answer: it resumes the run from its token (kept in localStorage) and shows the whole
 * answer, then keeps tailing. Drop the network: the browser's EventSource reconnects with Last-Event-ID and continues
 * where it stopped. "Stop" cancels the run, even when another server instance produces it.
 *
 * Redis: REDIS_URL, or a redis-server started for the example when it is unset.
 */
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { randomUUID } from "node:crypto"
import { Config, Effect, Layer, Redacted, Schema } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"
import * as ResumableStream from "../src/ResumableStream.js"
import * as ResumableStreamHttp from "../src/ResumableStreamHttp.js"
import * as RedisServer from "../src/testing/RedisServer.js"

/** A stand-in for an LLM: answers word by word, 150 ms apart. */
const Chat = ResumableStream.define({
  name: "chat",
  input: Schema.Struct({ prompt: Schema.String.check(Schema.isMaxLength(500)) }),
  chunk: Schema.String,
  run: ({ prompt }, writer) =>
    Effect.forEach(
      `You asked: "${prompt}". Here is a long answer, streamed word by word from a background runner that keeps going when you reload, so that nothing is lost and nothing is repeated.`.split(
        " "
      ),
      (word) => Effect.andThen(writer.append(`${word} `), Effect.sleep("150 millis")),
      { discard: true }
    )
})

const page = `<!doctype html>
<meta charset="utf-8"><title>effect-redis-streams: resumable chat</title>
<style>body{font:16px system-ui;max-width:40rem;margin:2rem auto}#answer{white-space:pre-wrap;min-height:6rem;border:1px solid #ccc;padding:1rem}</style>
<h1>Resumable chat</h1>
<form id="ask"><input name="prompt" size="40" value="What is a resumable stream?"> <button>Ask</button> <button type="button" id="stop">Stop</button></form>
<p id="status"></p><div id="answer"></div>
<script>
const answer = document.getElementById("answer"), status = document.getElementById("status")
let source
function tail(token) {
  localStorage.setItem("token", token)
  answer.textContent = ""
  source?.close()
  source = new EventSource("/streams/chat/resume?token=" + encodeURIComponent(token))
  source.addEventListener("chunk", (e) => { answer.textContent += JSON.parse(e.data) })
  source.addEventListener("end", () => { source.close(); status.textContent = "done"; localStorage.removeItem("token") })
  source.addEventListener("failure", (e) => { source.close(); status.textContent = "failed: " + e.data; localStorage.removeItem("token") })
  source.onerror = () => { status.textContent = "reconnecting…" }
  source.onopen = () => { status.textContent = "streaming" }
}
document.getElementById("ask").onsubmit = async (e) => {
  e.preventDefault()
  const abort = new AbortController()
  const response = await fetch("/streams/chat", { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt: new FormData(e.target).get("prompt") }), signal: abort.signal })
  if (!response.ok) { status.textContent = "refused: " + await response.text(); return }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ""
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += value
    const match = buffer.match(/event: start\\ndata: (.*)\\n/)
    if (match) { abort.abort(); return tail(JSON.parse(match[1]).token) } // leaving does not stop the run
  }
}
document.getElementById("stop").onclick = () => {
  const token = localStorage.getItem("token")
  if (token) fetch("/streams/chat?token=" + encodeURIComponent(token) + "&reason=stop", { method: "DELETE" })
}
const saved = localStorage.getItem("token")
if (saved) tail(saved)
</script>`

const Page = HttpRouter.add("GET", "/", HttpServerResponse.html(page))

const Server = Layer.unwrap(
  Effect.gen(function* () {
    const port = yield* Config.Port("PORT").pipe(Config.withDefault(3000))
    const secret = yield* Config.Redacted("STREAM_SECRET").pipe(Config.withDefault(Redacted.make(randomUUID())))
    const redis = yield* RedisServer.RedisServer
    yield* Effect.log(`Redis at ${redis.url}; open http://localhost:${port}`)
    return HttpRouter.serve(Layer.mergeAll(Page, ResumableStreamHttp.routes()), { disableLogger: true }).pipe(
      // tokens are signed with STREAM_SECRET, or with a secret of this run of the example
      Layer.provide(ResumableStream.layer({ streams: [Chat], secret })),
      Layer.provide(NodeHttpServer.layer(createServer, { port }))
    )
  })
)

Layer.launch(Server.pipe(Layer.provide(RedisServer.layerClient()), Layer.provide(RedisServer.layer()))).pipe(
  NodeRuntime.runMain
)
