/**
 * The chat example's answering stream: a model that runs offline (the AI SDK's mock model, streaming a fixed answer
 * word by word), run through the AI SDK's `streamText` and piped into a resumable run as UI message chunks.
 */
import { Effect, Schema } from "effect"
import { streamText } from "ai"
import { MockLanguageModelV4, simulateReadableStream } from "ai/test"
import * as ResumableChat from "../../src/ResumableChat.js"
import * as ResumableStream from "../../src/ResumableStream.js"

/** What the model answers to `prompt`: a fixed text, so a test knows the exact answer. */
export const answerFor = (prompt: string): string =>
  `You asked: "${prompt}". This answer is streamed word by word by a runner in the background and kept in Redis, ` +
  "so a reload, a lost connection or another server instance picks it up where it is, and nothing is lost or repeated."

/** A model that streams `text` word by word, `delayMs` apart. */
const mockModel = (text: string, delayMs: number) =>
  new MockLanguageModelV4({
    doStream: async () => ({
      stream: simulateReadableStream({
        initialDelayInMs: delayMs,
        chunkDelayInMs: delayMs,
        chunks: [
          { type: "text-start" as const, id: "t" },
          ...text.split(/(?<= )/).map((word) => ({ type: "text-delta" as const, id: "t", delta: word })),
          { type: "text-end" as const, id: "t" },
          {
            type: "finish" as const,
            finishReason: { unified: "stop" as const, raw: undefined },
            usage: {
              inputTokens: { total: 10, noCache: 10, cacheRead: undefined, cacheWrite: undefined },
              outputTokens: { total: 40, text: 40, reasoning: undefined }
            }
          }
        ]
      })
    })
  })

/** The last user message's text of a chat request's messages (UI messages: `parts` of `{ type: "text", text }`). */
export const lastUserText = (messages: ReadonlyArray<unknown>): string => {
  const last = [...messages].reverse().find((message) => (message as { role?: string }).role === "user") as
    { parts?: ReadonlyArray<{ type: string; text?: string }> } | undefined
  return (last?.parts ?? [])
    .filter((part) => part.type === "text")
    .map((part) => part.text ?? "")
    .join("")
}

/** The chat stream: input the prompt, chunks the AI SDK's UI message chunks. */
export const makeChat = (options: { readonly wordDelayMs: number }) =>
  ResumableStream.define({
    name: "chat",
    input: Schema.Struct({ prompt: Schema.String.check(Schema.isMaxLength(2_000)) }),
    chunk: ResumableChat.UIMessageChunk,
    error: ResumableChat.UIMessageStreamError,
    run: ({ prompt }, writer) =>
      Effect.suspend(() => {
        const result = streamText({ model: mockModel(answerFor(prompt), options.wordDelayMs), prompt })
        return ResumableChat.appendUIMessageStream(result.toUIMessageStream(), writer)
      })
  })

/** The routes' input hook: the stream's input from the AI SDK's request (its last user message). */
export const inputOf = (request: ResumableChat.ChatRequest) =>
  Effect.succeed({ prompt: lastUserText(request.messages) })
