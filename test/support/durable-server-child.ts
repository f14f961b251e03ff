/**
 * A Durable Streams server in a process of its own (one instance of an application behind a load balancer), for the
 * tests that kill an instance: the stream routes and the run routes (the test definitions, under `keyPrefix`) on a
 * free port, with short live responses, the URL printed once ready. Arguments: `single <url>` or `cluster <nodes>`, the key prefix.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { createServer } from "node:http"
import * as DurableStreams from "../../src/DurableStreams.js"
import * as DurableStreamsHttp from "../../src/DurableStreamsHttp.js"
import * as ResumableStream from "../../src/ResumableStream.js"
import { clientFromArgs } from "./child.js"
import { all } from "./definitions.js"

const [mode, target, keyPrefix] = process.argv.slice(2)

/** Short live responses: long-polls answer within 2 s, SSE responses end after 500 ms (the clients reconnect). */
const live = {
  authorize: DurableStreamsHttp.allowEveryone,
  longPollTimeout: "2 seconds",
  sseReconnectAfter: "500 millis"
} as const

const routes = Layer.merge(DurableStreamsHttp.routes(live), DurableStreamsHttp.runRoutes(live))

const program = Effect.gen(function* () {
  const url = yield* HttpServer.addressFormattedWith(Effect.succeed)
  process.stdout.write(`${url}\n`)
  return yield* Effect.never
})

Effect.runPromise(
  program.pipe(
    Effect.provide(
      HttpRouter.serve(routes, { disableLogger: true, disableListenLog: true }).pipe(
        Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
        Layer.provideMerge(DurableStreams.layer({ keyPrefix })),
        Layer.provideMerge(
          ResumableStream.layer({ streams: all, keyPrefix: `${keyPrefix}runs:`, unsignedTokens: true })
        ),
        Layer.provide(clientFromArgs(mode, target))
      )
    )
  )
).catch(() => process.exit(1))
