/**
 * Resumable AI chat: the Vercel AI SDK's `useChat` (with `resume: true`) served from resumable streams. Answers run in
 * the background and keep their chunks in Redis, so a reload, a dropped network, another server instance or a
 * producer that died mid-answer all resume the same answer, and a finished one can still be replayed.
 *
 * - `routes` serves the AI SDK's HTTP chat protocol: `POST {path}` starts an answer for the chat in the body (one
 *   running answer per chat id) and streams it; `GET {path}/:chatId/stream` replays the chat's running answer from the
 *   start (204 when none runs: what `DefaultChatTransport.reconnectToStream` expects); `POST {path}/:chatId/stop`
 *   cancels it. Responses are SSE `data: <UIMessageChunk JSON>` parts ending with `data: [DONE]`, with the header
 *   `x-vercel-ai-ui-message-stream: v1`; a cancelled answer ends with `{"type":"abort"}`, a failed one with
 *   `{"type":"error","errorText":…}`.
 * - `appendUIMessageStream` pipes a UI message stream (what `streamText(…).toUIMessageStream()` returns) into a run's
 *   writer: the runner of a chat stream is usually just that.
 *
 * Nothing here depends on the `ai` package: chunks are checked structurally (an object with a string `type`).
 *
 * @since 0.1.0
 */
import { Duration, Effect, Layer, Option, Result, Schema, Stream } from "effect"
import { HttpRouter, type HttpServerRequest, HttpServerResponse } from "effect/http"
import { badRequest, jsonBody, refusal, under } from "./internal/http/request.js"
import * as Sse from "./internal/http/sse.js"
import { issueOf } from "./internal/issue.js"
import * as ResumableStream from "./ResumableStream.js"
import type { ResumableStreamError } from "./ResumableStream.js"
import { encodeEntries, errorResponse, type SseEncoding } from "./ResumableStreamHttp.js"

/**
 * A chunk of the AI SDK's UI message stream (`text-delta`, `tool-input-available`, `finish`…): an object with a string
 * `type`; its other fields are kept as they are.
 *
 * @since 0.1.0
 */
export const UIMessageChunk = Schema.StructWithRest(Schema.Struct({ type: Schema.String }), [
  Schema.Record(Schema.String, Schema.Unknown)
])

/**
 * A UI message chunk.
 *
 * @since 0.1.0
 */
export type UIMessageChunk = typeof UIMessageChunk.Type

/**
 * The body `useChat`'s `DefaultChatTransport` posts: the chat id, its messages, what triggered the request
 * (`submit-message`, `regenerate-message`) and the message concerned; extra fields of its `body` option are kept.
 *
 * @since 0.1.0
 */
export const ChatRequest = Schema.StructWithRest(
  Schema.Struct({
    id: Schema.String,
    messages: Schema.Array(Schema.Unknown),
    trigger: Schema.optional(Schema.String),
    messageId: Schema.optional(Schema.NullOr(Schema.String))
  }),
  [Schema.Record(Schema.String, Schema.Unknown)]
)

/**
 * A chat request.
 *
 * @since 0.1.0
 */
export type ChatRequest = typeof ChatRequest.Type

/**
 * A request the chat routes refuse (from `authorize` or `input`): the HTTP status and a message for the client.
 *
 * @since 0.1.0
 */
export class ChatRefused extends Schema.TaggedError<ChatRefused>()("ChatRefused", {
  status: Schema.Number,
  message: Schema.String
}) {}

/**
 * Reading a UI message stream failed (the model's stream errored): the run fails with this.
 *
 * @since 0.1.0
 */
export class UIMessageStreamError extends Schema.TaggedError<UIMessageStreamError>()("UIMessageStreamError", {
  message: Schema.String
}) {}

const data = (chunk: unknown, id?: string) => Sse.event(undefined, JSON.stringify(chunk), id)
const done = "data: [DONE]\n\n"

/**
 * The AI SDK's UI message stream protocol as an SSE encoding (for `ResumableStreamHttp.routes` too): each chunk a
 * `data:` part (with its entry id), `[DONE]` at the end, `abort` for a cancelled run, `error` for a failed one.
 *
 * @since 0.1.0
 */
export const uiMessageStream: SseEncoding = {
  headers: { "x-vercel-ai-ui-message-stream": "v1" },
  chunk: (entry) => data(entry.chunk, entry.id),
  end: done,
  failure: (error) =>
    (error.reason._tag === "Cancelled"
      ? data({ type: "abort", reason: error.message })
      : data({ type: "error", errorText: error.message })) + done
}

/**
 * Appends every chunk of a UI message stream to a run's writer, as they come (the chunks read together are appended
 * together). Interrupting it cancels the stream (the model's request).
 *
 * @since 0.1.0
 */
export const appendUIMessageStream = (
  stream: ReadableStream<unknown>,
  writer: ResumableStream.Writer<UIMessageChunk>
): Effect.Effect<void, ResumableStreamError | UIMessageStreamError> =>
  Stream.fromReadableStream({
    evaluate: () => stream as ReadableStream<UIMessageChunk>,
    onError: (cause) => new UIMessageStreamError({ message: cause instanceof Error ? cause.message : String(cause) })
  }).pipe(Stream.runForEachArray((chunks) => writer.appendAll(chunks)))

/**
 * Options of {@link routes}.
 *
 * @since 0.1.0
 */
export interface RoutesOptions<I> {
  /** The chat API's path (`useChat`'s `api`). Default `/api/chat`. */
  readonly path?: string | undefined
  /** The stream that answers: its chunks are UI message chunks. */
  readonly stream: ResumableStream.Definition<I, UIMessageChunk, any, any>
  /** The stream's input for a request (the messages to answer, a model choice from the body…). */
  readonly input: (request: ChatRequest, http: HttpServerRequest.HttpServerRequest) => Effect.Effect<I, ChatRefused>
  /** Whether the request may touch chat `chatId` (every route asks). Default: every request may. */
  readonly authorize?:
    ((http: HttpServerRequest.HttpServerRequest, chatId: string) => Effect.Effect<void, ChatRefused>) | undefined
  /** How often a quiet answer sends a keep-alive comment. Default 15 seconds. */
  readonly keepAlive?: Duration.Input | undefined
  /** The largest request body accepted; a larger one gets 413. Default 1 MiB. */
  readonly maxBodyBytes?: number | undefined
}

const refused = (error: ChatRefused) => refusal(error.status, "ChatRefused", error.message)

/**
 * The chat routes, as a layer to merge into an `HttpRouter` (see the module header). Needs the `ResumableStream`
 * service, with `options.stream` among its streams.
 *
 * @since 0.1.0
 */
export const routes = <I>(
  options: RoutesOptions<I>
): Layer.Layer<never, never, HttpRouter.HttpRouter | ResumableStream.ResumableStream> =>
  Layer.unwrap(
    Effect.gen(function* () {
      const streams = yield* ResumableStream.ResumableStream
      const base = options.path ?? "/api/chat"
      const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024
      const authorize = options.authorize ?? (() => Effect.void)
      const sse = yield* Sse.make({
        keepAlive: Duration.fromInputUnsafe(options.keepAlive ?? "15 seconds"),
        retryMs: 1000
      })
      const answer = (entries: Stream.Stream<ResumableStream.Entry<UIMessageChunk>, ResumableStreamError>) =>
        sse(encodeEntries(uiMessageStream)(entries), uiMessageStream.headers)
      /** Answers `effect`'s refusals and errors with their status. */
      const answered = <R>(
        effect: Effect.Effect<HttpServerResponse.HttpServerResponse, ChatRefused | ResumableStreamError, R>
      ) =>
        effect.pipe(
          Effect.catchTag("ChatRefused", (error) => Effect.succeed(refused(error))),
          Effect.catchTag("ResumableStreamError", (error) => Effect.succeed(errorResponse(error)))
        )

      const post = HttpRouter.add("POST", under(base, "/"), (http) =>
        answered(
          Effect.gen(function* () {
            const body = yield* jsonBody(http, maxBodyBytes, "a chat request as JSON")
            if (Result.isFailure(body)) return body.failure
            const request = Schema.decodeUnknownExit(ChatRequest)(body.success)
            if (request._tag === "Failure") return badRequest(`not a chat request: ${issueOf(request.cause)}`)
            yield* authorize(http, request.value.id)
            const input = yield* options.input(request.value, http)
            const started = yield* streams.start(options.stream, input, { key: request.value.id })
            return answer(started.stream)
          })
        )
      )

      /** A route of one chat: `:chatId`, authorized. */
      const ofChat = (
        method: "GET" | "POST",
        suffix: `/${string}`,
        handle: (
          chatId: string
        ) => Effect.Effect<HttpServerResponse.HttpServerResponse, ChatRefused | ResumableStreamError>
      ) =>
        HttpRouter.add(method, under(base, `/:chatId${suffix}`), (http) =>
          answered(
            Effect.gen(function* () {
              const chatId = (yield* HttpRouter.params).chatId ?? ""
              yield* authorize(http, chatId)
              return yield* handle(chatId)
            })
          )
        )

      // the running answer, replayed from the start (the AI SDK's resume is a replay); 204 when none runs
      const resume = ofChat("GET", "/stream", (chatId) =>
        Effect.map(streams.active(options.stream, chatId), (active) =>
          Option.match(active, {
            onNone: () => HttpServerResponse.empty({ status: 204 }),
            onSome: (run) => answer(streams.resume(options.stream, run.token))
          })
        )
      )

      // cancels the running answer wherever it runs: 200 with the status it ended with (`none` when none ran)
      const stop = ofChat("POST", "/stop", (chatId) =>
        Effect.flatMap(streams.active(options.stream, chatId), (active) =>
          Option.match(active, {
            onNone: () => Effect.succeed(HttpServerResponse.jsonUnsafe({ status: "none" })),
            onSome: (run) =>
              Effect.map(streams.cancel(run.token, "stopped by the user"), (status) =>
                HttpServerResponse.jsonUnsafe({ status })
              )
          })
        )
      )

      return Layer.mergeAll(post, resume, stop)
    })
  )
