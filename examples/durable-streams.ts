/**
 * `npm run example:durable-streams`: a Durable Streams server on Redis (the open protocol of
 * durable-streams/durable-streams), on `PORT` (default 4437), against `REDIS_URL`, or a redis-server started for it
 * when that is unset (`-- --cluster`: a 3-master Redis Cluster started for it). Any number of these, on one Redis,
 * serve the same streams. Try it:
 *
 *   curl -X PUT -H 'content-type: text/plain' localhost:4437/v1/stream/hello
 *   curl -X POST -H 'content-type: text/plain' --data 'hi there' localhost:4437/v1/stream/hello
 *   curl 'localhost:4437/v1/stream/hello?offset=-1'
 *   curl -N 'localhost:4437/v1/stream/hello?offset=-1&live=sse'
 *
 * It also serves ResumableStream runs as read-only durable streams under /v1/runs/{token}: it starts one (an answer
 * streamed word by word) and prints its URL, which any Durable Streams client can follow (`live=sse`).
 *
 * `LONG_POLL_MS` sets the long-poll timeout (default 30 s). It serves until Ctrl-C.
 */
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, References, Schema } from "effect"
import { HttpRouter } from "effect/http"
import { createServer } from "node:http"
import * as DurableStreams from "../src/DurableStreams.js"
import * as DurableStreamsHttp from "../src/DurableStreamsHttp.js"
import * as ResumableStream from "../src/ResumableStream.js"
import * as ResumableStreamHttp from "../src/ResumableStreamHttp.js"
import type * as RedisClient from "../src/RedisClient.js"
import * as RedisServer from "../src/testing/RedisServer.js"

const port = Number(process.env.PORT ?? 4437)
const cluster = process.argv.includes("--cluster")

/** An answer streamed word by word by a background run. */
const Answer = ResumableStream.define({
  name: "answer",
  input: Schema.Struct({ question: Schema.String }),
  chunk: Schema.String,
  run: ({ question }, writer) =>
    Effect.forEach(
      `You asked "${question}". Durable Streams clients can follow this answer, resume it and read it again.`.split(
        " "
      ),
      (word) => Effect.andThen(writer.append(`${word} `), Effect.sleep("200 millis")),
      { discard: true }
    )
})

// an open server for the example: every client may create, write, read and delete, from any origin
const access = {
  authorize: DurableStreamsHttp.allowEveryone,
  allowedOrigins: ["*"],
  longPollTimeout: `${Number(process.env.LONG_POLL_MS ?? 30_000)} millis`
} as const

const Routes = Layer.merge(DurableStreamsHttp.routes(access), DurableStreamsHttp.runRoutes(access))

const Server = ResumableStreamHttp.endOnShutdown(
  HttpRouter.serve(Routes, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" }))
  )
)

const Redis: Layer.Layer<RedisClient.RedisClient, unknown> = cluster
  ? RedisServer.layerClusterClient().pipe(Layer.provide(RedisServer.layerCluster()))
  : RedisServer.layerClient().pipe(Layer.provide(RedisServer.layer({ url: process.env.REDIS_URL })))

const Capabilities = Layer.merge(
  DurableStreams.layer(),
  ResumableStream.layer({ streams: [Answer], unsignedTokens: true, keyPrefix: "example:runs:" })
)

const Live = Server.pipe(Layer.provideMerge(Capabilities), Layer.provide(Redis))

const program = Effect.gen(function* () {
  yield* Console.log(`Durable Streams on Redis${cluster ? " Cluster" : ""}: http://127.0.0.1:${port}/v1/stream/`)
  const runs = yield* ResumableStream.ResumableStream
  const run = yield* runs.start(Answer, { question: "what is a durable stream?" })
  yield* Console.log(`a ResumableStream run, as a durable stream: http://127.0.0.1:${port}/v1/runs/${run.token}`)
  return yield* Effect.never
})

NodeRuntime.runMain(program.pipe(Effect.provide(Live), Effect.provideService(References.MinimumLogLevel, "Error")))
