/**
 * `npm run example:chat`: a chat page on the AI SDK's real `useChat` (with `resume: true`), answered by a model that
 * runs offline (the AI SDK's mock model, word by word) through resumable streams in Redis.
 *
 * Open http://localhost:3000 (PORT to change) and ask. Reload mid-answer: the answer comes back and goes on. Stop: the
 * answer is cancelled wherever it runs, and the page says it stopped. Reload after the end: the conversation is there
 * (the messages are kept in the browser's localStorage, the chat id in the URL; the server keeps no conversation, see
 * chat/client.tsx). A second server on the same Redis (another PORT) serves the same chats.
 *
 * Redis: REDIS_URL, or a redis-server started for the example when it is unset.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
import * as RedisServer from "../src/testing/RedisServer.js"
import * as ChatApp from "./chat/server.js"

const program = Effect.gen(function* () {
  const redis = yield* RedisServer.RedisServer
  const app = ChatApp.layer({ port: Number(process.env.PORT ?? 3000), redisUrl: redis.url, wordDelayMs: 60 })
  yield* HttpServer.addressFormattedWith((url) => Console.log(`chat on ${url} (Redis ${redis.url})`)).pipe(
    Effect.andThen(Effect.never),
    Effect.provide(app)
  )
})

NodeRuntime.runMain(program.pipe(Effect.provide(Layer.fresh(RedisServer.layer({ url: process.env.REDIS_URL })))))
