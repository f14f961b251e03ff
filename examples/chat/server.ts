/**
 * The chat example's server: the page, its client bundled with esbuild at start (served from memory, nothing from a
 * CDN), and the AI SDK chat routes (`ResumableChat.routes` at `/api/chat`) on resumable streams in Redis.
 *
 * Access: the page gives each browser an anonymous identity (a random id in an HttpOnly cookie), standing in for a
 * login; the chat routes refuse requests without one, and bind each chat to the identity that started it (`owner`):
 * another browser that learns a chat's id can neither replay nor stop its answer. Tokens are signed with
 * `STREAM_SECRET`, or a random secret of this process (the chat routes hand no token out).
 */
import { NodeHttpServer } from "@effect/platform-node"
import { build } from "esbuild"
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { HttpRouter, HttpServer, type HttpServerRequest, HttpServerResponse } from "effect/http"
import { randomBytes, randomUUID } from "node:crypto"
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

/** The cookie holding a browser's anonymous identity. */
const identityCookie = "chat-user"

/** The requester's identity, or a 401 refusal (a request that did not come from the page). */
const identity = (http: HttpServerRequest.HttpServerRequest) => {
  const user = http.cookies[identityCookie]
  return user === undefined || user.length === 0
    ? Effect.fail(new ResumableChat.ChatRefused({ status: 401, message: "open the chat page first" }))
    : Effect.succeed(user)
}

/** The page, giving a browser that has none its identity. */
const pageFor = (http: HttpServerRequest.HttpServerRequest) =>
  http.cookies[identityCookie] === undefined
    ? HttpServerResponse.html(page).pipe(
        HttpServerResponse.setCookieUnsafe(identityCookie, randomUUID(), {
          httpOnly: true,
          sameSite: "strict",
          path: "/",
          maxAge: "30 days"
        })
      )
    : HttpServerResponse.html(page)

/** The app as a layer: page, bundle and chat routes on an HTTP server on 127.0.0.1. */
export const layer = (options: ChatAppOptions) => {
  const Chat = makeChat({ wordDelayMs: options.wordDelayMs })
  const assets = Layer.unwrap(
    Effect.map(bundle, (script) =>
      Layer.mergeAll(
        HttpRouter.add("GET", "/", (http) => Effect.succeed(pageFor(http))),
        HttpRouter.add("GET", "/app.js", HttpServerResponse.text(script, { contentType: "text/javascript" }))
      )
    )
  )
  const chatRoutes = ResumableChat.routes({
    stream: Chat,
    input: inputOf,
    authorize: (http) => Effect.asVoid(identity(http)),
    owner: identity,
    ownerKeyPrefix: "chat-example:owner:"
  })
  const secret = Redacted.make(process.env.STREAM_SECRET ?? randomBytes(32).toString("hex"))
  return HttpRouter.serve(Layer.merge(assets, chatRoutes), { disableLogger: true, disableListenLog: true }).pipe(
    ResumableStreamHttp.endOnShutdown,
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: options.port, host: "127.0.0.1" })),
    Layer.provide(ResumableStream.layer({ streams: [Chat], keyPrefix: "chat-example:", secret })),
    Layer.provide(RedisClient.layer({ url: options.redisUrl }))
  )
}

/** Starts the app; its URL and how to stop it. */
export const start = async (options: ChatAppOptions) => {
  const runtime = ManagedRuntime.make(layer(options))
  const url = await runtime.runPromise(HttpServer.addressFormattedWith(Effect.succeed))
  return { url, close: () => runtime.dispose() }
}
