/**
 * The Durable Streams protocol over HTTP (durable-streams/durable-streams, `PROTOCOL.md`), on the `DurableStreams`
 * service: any number of instances behind a load balancer serve the same streams, since everything lives in Redis and
 * every append wakes readers at every instance. Under `path` (default `/v1/stream`), `{path}/{name}` is a stream:
 *
 * - `PUT` creates it (`Content-Type`, `Stream-TTL` or `Stream-Expires-At`, `Stream-Closed`, a fork with
 *   `Stream-Forked-From`, `Stream-Fork-Offset`, `Stream-Fork-Sub-Offset`): 201, or 200 when it exists as asked;
 * - `POST` appends (`Stream-Seq`, `Producer-Id`/`-Epoch`/`-Seq`, `Stream-Closed`): 204, or 200 for a producer's new
 *   data; `HEAD` its metadata; `DELETE` deletes it;
 * - `GET ?offset=` reads (catch-up, with `ETag` and 304), `&live=long-poll` waits up to `longPollTimeout` (204 on
 *   timeout, with `Stream-Cursor`), `&live=sse` streams `data` and `control` events until the stream closes or
 *   `sseReconnectAfter` passes (the client reconnects from the last `streamNextOffset`).
 *
 * Secure by default like the library's other route sets: the `Host`/`Origin` checks (browsers from other origins only
 * when `allowedOrigins` lists them, or `"*"` for a public API), and `authorize` is required. Responses carry
 * `nosniff` and `cross-origin-resource-policy`, `cache-control: no-store` unless `readCacheControl` says otherwise
 * for catch-up reads (behind a CDN). Bodies are bounded (`maxBodyBytes`, 413), open live responses too
 * (`maxOpenStreams`, 503).
 *
 * @since 0.1.0
 */

import { Duration, Effect, Layer, Result } from "effect"
import { HttpRouter, type HttpServerRequest, HttpServerResponse } from "effect/http"
import { DurableStreams, type StreamInfo } from "./DurableStreams.js"
import { DurableStreamsError, ReadOnly } from "./DurableStreamsError.js"
import * as ResumableStream from "./ResumableStream.js"
import type { SecurityOptions } from "./ResumableStreamHttp.js"
import * as Headers from "./internal/durable/headers.js"
import * as Responses from "./internal/durable/responses.js"
import * as Runs from "./internal/durable/runs.js"
import * as Guard from "./internal/http/guard.js"
import { badRequest, bytesBody, refusal, under } from "./internal/http/request.js"
import * as Sse from "./internal/http/sse.js"

/**
 * What a request asks to do with stream `stream`.
 *
 * @since 0.1.0
 */
export interface StreamAccess {
  readonly action: "create" | "append" | "read" | "delete"
  readonly stream: string
}

/**
 * Decides whether a request may do what it asks: `true` lets it, `false` refuses it with 403. Called for every request
 * after the `Host`/`Origin` checks.
 *
 * @since 0.1.0
 */
export type Authorize = (request: HttpServerRequest.HttpServerRequest, access: StreamAccess) => Effect.Effect<boolean>

/**
 * The explicit choice to let every request that passes the `Host`/`Origin` checks create, append to, read and delete
 * every stream: for a server only trusted clients reach.
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
  /** Who may do what: a hook, or {@link allowEveryone}. Required. */
  readonly authorize: Authorize
  /** Path under which streams live. Default `/v1/stream`. */
  readonly path?: string | undefined
  /** How long a long-poll waits for an append before answering 204. Default 30 seconds. */
  readonly longPollTimeout?: Duration.Input | undefined
  /** How long an SSE response stays open before the server ends it (the client reconnects). Default 60 seconds. */
  readonly sseReconnectAfter?: Duration.Input | undefined
  /** The largest request body accepted; a larger one gets 413. Default 8 MiB. */
  readonly maxBodyBytes?: number | undefined
  /** How long a request body may take to arrive; a slower one gets 408. Default 30 seconds. */
  readonly bodyTimeout?: Duration.Input | undefined
  /** Long-poll and SSE responses open at once, at most; one more gets 503 with `Retry-After`. Default 10,000. */
  readonly maxOpenStreams?: number | undefined
  /**
   * `Cache-Control` of catch-up reads (not of `offset=now`, `HEAD` or live responses, always `no-store`/`no-cache`).
   * Default `no-store`; behind a CDN, for streams every reader may see, `public, max-age=60, stale-while-revalidate=300`
   * (the protocol's collapsing).
   */
  readonly readCacheControl?: string | undefined
  /** How often a quiet SSE response sends a keep-alive comment. Default 15 seconds. */
  readonly keepAlive?: Duration.Input | undefined
}

const exposeHeaders =
  "stream-next-offset, stream-cursor, stream-up-to-date, stream-closed, stream-ttl, stream-expires-at, " +
  "stream-sse-data-encoding, producer-epoch, producer-seq, producer-expected-seq, producer-received-seq, etag, " +
  "location, content-type"
const allowHeaders =
  "content-type, authorization, if-none-match, stream-seq, stream-ttl, stream-expires-at, stream-closed, " +
  "producer-id, producer-epoch, producer-seq, stream-forked-from, stream-fork-offset, stream-fork-sub-offset"

/** The status and protocol headers of an error. */
const errorResponse = (error: DurableStreamsError): HttpServerResponse.HttpServerResponse => {
  const reason = error.reason
  const respond = (status: number, headers: Record<string, string> = {}) =>
    HttpServerResponse.setHeaders(
      refusal(
        status,
        reason._tag,
        reason._tag === "Redis" ? "the server's storage is unavailable; retry" : reason.message
      ),
      headers
    )
  switch (reason._tag) {
    case "NotFound":
      return respond(404)
    case "Gone":
      return respond(410)
    case "Conflict":
      return respond(409)
    case "StreamClosed":
      return respond(409, { "stream-closed": "true", "stream-next-offset": reason.nextOffset })
    case "StaleEpoch":
      return respond(403, { "producer-epoch": reason.epoch })
    case "SequenceGap":
      return respond(409, { "producer-expected-seq": reason.expected, "producer-received-seq": reason.received })
    case "InvalidRequest":
      return respond(400)
    case "ReadOnly":
      return respond(405, { allow: "GET, HEAD" })
    case "Redis":
      return respond(503, { "retry-after": "1" })
  }
}

/** The answer to an error, after logging what the client is not told (a Redis failure's cause). */
const refuse = (error: DurableStreamsError) =>
  Effect.as(
    error.reason._tag === "Redis"
      ? Effect.logWarning(`DurableStreamsHttp: ${error.stream}: ${error.message}`)
      : Effect.void,
    errorResponse(error)
  )

/** The read answers of a route set, with its options' bounds. */
const readAnswers = (options: Options) =>
  Effect.map(
    Sse.make({
      keepAlive: Duration.fromInputUnsafe(options.keepAlive ?? "15 seconds"),
      retryMs: 1000,
      maxOpen: options.maxOpenStreams ?? 10_000,
      stallTimeout: Duration.seconds(30)
    }),
    (sse) =>
      Responses.make({
        longPollTimeout: Duration.fromInputUnsafe(options.longPollTimeout ?? "30 seconds"),
        sseMs: Duration.toMillis(Duration.fromInputUnsafe(options.sseReconnectAfter ?? "60 seconds")),
        readCacheControl: options.readCacheControl ?? "no-store",
        sse,
        maxOpenPolls: options.maxOpenStreams ?? 10_000
      })
  )

/**
 * The routes, as a layer to merge into an `HttpRouter` (serve it with `HttpRouter.serve`, wrapped in
 * `ResumableStreamHttp.endOnShutdown` to end live responses at once on a deploy). Needs the `DurableStreams` service.
 *
 * @since 0.1.0
 */
export const routes = (options: Options): Layer.Layer<never, never, HttpRouter.HttpRouter | DurableStreams> => {
  Guard.requireAccessDecision("DurableStreamsHttp", options.authorize, "DurableStreamsHttp.allowEveryone")
  return Layer.unwrap(
    Effect.gen(function* () {
      const streams = yield* DurableStreams
      const base = basePath(options.path ?? "/v1/stream")
      const guard = guardOf(options)
      const limits = {
        maxBodyBytes: options.maxBodyBytes ?? 8 * 1024 * 1024,
        bodyTimeout: Duration.fromInputUnsafe(options.bodyTimeout ?? "30 seconds")
      }
      const reads = yield* readAnswers(options)

      const nameOf = (pathname: string) => nameUnder(base, pathname)

      const create = (request: HttpServerRequest.HttpServerRequest, url: URL, name: string) =>
        Effect.gen(function* () {
          const ttl = Headers.integerHeader(request, "stream-ttl")
          const expiresAt = Headers.expiresAtHeader(request)
          const subOffset = Headers.integerHeader(request, "stream-fork-sub-offset")
          for (const parsed of [ttl, expiresAt, subOffset])
            if (Headers.isInvalid(parsed)) return badRequest(parsed.invalid)
          if (ttl !== undefined && expiresAt !== undefined) {
            return badRequest("Stream-TTL and Stream-Expires-At exclude each other")
          }
          const forkedFrom = Headers.header(request, "stream-forked-from")
          const forkOffset = Headers.header(request, "stream-fork-offset")
          if (forkedFrom === undefined && (subOffset !== undefined || forkOffset !== undefined)) {
            return badRequest("Stream-Fork-Offset and Stream-Fork-Sub-Offset need Stream-Forked-From")
          }
          const source = forkedFrom === undefined ? undefined : nameOf(pathOf(forkedFrom, url))
          if (forkedFrom !== undefined && source === undefined) {
            return refusal(404, "NotFound", "Stream-Forked-From names no stream of this server")
          }
          // a fork reads its source: the requester must be allowed to
          if (source !== undefined && !(yield* options.authorize(request, { action: "read", stream: source }))) {
            return forbidden
          }
          const body = yield* bytesBody(request, limits)
          if (Result.isFailure(body)) return body.failure
          const contentType = Headers.header(request, "content-type")
          const created = yield* streams.create(name, {
            contentType: contentType ?? (source === undefined ? "application/octet-stream" : undefined),
            ttlSeconds: ttl as number | undefined,
            expiresAt: expiresAt as Date | undefined,
            closed: Headers.closedHeader(request),
            body: body.success,
            fork:
              source === undefined
                ? undefined
                : { from: source, offset: forkOffset, subOffset: subOffset as number | undefined }
          })
          return HttpServerResponse.empty({
            status: created.created ? 201 : 200,
            headers: {
              "content-type": created.contentType,
              "stream-next-offset": created.nextOffset,
              ...(created.created ? { location: locationOf(request, url) } : {}),
              ...(created.closed ? { "stream-closed": "true" } : {})
            }
          })
        })

      const append = (request: HttpServerRequest.HttpServerRequest, name: string) =>
        Effect.gen(function* () {
          const producer = Headers.producerHeaders(request)
          if (Headers.isInvalid(producer)) return badRequest(producer.invalid)
          const body = yield* bytesBody(request, limits)
          if (Result.isFailure(body)) return body.failure
          const close = Headers.closedHeader(request)
          if (body.success.length === 0 && !close) return badRequest("an append needs a body (or Stream-Closed: true)")
          const contentType = Headers.header(request, "content-type")
          if (body.success.length > 0 && contentType === undefined) return badRequest("an append needs a Content-Type")
          const appended = yield* streams.append(name, body.success, {
            contentType,
            streamSeq: Headers.header(request, "stream-seq"),
            producer,
            close
          })
          const fresh = producer !== undefined && !appended.duplicate && body.success.length > 0
          return HttpServerResponse.empty({
            status: fresh ? 200 : 204,
            headers: {
              "stream-next-offset": appended.nextOffset,
              ...(appended.closed ? { "stream-closed": "true" } : {}),
              ...(appended.producer === undefined
                ? {}
                : { "producer-epoch": appended.producer.epoch, "producer-seq": appended.producer.seq })
            }
          })
        })

      const head = (name: string) => Effect.map(streams.head(name), headResponse)

      const actionOf = (method: string): StreamAccess["action"] | undefined =>
        method === "PUT"
          ? "create"
          : method === "POST"
            ? "append"
            : method === "GET" || method === "HEAD"
              ? "read"
              : method === "DELETE"
                ? "delete"
                : undefined

      const handle = (request: HttpServerRequest.HttpServerRequest) => {
        const url = urlOf(request)
        const name = nameOf(url.pathname)
        const action = actionOf(request.method)
        if (action === undefined) {
          return Effect.succeed(refusal(405, "MethodNotAllowed", `${request.method} is not a protocol operation`))
        }
        if (name === undefined || name.startsWith("__ds/")) {
          return Effect.succeed(refusal(404, "NotFound", "no stream at this path"))
        }
        const operation = Effect.suspend(() => {
          switch (request.method) {
            case "PUT":
              return create(request, url, name)
            case "POST":
              return append(request, name)
            case "HEAD":
              return head(name)
            case "DELETE":
              return Effect.as(streams.delete(name), HttpServerResponse.empty({ status: 204 }))
            default:
              return reads.answer(request, url, {
                read: (offset, wait) => streams.read(name, offset, wait === undefined ? {} : { wait })
              })
          }
        })
        return Effect.flatMap(options.authorize(request, { action, stream: name }), (allowed) =>
          allowed ? operation : Effect.succeed(forbidden)
        ).pipe(Effect.catch(refuse))
      }

      return serveUnder(options, base, guard, handle)
    })
  )
}

/** The stream routes' guard (the protocol's methods and headers, any body type). */
const guardOf = (options: SecurityOptions) =>
  Guard.make(options, {
    methods: "GET, HEAD, POST, PUT, DELETE",
    headers: allowHeaders,
    exposeHeaders,
    requireJson: false,
    ownCacheControl: true
  })

/** Serves `handle` for every path under `base`, behind `guard`, answering CORS preflights. */
const serveUnder = (
  options: SecurityOptions,
  base: string,
  guard: Guard.Guard,
  handle: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<HttpServerResponse.HttpServerResponse>
) => {
  const corp = (options.allowedOrigins ?? []).length > 0 ? "cross-origin" : "same-origin"
  return HttpRouter.add("*", under(base, "/*"), (request) =>
    request.method === "OPTIONS"
      ? guard.answerPreflight(request)
      : Effect.map(
          guard.check(
            request,
            Effect.suspend(() => handle(request))
          ),
          (response) => HttpServerResponse.setHeader(response, "cross-origin-resource-policy", corp)
        )
  )
}

/** The path a `Stream-Forked-From` names (a path, or a URL of this server), or "" when it is not one. */
const pathOf = (value: string, url: URL): string => {
  try {
    return new URL(value, url).pathname
  } catch {
    return ""
  }
}

/** A request's URL; a `Host` that is no host name gives `localhost` (the guard refuses it before any use). */
const urlOf = (request: HttpServerRequest.HttpServerRequest): URL => {
  try {
    return new URL(request.url, `http://${request.headers.host ?? "localhost"}`)
  } catch {
    return new URL(request.url, "http://localhost")
  }
}

/** The absolute URL of a created stream, with the scheme a proxy in front says it was reached by. */
const locationOf = (request: HttpServerRequest.HttpServerRequest, url: URL) => {
  const proto = String(request.headers["x-forwarded-proto"] ?? "")
    .split(",")[0]
    ?.trim()
  return `${proto === "https" ? "https" : url.protocol.replace(":", "")}://${url.host}${url.pathname}`
}

/** The base path of a route set (`/v1/stream/` → `/v1/stream`). */
const basePath = (path: string) => "/" + path.replace(/^\/+|\/+$/g, "")

/** What follows `base` in a path, if it is one name (no empty, `.` or `..` segment, at most 1,024 characters). */
const nameUnder = (base: string, pathname: string): string | undefined => {
  if (!pathname.startsWith(base + "/")) return undefined
  const name = pathname.slice(base.length + 1)
  if (name === "" || name.length > 1024 || name.split("/").some((s) => s === "" || s === "." || s === "..")) {
    return undefined
  }
  return name
}

/**
 * Options of {@link runRoutes}: {@link Options} without what only writes use.
 *
 * @since 0.1.0
 */
export interface RunRoutesOptions extends Omit<Options, "maxBodyBytes" | "bodyTimeout" | "path"> {
  /** Path under which runs are served, as `{path}/{token}`. Default `/v1/runs`. */
  readonly path?: string | undefined
}

/**
 * ResumableStream runs as read-only Durable Streams: `GET {path}/{token}` (with `offset`, `live=long-poll`,
 * `live=sse`) and `HEAD` serve the run of a resume token, its chunks as JSON messages (`application/json`), its offsets
 * its entry ids, closed once the run has ended (completed, failed or cancelled). Any `@durable-streams/client` can
 * follow an answer the library produces, across dropped connections and instances. Writes get 405. `authorize` is
 * asked for `{ action: "read", stream: <the run's stream name> }` after the token was checked (a bad token: 404).
 * Needs the `ResumableStream` service.
 *
 * @since 0.1.0
 */
export const runRoutes = (
  options: RunRoutesOptions
): Layer.Layer<never, never, HttpRouter.HttpRouter | ResumableStream.ResumableStream> => {
  Guard.requireAccessDecision("DurableStreamsHttp", options.authorize, "DurableStreamsHttp.allowEveryone")
  return Layer.unwrap(
    Effect.gen(function* () {
      const runs = yield* ResumableStream.ResumableStream
      const base = basePath(options.path ?? "/v1/runs")
      const reads = yield* readAnswers(options)
      const handle = (request: HttpServerRequest.HttpServerRequest) => {
        const url = urlOf(request)
        const token = nameUnder(base, url.pathname)
        if (token === undefined) return Effect.succeed(refusal(404, "NotFound", "no run at this path"))
        if (request.method !== "GET" && request.method !== "HEAD") {
          return Effect.succeed(
            errorResponse(
              new DurableStreamsError({
                stream: "run",
                reason: new ReadOnly({ message: "a run is written by its producer; it is read-only here" })
              })
            )
          )
        }
        const source = Runs.source(runs, token, runPageEntries)
        const read = Effect.flatMap(runs.nameOf(token), (stream) =>
          Effect.flatMap(options.authorize(request, { action: "read", stream }), (allowed) =>
            !allowed
              ? Effect.succeed(forbidden)
              : request.method === "HEAD"
                ? Effect.map(source.read("now"), headResponse)
                : reads.answer(request, url, source)
          )
        ).pipe(
          Effect.catchTag("ResumableStreamError", () => Effect.succeed(refusal(404, "NotFound", "no such run"))),
          Effect.catch(refuse)
        )
        return read
      }
      return serveUnder(options, base, guardOf(options), handle)
    })
  )
}

/** How many chunks of a run one read returns at most. */
const runPageEntries = 1000

const forbidden = refusal(403, "Forbidden", "not authorized")

/** The answer to a `HEAD`: the stream's metadata. */
const headResponse = (info: StreamInfo) =>
  HttpServerResponse.empty({
    status: 200,
    headers: {
      "content-type": info.contentType,
      "stream-next-offset": info.nextOffset,
      "cache-control": "no-store",
      ...(info.closed ? { "stream-closed": "true" } : {}),
      ...(info.ttlSeconds === undefined ? {} : { "stream-ttl": String(info.ttlSeconds) }),
      ...(info.expiresAt === undefined ? {} : { "stream-expires-at": info.expiresAt })
    }
  })
