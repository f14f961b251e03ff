/**
 * What the chat suites share: the example's answering stream (a mock model, fast), its options, the chat routes served
 * by a real HTTP server on a free port, and the AI SDK client's view of a chat.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { readUIMessageStream, type UIMessage, type UIMessageChunk } from "ai"
import { Layer } from "effect"
import { HttpRouter } from "effect/http"
import { createServer } from "node:http"
import { inputOf, makeChat } from "../../examples/chat/answer.js"
import * as ResumableChat from "../../src/ResumableChat.js"
import * as ResumableStream from "../../src/ResumableStream.js"
import * as ResumableStreamHttp from "../../src/ResumableStreamHttp.js"

/** The answering stream: a word every 15 ms (an answer takes about half a second). */
export const Chat = makeChat({ wordDelayMs: 15 })

/** Stream options under `keyPrefix`, fast heartbeats, plus `overrides`. */
export const chatOptions = (
  keyPrefix: string,
  overrides: Partial<ResumableStream.Options<readonly [typeof Chat]>> = {}
): ResumableStream.Options<readonly [typeof Chat]> => ({
  streams: [Chat],
  keyPrefix,
  unsignedTokens: true,
  heartbeatInterval: "100 millis",
  producerTimeout: "1 second",
  shutdownGrace: "200 millis",
  ...overrides
})

/**
 * The chat routes at `/api/chat` on a real HTTP server (127.0.0.1, a free port), on the `RedisClient` in context;
 * every request allowed unless `routes` says otherwise.
 */
export const chatServer = (
  options: ResumableStream.Options<readonly [typeof Chat]>,
  routes: Partial<ResumableChat.RoutesOptions<{ readonly prompt: string }>> = {}
) =>
  HttpRouter.serve(
    ResumableChat.routes({ stream: Chat, input: inputOf, authorize: ResumableChat.allowEveryone, ...routes }),
    {
      disableLogger: true,
      disableListenLog: true
    }
  ).pipe(
    ResumableStreamHttp.endOnShutdown,
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
    Layer.provideMerge(ResumableStream.layer(options))
  )

/** A user message as `useChat` sends it. */
export const userMessage = (text: string): UIMessage => ({
  id: `u-${Math.random().toString(36).slice(2)}`,
  role: "user",
  parts: [{ type: "text", text }]
})

/** The text of a UI message. */
export const textOf = (message: UIMessage | undefined): string =>
  (message?.parts ?? []).map((part) => (part.type === "text" ? part.text : "")).join("")

/**
 * Reads a UI message stream as the AI SDK client does: the last message it builds, every chunk type seen, and the
 * texts it went through.
 */
export const readAnswer = async (stream: ReadableStream<UIMessageChunk>) => {
  const types: Array<string> = []
  const texts: Array<string> = []
  let last: UIMessage | undefined
  const observed = stream.pipeThrough(
    new TransformStream<UIMessageChunk, UIMessageChunk>({
      transform: (chunk, controller) => {
        types.push(chunk.type)
        controller.enqueue(chunk)
      }
    })
  )
  for await (const message of readUIMessageStream({ stream: observed })) {
    last = message
    texts.push(textOf(message))
  }
  return { text: textOf(last), types, texts }
}

/** The stop request of a chat, as the example's client sends it (JSON: the routes refuse any other POST). */
export const stopRequest: RequestInit = { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }
