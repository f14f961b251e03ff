/**
 * The read answers of the protocol, for any source of a stream (a stream of `DurableStreams`, or a ResumableStream
 * run seen as a read-only stream): catch-up reads (with `ETag` and 304), long-polls (204 at the timeout, with a
 * cursor) and SSE responses (`data` and `control` events until the stream closes or the response's time is up).
 *
 * @internal
 */
import { Duration, Effect, Option, Stream } from "effect"
import { type HttpServerRequest, HttpServerResponse } from "effect/http"
import type { ReadResult } from "../../DurableStreams.js"
import type { DurableStreamsError } from "../../DurableStreamsError.js"
import type * as Sse from "../http/sse.js"
import { badRequest } from "../http/request.js"
import { isJson, isText, jsonArray, mediaType } from "./body.js"
import * as Cursor from "./cursor.js"
import { header } from "./headers.js"
import * as Events from "./sse.js"

/** What a stream's reads come from. */
export interface Source {
  /** Reads from `offset`; with `wait`, waits up to that long for an entry when none follows it and it is open. */
  readonly read: (
    offset: string | undefined,
    wait?: Duration.Duration
  ) => Effect.Effect<ReadResult, DurableStreamsError>
}

/** How reads are answered. */
export interface Settings {
  readonly longPollTimeout: Duration.Duration
  readonly sseMs: number
  readonly readCacheControl: string
  readonly sse: Sse.Responses
  readonly maxOpenPolls: number
}

/**
 * The headers every read answer carries. A stream's bytes are served as its content type (`text/html`, `image/svg+xml`
 * too): a sandboxing content security policy keeps a browser that opens one from running it on this origin.
 */
const readHeaders = (result: ReadResult, cursor: string | undefined): Record<string, string> => {
  const atEnd = result.closed && result.upToDate
  return {
    "content-security-policy": "default-src 'none'; sandbox",
    "stream-next-offset": result.nextOffset,
    ...(result.upToDate ? { "stream-up-to-date": "true" } : {}),
    ...(atEnd ? { "stream-closed": "true" } : cursor === undefined ? {} : { "stream-cursor": cursor })
  }
}

/** A read's body: the JSON array of its messages, or its bytes. */
const readBody = (result: ReadResult) =>
  isJson(mediaType(result.contentType)) ? jsonArray(result.entries) : Buffer.concat(result.entries)

/** The query parameter `name`: absent, its one value, or null (repeated). */
const singleParam = (url: URL, name: string): string | undefined | null => {
  const values = url.searchParams.getAll(name)
  return values.length === 0 ? undefined : values.length === 1 ? values[0]! : null
}

/** Makes the read answers of a route set. */
export const make = (settings: Settings) => {
  let openPolls = 0

  const catchUp = (request: HttpServerRequest.HttpServerRequest, source: Source, offset: string | undefined) =>
    Effect.map(source.read(offset), (result) => {
      if (offset === "now") {
        return HttpServerResponse.uint8Array(readBody(result), {
          contentType: result.contentType,
          headers: { ...readHeaders(result, undefined), "cache-control": "no-store" }
        })
      }
      const closedMark = result.closed && result.upToDate ? ":c" : ""
      const etag = `"${result.id}:${result.offset}:${result.nextOffset}${closedMark}"`
      const headers = { ...readHeaders(result, undefined), etag, "cache-control": settings.readCacheControl }
      if (header(request, "if-none-match") === etag) return HttpServerResponse.empty({ status: 304, headers })
      return HttpServerResponse.uint8Array(readBody(result), { contentType: result.contentType, headers })
    })

  const longPoll = (source: Source, offset: string, cursor: string | undefined) =>
    Effect.suspend(() => {
      if (openPolls >= settings.maxOpenPolls) return Effect.succeed(settings.sse.busy)
      openPolls++
      // a shutdown (a deploy) answers at once with what is there: the client polls again, at another instance
      const waited = Effect.raceFirst(
        source.read(offset, settings.longPollTimeout),
        Effect.andThen(settings.sse.closing, source.read(offset))
      )
      return Effect.map(
        Effect.ensuring(
          waited,
          Effect.sync(() => void openPolls--)
        ),
        (result) => {
          const headers = { ...readHeaders(result, Cursor.next(cursor)), "cache-control": "no-store" }
          if (result.entries.length === 0) return HttpServerResponse.empty({ status: 204, headers })
          return HttpServerResponse.uint8Array(readBody(result), { contentType: result.contentType, headers })
        }
      )
    })

  const live = (
    request: HttpServerRequest.HttpServerRequest,
    source: Source,
    offset: string,
    cursor: string | undefined
  ) =>
    Effect.gen(function* () {
      if (settings.sse.full()) return settings.sse.busy
      const first = yield* source.read(offset)
      const media = mediaType(first.contentType)
      const json = isJson(media)
      const text = isText(media)
      const endAt = Date.now() + settings.sseMs
      interface Page {
        readonly result: ReadResult | undefined
        readonly offset: string
        readonly first: boolean
      }
      const page = (state: Page) =>
        Effect.gen(function* () {
          const result =
            state.result ?? (yield* source.read(state.offset, Duration.millis(Math.max(1, endAt - Date.now()))))
          const out: Array<string> = []
          const atEnd = result.closed && result.upToDate
          if (result.entries.length > 0) out.push(Events.dataEvent(result.entries, json, text))
          if (result.entries.length > 0 || state.first || atEnd) {
            out.push(
              Events.controlEvent({
                nextOffset: result.nextOffset,
                cursor: Cursor.next(cursor),
                upToDate: result.upToDate,
                closed: atEnd
              })
            )
          }
          const more = !atEnd && Date.now() < endAt
          const next: Option.Option<Page> = more
            ? Option.some({ result: undefined, offset: result.nextOffset, first: false })
            : Option.none()
          return [out, next] as const
        })
      const events = Stream.paginate<Page, string, DurableStreamsError>(
        { result: first, offset: first.nextOffset, first: true },
        page
      ).pipe(
        Stream.catch((error: DurableStreamsError) =>
          Stream.fromEffect(
            error.reason._tag === "Redis"
              ? Effect.logWarning(`DurableStreamsHttp: an SSE response of ${error.stream} ended: ${error.message}`)
              : Effect.logDebug(`DurableStreamsHttp: an SSE response of ${error.stream} ended: ${error.message}`)
          ).pipe(Stream.drain)
        )
      )
      return settings.sse.respond(request, events, text ? {} : { "stream-sse-data-encoding": "base64" })
    })

  /** Answers a `GET` of `source` as its query asks (catch-up, `live=long-poll` or `live=sse`). */
  const answer = (request: HttpServerRequest.HttpServerRequest, url: URL, source: Source) => {
    const offset = singleParam(url, "offset")
    const mode = singleParam(url, "live")
    const cursor = singleParam(url, "cursor") ?? undefined
    if (offset === null || offset === "") return Effect.succeed(badRequest("give one non-empty offset"))
    if (mode === undefined) return catchUp(request, source, offset)
    if (offset === undefined) return Effect.succeed(badRequest(`live=${mode} needs an offset`))
    if (mode === "long-poll") return longPoll(source, offset, cursor)
    if (mode === "sse") return live(request, source, offset, cursor)
    return Effect.succeed(badRequest("live must be long-poll or sse"))
  }

  return { answer }
}
