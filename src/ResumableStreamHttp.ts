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
 * While a run is quiet, a comment line keeps proxies from closing the connection.
 *
 * @since 0.1.0
 */

import { ByteSize, Duration, Effect, Layer, Result, Schedule, Stream } from "effect"
import { Sse } from "effect/encoding"
import { HttpIncomingMessage, HttpRouter, type HttpServerRequest, HttpServerResponse } from "effect/http"
import { ResumableStream, type ResumableStreamError } from "./ResumableStream.js"
import { isEntryId } from "./internal/resumable/wire.js"

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

const errorBody = (error: ResumableStreamError) => ({
  reason: error.reason._tag,
  message: error.message,
  ...(error.reason._tag === "Failed" && error.reason.error !== undefined ? { error: error.reason.error } : {})
})

const errorResponse = (error: ResumableStreamError) =>
  HttpServerResponse.jsonUnsafe(errorBody(error), { status: statusOf(error) })

const badRequest = (message: string) =>
  HttpServerResponse.jsonUnsafe({ reason: "InvalidInput", message }, { status: 400 })

const tooLarge = (limit: number) =>
  HttpServerResponse.jsonUnsafe(
    { reason: "InvalidInput", message: `the body is larger than ${limit} bytes (maxBodyBytes)` },
    { status: 413 }
  )

const event = (name: string, data: unknown, id?: string): string =>
  Sse.encoder.write({ _tag: "Event", event: name, id, data: JSON.stringify(data) })

/** The route path of `suffix` under `base`: `("/x/", "/:name")` → `/x/:name`, `("/", "/:name")` → `/:name`. */
const under = (base: string, suffix: `/${string}`): `/${string}` => {
  const trimmed = base.replace(/^\/+|\/+$/g, "")
  return trimmed === "" ? suffix : `/${trimmed}${suffix}`
}

const searchParam = (request: HttpServerRequest.HttpServerRequest, name: string): string | undefined =>
  new URL(request.url, "http://localhost").searchParams.get(name) ?? undefined

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

      /** SSE response of `body`: a `retry:` hint, the events, keep-alive comments while it is quiet. */
      const sse = (body: Stream.Stream<string>) => {
        const pings = Stream.fromSchedule(Schedule.spaced(keepAlive)).pipe(Stream.map(() => ": keep-alive\n\n"))
        const events = Stream.concat(Stream.make(`retry: ${retryMs}\n\n`), body)
        return HttpServerResponse.stream(
          Stream.merge(events, pings, { haltStrategy: "left" }).pipe(Stream.encodeText),
          {
            contentType: "text/event-stream",
            headers: { "cache-control": "no-cache, no-transform", "x-accel-buffering": "no" }
          }
        )
      }

      /** Chunk events, then `end` or `failure`. */
      const chunkEvents = (
        entries: Stream.Stream<{ readonly id: string; readonly chunk: unknown }, ResumableStreamError>
      ) =>
        entries.pipe(
          Stream.map((entry) => event("chunk", entry.chunk, entry.id)),
          Stream.concat(Stream.make(event("end", {}))),
          Stream.catch((error: ResumableStreamError) => Stream.make(event("failure", errorBody(error))))
        )

      const start = HttpRouter.add("POST", under(base, "/:name"), (request) =>
        Effect.gen(function* () {
          const { name } = yield* HttpRouter.params
          if (Number(request.headers["content-length"] ?? 0) > maxBodyBytes) return tooLarge(maxBodyBytes)
          const input = yield* Effect.result(
            request.json.pipe(Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodyBytes)))
          )
          if (Result.isFailure(input)) {
            return String(input.failure.cause).includes("maxBytes exceeded")
              ? tooLarge(maxBodyBytes)
              : badRequest("the body must be the stream's input as JSON")
          }
          const started = yield* streams.startEncoded(name ?? "", input.success)
          return sse(
            Stream.concat(
              Stream.make(event("start", { token: started.token, runId: started.runId })),
              chunkEvents(started.stream)
            )
          )
        }).pipe(Effect.catch((error) => Effect.succeed(errorResponse(error))))
      )

      /** A route taking the `token` query parameter, which must belong to the `:name` stream. */
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
            if ((yield* streams.nameOf(token)) !== name) return badRequest("the token belongs to another stream")
            return yield* handle(request, token)
          }).pipe(Effect.catch((error) => Effect.succeed(errorResponse(error))))
        )

      const resume = withToken("GET", "/:name/resume", (request, token) => {
        const after = request.headers["last-event-id"] ?? searchParam(request, "after")
        if (after !== undefined && !isEntryId(after)) {
          return Effect.succeed(badRequest("after / Last-Event-ID must be an entry id"))
        }
        return Effect.succeed(sse(chunkEvents(streams.resumeEncoded(token, { after }))))
      })

      const cancel = withToken("DELETE", "/:name", (request, token) =>
        Effect.map(streams.cancel(token, searchParam(request, "reason")), (status) =>
          HttpServerResponse.jsonUnsafe({ status })
        )
      )

      return Layer.mergeAll(start, resume, cancel)
    })
  )
