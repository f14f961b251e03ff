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
import { badRequest, jsonBody, searchParam, under } from "./internal/http/request.js"
import * as Sse from "./internal/http/sse.js"
import { isEntryId } from "./internal/resumable/wire.js"

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
 * Options of {@link routes}.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Path under which the routes live. Default `/streams`. */
  readonly path?: string | undefined
  /** How often a quiet SSE response sends a keep-alive comment. Default 15 seconds. */
  readonly keepAlive?: Duration.Input | undefined
  /** The `retry:` delay suggested to EventSource clients. Default 1 second. */
  readonly retry?: Duration.Input | undefined
  /** The largest request body (a stream's input) accepted; a larger one gets 413. Default 1 MiB. */
  readonly maxBodyBytes?: number | undefined
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
 * The body of a refusal or a `failure` event: `{ reason, message, error? }`.
 *
 * @since 0.1.0
 */
export const errorBody = (error: ResumableStreamError) => ({
  reason: error.reason._tag,
  message: error.message,
  ...(error.reason._tag === "Failed" && error.reason.error !== undefined ? { error: error.reason.error } : {})
})

/**
 * The response refusing a request for `error`: its status (400 bad input, 401 bad token, 404 unknown, 409 conflict,
 * 410 expired, 503 Redis) and {@link errorBody}.
 *
 * @since 0.1.0
 */
export const errorResponse = (error: ResumableStreamError) =>
  HttpServerResponse.jsonUnsafe(errorBody(error), { status: statusOf(error) })

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
 * A run's entries as the SSE text of `encoding`: one event per chunk, then the end, or the failure that ended it.
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
      Stream.catch((error: ResumableStreamError) => Stream.make(encoding.failure(error)))
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
export const routes = (options: Options = {}): Layer.Layer<never, never, HttpRouter.HttpRouter | ResumableStream> =>
  Layer.unwrap(
    Effect.gen(function* () {
      const streams = yield* ResumableStream
      const base = options.path ?? "/streams"
      const keepAlive = Duration.fromInputUnsafe(options.keepAlive ?? "15 seconds")
      const retryMs = Duration.toMillis(Duration.fromInputUnsafe(options.retry ?? "1 second"))
      const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024

      const encoding = options.encoding ?? streamEvents
      const sse = yield* Sse.make({ keepAlive, retryMs })

      const chunkEvents = encodeEntries(encoding)

      const start = HttpRouter.add("POST", under(base, "/:name"), (request) =>
        Effect.gen(function* () {
          const { name } = yield* HttpRouter.params
          const input = yield* jsonBody(request, maxBodyBytes, "the stream's input as JSON")
          if (Result.isFailure(input)) return input.failure
          const started = yield* streams.startEncoded(name ?? "", input.success)
          const first = encoding.started?.({ token: started.token, runId: started.runId })
          return sse(
            Stream.concat(first === undefined ? Stream.empty : Stream.make(first), chunkEvents(started.stream)),
            encoding.headers
          )
        }).pipe(Effect.catch((error) => Effect.succeed(errorResponse(error))))
      )

      /** A route taking the `token` query parameter, which must belong to the `:name` stream (401 otherwise). */
      const withToken = (
        method: "GET" | "DELETE",
        path: `/${string}`,
        handle: (
          request: HttpServerRequest.HttpServerRequest,
          token: string
        ) => Effect.Effect<HttpServerResponse.HttpServerResponse, ResumableStreamError>
      ) =>
        HttpRouter.add(method, under(base, path), (request) =>
          Effect.gen(function* () {
            const { name } = yield* HttpRouter.params
            const token = searchParam(request, "token")
            if (token === undefined) return badRequest("the token query parameter is missing")
            yield* streams.checkToken(token, name ?? "")
            return yield* handle(request, token)
          }).pipe(Effect.catch((error) => Effect.succeed(errorResponse(error))))
        )

      const resume = withToken("GET", "/:name/resume", (request, token) => {
        const after = request.headers["last-event-id"] ?? searchParam(request, "after")
        if (after !== undefined && !isEntryId(after)) {
          return Effect.succeed(badRequest("after / Last-Event-ID must be an entry id"))
        }
        return Effect.succeed(sse(chunkEvents(streams.resumeEncoded(token, { after })), encoding.headers))
      })

      const cancel = withToken("DELETE", "/:name", (request, token) =>
        Effect.map(streams.cancel(token, searchParam(request, "reason")), (status) =>
          HttpServerResponse.jsonUnsafe({ status })
        )
      )

      return Layer.mergeAll(start, resume, cancel)
    })
  )
