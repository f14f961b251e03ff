/**
 * A server of the stream routes in a process of its own, for the memory tests of idle SSE clients: it writes one
 * large run (`chunks` chunks of 1 KB), then serves the routes (at most `maxOpen` SSE responses) and `GET /memory`
 * (heap, external and RSS after a garbage collection: run it with `--expose-gc`), and prints
 * `<url> <token>` once ready. Arguments: `single <url>`, the key prefix, the chunk count, the cap, the stall timeout
 * and the keep-alive interval (ms).
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Schema, Stream } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"
import * as ResumableStream from "../../src/ResumableStream.js"
import * as ResumableStreamHttp from "../../src/ResumableStreamHttp.js"
import { clientFromArgs } from "./child.js"

const [mode, target, keyPrefix, chunks, maxOpen, stallMs, keepAliveMs] = process.argv.slice(2)

const Big = ResumableStream.define({
  name: "big",
  input: Schema.Struct({ n: Schema.Number }),
  chunk: Schema.String,
  run: ({ n }, writer) => {
    const chunk = "x".repeat(1000)
    return Effect.forEach(
      Array.from({ length: Math.ceil(n / 100) }),
      () => writer.appendAll(Array.from({ length: 100 }, () => chunk)),
      { discard: true }
    )
  }
})

const memory = HttpRouter.add(
  "GET",
  "/memory",
  Effect.sync(() => {
    ;(globalThis as { gc?: () => void }).gc?.()
    const { heapUsed, external, rss } = process.memoryUsage()
    return HttpServerResponse.jsonUnsafe({ heapUsed, external, rss })
  })
)

const program = Effect.gen(function* () {
  const streams = yield* ResumableStream.ResumableStream
  const started = yield* streams.start(Big, { n: Number(chunks) })
  yield* Stream.runDrain(started.stream)
  const url = yield* HttpServer.addressFormattedWith(Effect.succeed)
  process.stdout.write(`${url} ${started.token}\n`)
  return yield* Effect.never
})

const routes = ResumableStreamHttp.routes({
  authorize: ResumableStreamHttp.allowEveryone,
  maxOpenStreams: Number(maxOpen),
  stallTimeout: Number(stallMs),
  keepAlive: Number(keepAliveMs)
})

Effect.runPromise(
  program.pipe(
    Effect.provide(
      HttpRouter.serve(Layer.merge(routes, memory), { disableLogger: true, disableListenLog: true }).pipe(
        Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
        Layer.provideMerge(
          ResumableStream.layer({ streams: [Big], keyPrefix, unsignedTokens: true, maxChunks: 1_000_000 })
        ),
        Layer.provide(clientFromArgs(mode, target))
      )
    )
  )
).catch(() => process.exit(1))
