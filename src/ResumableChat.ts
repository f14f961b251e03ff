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
 * - Every route asks `authorize` (required: a hook, or `allowEveryone` by name) with the chat id and the action, and,
 *   with `owner`, checks that the chat is the requester's; every request passes the guard of
 *   `ResumableStreamHttp.SecurityOptions` (`Host`, `Origin`, JSON bodies). See the README's "Securing the HTTP routes".
 * - `appendUIMessageStream` pipes a UI message stream (what `streamText(…).toUIMessageStream()` returns) into a run's
 *   writer: the runner of a chat stream is usually just that.
 *
 * Nothing here depends on the `ai` package: chunks are checked structurally (an object with a string `type`).
 *
 * @since 0.1.0
 */
import { Duration, Effect, Layer, Option, Result, Schema, Stream } from "effect"
import { HttpRouter, type HttpServerRequest, HttpServerResponse } from "effect/http"
import * as Guard from "./internal/http/guard.js"
import { badRequest, jsonBody, refusal, under } from "./internal/http/request.js"
import * as Sse from "./internal/http/sse.js"
import { issueOf } from "./internal/issue.js"
import * as RedisClient from "./RedisClient.js"
import * as RedisScript from "./RedisScript.js"
import * as ResumableStream from "./ResumableStream.js"
import type { ResumableStreamError } from "./ResumableStream.js"
import * as ResumableStreamHttp from "./ResumableStreamHttp.js"
import { encodeEntries, type SseEncoding } from "./ResumableStreamHttp.js"

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
  failure: (error) => {
    const { message } = ResumableStreamHttp.errorBody(error)
    return (
      (error.reason._tag === "Cancelled"
        ? data({ type: "abort", reason: message })
        : data({ type: "error", errorText: message })) + done
    )
  }
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
 * What a request to the chat routes asks to do with its chat: start an answer, resume (replay) the running one, or
 * stop it.
 *
 * @since 0.1.0
 */
export type ChatAction = "start" | "resume" | "stop"

/**
 * Decides whether a request may do `action` on chat `chatId`: succeeds to let it, fails `ChatRefused` (its status and
 * message are the response) to refuse it. It sees the request (its session, its user) and the chat id: it is where a
 * chat is bound to its owner (or give `owner`, and the routes keep that binding in Redis).
 *
 * @since 0.1.0
 */
export type Authorize = (
  http: HttpServerRequest.HttpServerRequest,
  chatId: string,
  action: ChatAction
) => Effect.Effect<void, ChatRefused>

/**
 * The explicit choice to let every request that passes the `Host`/`Origin` checks start, replay and stop the answer
 * of any chat whose id it knows: for a server that only trusted clients reach.
 *
 * @since 0.1.0
 */
export const allowEveryone: Authorize = () => Effect.void

/**
 * Options of {@link routes}.
 *
 * @since 0.1.0
 */
export interface RoutesOptions<I> extends ResumableStreamHttp.SecurityOptions {
  /**
   * Whether a request may touch a chat: a hook (every route asks), or {@link allowEveryone}. Required: the routes
   * refuse to be built without an access decision.
   */
  readonly authorize: Authorize
  /**
   * Who sends a request (a user id from its session): when given, a chat belongs to whoever first started an answer
   * in it (kept in Redis for `ownerTtl`, renewed by each start), and another requester's start, replay or stop of it
   * gets 403. Asked after `authorize`.
   */
  readonly owner?: ((http: HttpServerRequest.HttpServerRequest) => Effect.Effect<string, ChatRefused>) | undefined
  /** How long a chat's owner is kept after its last start. Default 7 days. */
  readonly ownerTtl?: Duration.Input | undefined
  /** Prefix of the keys that keep chats' owners. Default `resumable-chat:owner:`. */
  readonly ownerKeyPrefix?: string | undefined
  /** The chat API's path (`useChat`'s `api`). Default `/api/chat`. */
  readonly path?: string | undefined
  /** The stream that answers: its chunks are UI message chunks. */
  readonly stream: ResumableStream.Definition<I, UIMessageChunk, any, any>
  /** The stream's input for a request (the messages to answer, a model choice from the body…). */
  readonly input: (request: ChatRequest, http: HttpServerRequest.HttpServerRequest) => Effect.Effect<I, ChatRefused>
  /** How often a quiet answer sends a keep-alive comment. Default 15 seconds. */
  readonly keepAlive?: Duration.Input | undefined
  /** The largest request body accepted; a larger one gets 413. Default 1 MiB. */
  readonly maxBodyBytes?: number | undefined
  /** How long a request body may take to arrive; a slower one gets 408. Default 10 seconds. */
  readonly bodyTimeout?: Duration.Input | undefined
  /** Answers streamed at once, at most; one more gets 503 with `Retry-After`. Default 1,000. */
  readonly maxOpenStreams?: number | undefined
  /** How long an answer may wait for a client that stopped reading before it is disconnected. Default 30 seconds. */
  readonly stallTimeout?: Duration.Input | undefined
  /** The most an answer's response holds for a client that does not keep up (bytes of chunks). Default 64 KiB. */
  readonly maxBufferedBytes?: number | undefined
}

/** The longest chat id accepted: longer ones get 400 (an id becomes part of Redis keys). */
const maxChatIdLength = 200

const refused = (error: ChatRefused) => refusal(error.status, "ChatRefused", error.message)

/**
 * Records `ARGV[1]` as the owner of a chat (KEYS[1]) unless another owner is recorded, renewing it for `ARGV[2]` ms.
 * Reply: 1 when the requester owns the chat (now), 0 when another does.
 */
const claimOwner = RedisScript.make<[key: string], [owner: string, ttlMs: number], number>()(
  "ResumableChat.claimOwner",
  `
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`
)

/**
 * The chat routes, as a layer to merge into an `HttpRouter` (see the module header). Needs the `ResumableStream`
 * service, with `options.stream` among its streams, and the `RedisClient` (for owners).
 *
 * @since 0.1.0
 */
export const routes = <I>(
  options: RoutesOptions<I>
): Layer.Layer<never, never, HttpRouter.HttpRouter | ResumableStream.ResumableStream | RedisClient.RedisClient> => {
  Guard.requireAccessDecision("ResumableChat", options.authorize, "ResumableChat.allowEveryone")
  return Layer.unwrap(
    Effect.gen(function* () {
      const streams = yield* ResumableStream.ResumableStream
      const redis = yield* RedisClient.RedisClient
      const base = options.path ?? "/api/chat"
      const limits = {
        maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
        bodyTimeout: Duration.fromInputUnsafe(options.bodyTimeout ?? "10 seconds")
      }
      const guard = Guard.make(options)
      const bufferBytes = options.maxBufferedBytes ?? 64 * 1024
      const ownerTtlMs = Duration.toMillis(Duration.fromInputUnsafe(options.ownerTtl ?? "7 days"))
      const ownerKey = (chatId: string) => `${options.ownerKeyPrefix ?? "resumable-chat:owner:"}${chatId}`
      const sse = yield* Sse.make({
        keepAlive: Duration.fromInputUnsafe(options.keepAlive ?? "15 seconds"),
        retryMs: 1000,
        maxOpen: options.maxOpenStreams ?? 1000,
        stallTimeout: Duration.fromInputUnsafe(options.stallTimeout ?? "30 seconds")
      })
      const answer = (
        http: HttpServerRequest.HttpServerRequest,
        entries: Stream.Stream<ResumableStream.Entry<UIMessageChunk>, ResumableStreamError>
      ) => sse.respond(http, encodeEntries(uiMessageStream)(entries), uiMessageStream.headers)

      const notOwner = new ChatRefused({ status: 403, message: "this chat belongs to someone else" })
      /** Whether the requester may act on the chat: `authorize`, then (with `owner`) the chat's recorded owner. */
      const allowed = (http: HttpServerRequest.HttpServerRequest, chatId: string, action: ChatAction) =>
        Effect.gen(function* () {
          if (chatId.length === 0 || chatId.length > maxChatIdLength) {
            return yield* new ChatRefused({ status: 400, message: `a chat id has 1 to ${maxChatIdLength} characters` })
          }
          yield* options.authorize(http, chatId, action)
          if (options.owner === undefined) return
          const requester = yield* options.owner(http)
          const owns = yield* (
            action === "start"
              ? Effect.map(redis.eval(claimOwner, [ownerKey(chatId)], [requester, ownerTtlMs]), (won) => won === 1)
              : Effect.map(
                  redis.send<string | null>("GET", ownerKey(chatId)),
                  (current) => current === null || current === requester
                )
          ).pipe(Effect.mapError(() => new ChatRefused({ status: 503, message: "try again shortly" })))
          if (!owns) return yield* notOwner
        })

      /** Answers `effect`'s refusals and errors with their status (what the client may not read of them logged). */
      const answered = <R>(
        http: HttpServerRequest.HttpServerRequest,
        effect: Effect.Effect<HttpServerResponse.HttpServerResponse, ChatRefused | ResumableStreamError, R>
      ) =>
        guard.check(
          http,
          effect.pipe(
            Effect.catchTag("ChatRefused", (error) => Effect.succeed(refused(error))),
            Effect.catchTag("ResumableStreamError", (error) => ResumableStreamHttp.refuse(error))
          )
        )

      const post = HttpRouter.add("POST", under(base, "/"), (http) =>
        answered(
          http,
          Effect.gen(function* () {
            const body = yield* jsonBody(http, limits, "a chat request as JSON")
            if (Result.isFailure(body)) return body.failure
            const request = Schema.decodeUnknownExit(ChatRequest)(body.success)
            if (request._tag === "Failure") return badRequest(`not a chat request: ${issueOf(request.cause)}`)
            yield* allowed(http, request.value.id, "start")
            if (sse.full()) return sse.busy
            const input = yield* options.input(request.value, http)
            const started = yield* streams.start(options.stream, input, { key: request.value.id, bufferBytes })
            return answer(http, started.stream)
          })
        )
      )

      /** A route of one chat: `:chatId`, allowed `action`. */
      const ofChat = (
        method: "GET" | "POST",
        suffix: `/${string}`,
        action: ChatAction,
        handle: (
          chatId: string,
          http: HttpServerRequest.HttpServerRequest
        ) => Effect.Effect<HttpServerResponse.HttpServerResponse, ChatRefused | ResumableStreamError>
      ) =>
        HttpRouter.add(method, under(base, `/:chatId${suffix}`), (http) =>
          answered(
            http,
            Effect.gen(function* () {
              const chatId = (yield* HttpRouter.params).chatId ?? ""
              yield* allowed(http, chatId, action)
              return yield* handle(chatId, http)
            })
          )
        )

      // the running answer, replayed from the start (the AI SDK's resume is a replay); 204 when none runs
      const resume = ofChat("GET", "/stream", "resume", (chatId, http) =>
        Effect.map(streams.active(options.stream, chatId), (active) =>
          Option.match(active, {
            onNone: () => HttpServerResponse.empty({ status: 204 }),
            onSome: (run) =>
              sse.full() ? sse.busy : answer(http, streams.resume(options.stream, run.token, { bufferBytes }))
          })
        )
      )

      // cancels the running answer wherever it runs: 200 with the status it ended with (`none` when none ran); a
      // POST with `content-type: application/json` (the guard's rule: no cross-site form or no-cors fetch can)
      const stop = ofChat("POST", "/stop", "stop", (chatId) =>
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

      return Layer.mergeAll(post, resume, stop, guard.preflight(base))
    })
  )
}
