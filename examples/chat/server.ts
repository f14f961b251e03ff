/**
 * The chat example's server: the page, its client bundled with esbuild at start (served from memory, nothing from a
 * CDN), and the AI SDK chat routes (`ResumableChat.routes` at `/api/chat`) on resumable streams in Redis.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { build } from "esbuild"
import { Effect, Layer, ManagedRuntime } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"
import { fileURLToPath } from "node:url"
import * as RedisClient from "../../src/RedisClient.js"
import * as ResumableChat from "../../src/ResumableChat.js"
import * as ResumableStream from "../../src/ResumableStream.js"
import * as ResumableStreamHttp from "../../src/ResumableStreamHttp.js"
import { inputOf, makeChat } from "./answer.js"
import { page } from "./page.js"

/** How to run the app. */
export interface ChatAppOptions {
  readonly port: number
  readonly redisUrl: string
  /** Delay between the model's words. */
  readonly wordDelayMs: number
}

/** The client, bundled for the browser. */
const bundle = Effect.promise(() =>
  build({
    entryPoints: [fileURLToPath(new URL("./client.tsx", import.meta.url))],
    bundle: true,
    write: false,
    format: "esm",
    minify: true,
    jsx: "automatic",
    define: { "process.env.NODE_ENV": '"production"' }
  })
).pipe(Effect.map((result) => result.outputFiles[0]?.text ?? ""))

/** The app as a layer: page, bundle and chat routes on an HTTP server on 127.0.0.1. */
export const layer = (options: ChatAppOptions) => {
  const Chat = makeChat({ wordDelayMs: options.wordDelayMs })
  const assets = Layer.unwrap(
    Effect.map(bundle, (script) =>
      Layer.mergeAll(
        HttpRouter.add("GET", "/", HttpServerResponse.html(page)),
        HttpRouter.add("GET", "/app.js", HttpServerResponse.text(script, { contentType: "text/javascript" }))
      )
    )
  )
  return HttpRouter.serve(Layer.merge(assets, ResumableChat.routes({ stream: Chat, input: inputOf })), {
    disableLogger: true,
    disableListenLog: true
  }).pipe(
    ResumableStreamHttp.endOnShutdown,
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: options.port, host: "127.0.0.1" })),
    Layer.provide(ResumableStream.layer({ streams: [Chat], keyPrefix: "chat-example:", unsignedTokens: true })),
    Layer.provide(RedisClient.layer({ url: options.redisUrl }))
  )
}

/** Starts the app; its URL and how to stop it. */
export const start = async (options: ChatAppOptions) => {
  const runtime = ManagedRuntime.make(layer(options))
  const url = await runtime.runPromise(HttpServer.addressFormattedWith(Effect.succeed))
  return { url, close: () => runtime.dispose() }
}
