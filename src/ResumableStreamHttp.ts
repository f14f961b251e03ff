/**
 * HTTP endpoints for resumable streams, as Server-Sent Events, built on effect's own HTTP router.
 *
 * - `POST {path}/:name` with the JSON input starts a run and answers with SSE. The first event (`start`) carries
 *   `{ token, runId }`; then one `chunk` event per chunk (data: the chunk's JSON, `id`: its entry id); then `end`, or
 *   `failure` with `{ reason, message, error? }`. Closing the response does not stop the run.
 * - `GET {path}/:name/resume?token=…[&after=<entry id>]` resumes as SSE. A `Last-Event-ID` header (what a browser
 *   `EventSource` sends when it reconnects) wins over `after`, so a reconnecting EventSource continues exactly where
 *   it stopped.
 * - `DELETE {path}/:name?token=…[&reason=…]` cancels the run: 200 with `{ status }`, the run's final status
 *   (`cancelled`, or how it had already ended: cancelling is idempotent).
 *
 * Every request passes a guard first (its `Host` among `allowedHosts`, its `Origin` the page's own or allowed, a
 * `POST` only as JSON), then `authorize` (required: a hook, or {@link allowEveryone} by name). A refusal's or a
 * failure's message is one a client may read: Redis addresses and driver text go to the log.
 *
 * A token or input that is refused before streaming gets an HTTP status and a JSON `{ reason, message }` body
 * (400 bad input, 401 bad token, 404 unknown stream, 410 expired); a failure found while streaming (the run failed,
 * was cancelled, lost its producer, or its data expired) is the `failure` event. Clients should close their
 * EventSource on `end` and `failure`; without that, the browser reconnects and gets the same ending again.
 * While a run is quiet, a comment line keeps proxies from closing the connection. When the routes shut down (the
 * server's layer closes: a deploy), open SSE responses end at once; clients reconnect, to another instance, from
 * the last event id they saw.
 *
 * The events' format is an {@link SseEncoding}: this module's own (`streamEvents`, above) by default; the AI SDK's
 * UI message stream protocol is `ResumableChat.uiMessageStream`.
 *
 * @since 0.1.0
 */

import { Duration, Effect, Layer, Result, Stream } from "effect"
import { HttpRouter, type HttpServerRequest, HttpServerResponse } from "effect/http"
import { ResumableStream, type ResumableStreamError } from "./ResumableStream.js"
import * as Guard from "./internal/http/guard.js"
import { badRequest, jsonBody, refusal, searchParam, under } from "./internal/http/request.js"
import * as Sse from "./internal/http/sse.js"
import { isEntryId } from "./internal/entryIds.js"

/**
 * How a run is written as SSE: the events before its chunks (for a run just started), one per chunk, the end, a
 * failure; and the response's extra headers.
 *
 * @since 0.1.0
 */
export interface SseEncoding {
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** Text sent first on a start (not on a resume); none when absent. */
  readonly started?: ((run: { readonly token: string; readonly runId: string }) => string) | undefined
  readonly chunk: (entry: { readonly id: string; readonly chunk: unknown }) => string
  readonly end: string
  readonly failure: (error: ResumableStreamError) => string
}

/**
 * Who may reach a route set from a browser, checked before anything else on every request (see the README's
 * "Securing the HTTP routes"): the `Host` it was sent to (a DNS-rebinding page names its own), and the `Origin` of a
 * browser's request.
 *
 * @since 0.1.0
 */
export interface SecurityOptions {
  /**
   * The host names this server answers for (the `Host` header without its port): its public names behind a proxy. A
   * request for another host gets 403. Default: `localhost`, `127.0.0.1` and `[::1]`.
   */
  readonly allowedHosts?: ReadonlyArray<string> | undefined
  /**
   * Origins (`https://app.example.com`) other than the page's own that may call the routes from a browser: their CORS
   * preflights are answered and their responses carry CORS headers. Any other cross-site request gets 403. Default
   * none.
   */
  readonly allowedOrigins?: ReadonlyArray<string> | undefined
}

/**
 * What a request to the stream routes asks to do: start a run of `stream`, or resume or cancel run `runId` (its token
 * checked already).
 *
 * @since 0.1.0
 */
export type StreamAccess =
  | { readonly action: "start"; readonly stream: string }
  | { readonly action: "resume" | "cancel"; readonly stream: string; readonly runId: string }

/**
 * Decides whether a request may do what it asks: `true` lets it, `false` refuses it with 403. Called for every
 * request, after the `Host`/`Origin` checks and, for a resume or a cancel, after its token was checked.
 *
 * @since 0.1.0
 */
export type Authorize = (request: HttpServerRequest.HttpServerRequest, access: StreamAccess) => Effect.Effect<boolean>

/**
 * The explicit choice to let every request that passes the `Host`/`Origin` checks start, resume and cancel runs of
 * every stream of the routes: for a server that only trusted clients reach. A resume or a cancel still needs the
 * run's token.
 *
 * @since 0.1.0
 */
export const allowEveryone: Authorize = () => Effect.succeed(true)

/**
 * Options of {@link routes}.
 *
 * @since 0.1.0
 */
export interface Options extends SecurityOptions {
  /**
   * Who may start, resume and cancel runs: a hook, or {@link allowEveryone}. Required: the routes refuse to be built
   * without an access decision.
   */
  readonly authorize: Authorize
  /** Path under which the routes live. Default `/streams`. */
  readonly path?: string | undefined
  /** How often a quiet SSE response sends a keep-alive comment. Default 15 seconds. */
  readonly keepAlive?: Duration.Input | undefined
  /** The `retry:` delay suggested to EventSource clients. Default 1 second. */
  readonly retry?: Duration.Input | undefined
  /** The largest request body (a stream's input) accepted; a larger one gets 413. Default 1 MiB. */
  readonly maxBodyBytes?: number | undefined
  /** How long a request body may take to arrive; a slower one gets 408. Default 10 seconds. */
  readonly bodyTimeout?: Duration.Input | undefined
  /**
   * SSE responses of these routes open at once, at most; one more gets 503 with `Retry-After`. Default 1,000.
   */
  readonly maxOpenStreams?: number | undefined
  /**
   * How long an SSE response may wait for its client to take what was sent (a client that stopped reading); it is
   * then disconnected, and the client reconnects from its last event id. Default 30 seconds.
   */
  readonly stallTimeout?: Duration.Input | undefined
  /**
   * The most an SSE response holds for a client that does not keep up, in bytes of chunks (its catch-up page, or the
   * chunks waiting for it); past that it reads from Redis where the client stopped. Default 64 KiB.
   */
  readonly maxBufferedBytes?: number | undefined
  /** The events' format. Default {@link streamEvents}. */
  readonly encoding?: SseEncoding | undefined
}

const statusOf = (error: ResumableStreamError): number => {
  switch (error.reason._tag) {
    case "InvalidToken":
      return 401
    case "NotFound":
      return 404
    case "Expired":
      return 410
    case "InvalidInput":
    case "InvalidOffset":
    case "ChunkTooLarge":
    case "Decode":
      return 400
    case "Redis":
      return 503
    default:
      return 409
  }
}

/**
 * What a client may read of an error: its own message, except where that would tell what only the server should know
 * (Redis addresses and driver text, a stored chunk's contents, another run's id); those go to the log.
 */
const publicMessage = (error: ResumableStreamError): string => {
  switch (error.reason._tag) {
    case "Redis":
      return "the server's storage is unavailable; try again shortly"
    case "AlreadyRunning":
      return "a run is already running for this key"
    case "Decode":
      return "a stored chunk could not be read"
    default:
      return error.message
  }
}

/** Logs what the client was not told of an error (see `publicMessage`). */
const logWithheld = (error: ResumableStreamError): Effect.Effect<void> =>
  publicMessage(error) === error.message
    ? Effect.void
    : Effect.logWarning(`ResumableStreamHttp: ${error.reason._tag}: ${error.message}`)

/**
 * The body of a refusal or a `failure` event: `{ reason, message, error? }`, the message one a client may read.
 *
 * @since 0.1.0
 */
export const errorBody = (error: ResumableStreamError) => ({
  reason: error.reason._tag,
  message: publicMessage(error),
  ...(error.reason._tag === "Failed" && error.reason.error !== undefined ? { error: error.reason.error } : {})
})

/**
 * The response refusing a request for `error`: its status (400 bad input, 401 bad token, 404 unknown, 409 conflict,
 * 410 expired, 503 Redis) and {@link errorBody}.
 *
 * @since 0.1.0
 */
export const errorResponse = (error: ResumableStreamError) =>
  HttpServerResponse.jsonUnsafe(errorBody(error), {
    status: statusOf(error),
    headers: error.reason._tag === "Redis" ? { "retry-after": "1" } : {}
  })

/**
 * `errorResponse`, after logging what the client is not told (for routes built on these, such as the chat routes).
 *
 * @since 0.1.0
 */
export const refuse = (error: ResumableStreamError) => Effect.as(logWithheld(error), errorResponse(error))

const event = (name: string, data: unknown, id?: string): string => Sse.event(name, JSON.stringify(data), id)

/**
 * This module's own events: `start` (`{ token, runId }`), `chunk` (the chunk's JSON, `id`: its entry id), `end`
 * (`{}`), `failure` (`{ reason, message, error? }`).
 *
 * @since 0.1.0
 */
export const streamEvents: SseEncoding = {
  started: (run) => event("start", { token: run.token, runId: run.runId }),
  chunk: (entry) => event("chunk", entry.chunk, entry.id),
  end: event("end", {}),
  failure: (error) => event("failure", errorBody(error))
}

/**
 * A run's entries as the SSE text of `encoding`: one event per chunk, then the end, or the failure that ended it
 * (what the client may not read of it logged).
 *
 * @since 0.1.0
 */
export const encodeEntries =
  (encoding: SseEncoding) =>
  (
    entries: Stream.Stream<{ readonly id: string; readonly chunk: unknown }, ResumableStreamError>
  ): Stream.Stream<string> =>
    entries.pipe(
      Stream.map(encoding.chunk),
      Stream.concat(Stream.make(encoding.end)),
      Stream.catch((error: ResumableStreamError) =>
        Stream.fromEffect(Effect.as(logWithheld(error), encoding.failure(error)))
      )
    )

/**
 * Wraps a server layer (what `HttpRouter.serve(…)` returns) so that its SSE responses end as soon as it starts
 * shutting down, before the HTTP server waits for open responses (its graceful shutdown, 20 s by default with
 * `NodeHttpServer`): clients reconnect, to another instance, from the last event id they saw. Without it, the
 * responses end when the routes' layer closes, after that wait.
 *
 * @since 0.1.0
 */
export const endOnShutdown = <A, E, R>(server: Layer.Layer<A, E, R>): Layer.Layer<A, E, Exclude<R, Sse.SseShutdown>> =>
  Sse.shutdownLayers.trigger.pipe(Layer.provideMerge(server), Layer.provideMerge(Sse.shutdownLayers.signal))

/**
 * The routes, as a layer to merge into an `HttpRouter` (serve it with `HttpRouter.serve`). Needs the
 * `ResumableStream` service.
 *
 * @since 0.1.0
 */
export const routes = (options: Options): Layer.Layer<never, never, HttpRouter.HttpRouter | ResumableStream> => {
  Guard.requireAccessDecision("ResumableStreamHttp", options.authorize, "ResumableStreamHttp.allowEveryone")
  return Layer.unwrap(
    Effect.gen(function* () {
      const streams = yield* ResumableStream
      const base = options.path ?? "/streams"
      const authorize = options.authorize
      const guard = Guard.make(options)
      const limits = {
        maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
        bodyTimeout: Duration.fromInputUnsafe(options.bodyTimeout ?? "10 seconds")
      }
      const encoding = options.encoding ?? streamEvents
      const bufferBytes = options.maxBufferedBytes ?? 64 * 1024
      const sse = yield* Sse.make({
        keepAlive: Duration.fromInputUnsafe(options.keepAlive ?? "15 seconds"),
        retryMs: Duration.toMillis(Duration.fromInputUnsafe(options.retry ?? "1 second")),
        maxOpen: options.maxOpenStreams ?? 1000,
        stallTimeout: Duration.fromInputUnsafe(options.stallTimeout ?? "30 seconds")
      })
      const chunkEvents = encodeEntries(encoding)

      /** A route: guarded, authorized for `access`, its errors answered with their status. */
      const add = (
        method: "GET" | "POST" | "DELETE",
        path: `/${string}`,
        handle: (
          request: HttpServerRequest.HttpServerRequest,
          name: string
        ) => Effect.Effect<HttpServerResponse.HttpServerResponse, ResumableStreamError>
      ) =>
        HttpRouter.add(method, under(base, path), (request) =>
          guard.check(
            request,
            Effect.flatMap(HttpRouter.params, ({ name }) => handle(request, name ?? "")).pipe(Effect.catch(refuse))
          )
        )

      const authorized = (
        request: HttpServerRequest.HttpServerRequest,
        access: StreamAccess,
        handle: Effect.Effect<HttpServerResponse.HttpServerResponse, ResumableStreamError>
      ) => Effect.flatMap(authorize(request, access), (allowed) => (allowed ? handle : Effect.succeed(forbidden)))

      const start = add("POST", "/:name", (request, name) =>
        authorized(
          request,
          { action: "start", stream: name },
          Effect.gen(function* () {
            if (sse.full()) return sse.busy
            const input = yield* jsonBody(request, limits, "the stream's input as JSON")
            if (Result.isFailure(input)) return input.failure
            const started = yield* streams.startEncoded(name, input.success, { bufferBytes })
            const first = encoding.started?.({ token: started.token, runId: started.runId })
            return sse.respond(
              request,
              Stream.concat(first === undefined ? Stream.empty : Stream.make(first), chunkEvents(started.stream)),
              encoding.headers
            )
          })
        )
      )

      /** A route taking the `token` query parameter, which must belong to the `:name` stream (401 otherwise). */
      const withToken = (
        method: "GET" | "DELETE",
        path: `/${string}`,
        action: "resume" | "cancel",
        handle: (
          request: HttpServerRequest.HttpServerRequest,
          token: string
        ) => Effect.Effect<HttpServerResponse.HttpServerResponse, ResumableStreamError>
      ) =>
        add(method, path, (request, name) => {
          const token = searchParam(request, "token")
          if (token === undefined) return Effect.succeed(badRequest("the token query parameter is missing"))
          return Effect.flatMap(streams.checkToken(token, name), ({ runId }) =>
            authorized(request, { action, stream: name, runId }, handle(request, token))
          )
        })

      const resume = withToken("GET", "/:name/resume", "resume", (request, token) => {
        const after = request.headers["last-event-id"] ?? searchParam(request, "after")
        if (after !== undefined && !isEntryId(after)) {
          return Effect.succeed(badRequest("after / Last-Event-ID must be an entry id"))
        }
        if (sse.full()) return Effect.succeed(sse.busy)
        return Effect.succeed(
          sse.respond(request, chunkEvents(streams.resumeEncoded(token, { after, bufferBytes })), encoding.headers)
        )
      })

      const cancel = withToken("DELETE", "/:name", "cancel", (request, token) => {
        const reason = searchParam(request, "reason")
        if (reason !== undefined && reason.length > maxReasonLength) {
          return Effect.succeed(badRequest(`a reason has at most ${maxReasonLength} characters`))
        }
        return Effect.map(streams.cancel(token, reason), (status) => HttpServerResponse.jsonUnsafe({ status }))
      })

      return Layer.mergeAll(start, resume, cancel, guard.preflight(base))
    })
  )
}

/** The longest cancel reason a request may give. */
const maxReasonLength = 200

const forbidden = refusal(403, "Forbidden", "not authorized")
