/**
 * Server-Sent Events responses of the HTTP routes: a `retry:` hint, the body's events, keep-alive comments while it
 * is quiet, and an end as soon as the routes shut down (a deploy): clients reconnect, to another instance, from the
 * last event id they saw, instead of holding the server's graceful shutdown open.
 *
 * Bounded: at most `maxOpen` responses at once per route set (one more is refused with 503 and `Retry-After`), and a
 * response whose client stops taking what is sent (its socket's buffer stays full) ends after `stallTimeout`, so a
 * client that stopped reading holds its buffers only that long.
 *
 * @internal
 */
import { Context, Deferred, Duration, Effect, Layer, Option, Schedule, type Scope, Stream } from "effect"
import { Sse } from "effect/encoding"
import { type HttpServerRequest, HttpServerResponse } from "effect/http"

/** One SSE event as text: `event:` (when named), `id:` (when given), `data:`. */
export const event = (name: string | undefined, data: string, id?: string): string =>
  Sse.encoder.write({ _tag: "Event", event: name ?? "message", id, data })

/**
 * The signal that ends every open SSE response: completed by `serve` before the HTTP server waits for open responses
 * (without it, routes end their responses when their own layer closes, which comes after that wait).
 */
export class SseShutdown extends Context.Service<SseShutdown, Deferred.Deferred<void>>()(
  "effect-redis-streams/SseShutdown"
) {}

/** The shutdown signal, and the layer that completes it when it closes (built after, so closed before, the server). */
export const shutdownLayers = {
  signal: Layer.effect(SseShutdown, Deferred.make<void>()),
  trigger: Layer.effectDiscard(
    Effect.flatMap(SseShutdown, (signal) => Effect.addFinalizer(() => Deferred.succeed(signal, undefined)))
  )
}

/** The SSE responses of one route set. */
export interface Responses {
  /** An SSE response of `body` to `request` (counted open until it ends). */
  readonly respond: (
    request: HttpServerRequest.HttpServerRequest,
    body: Stream.Stream<string>,
    headers?: Readonly<Record<string, string>>
  ) => HttpServerResponse.HttpServerResponse
  /** Whether `maxOpen` responses are open: a new one should get `busy`. */
  readonly full: () => boolean
  /** The refusal when full: 503 with `Retry-After`. */
  readonly busy: HttpServerResponse.HttpServerResponse
  /** Resolves when the routes shut down: other live answers (a long-poll) end then too. */
  readonly closing: Effect.Effect<void>
}

/**
 * Ends a request's connection (a response whose client stopped reading): on Node, destroys its socket, which ends
 * the response's fiber; elsewhere nothing (the response's memory is bounded anyway).
 */
const disconnect = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.sync(() => (request.source as { readonly socket?: { readonly destroy?: () => void } }).socket?.destroy?.())

/** Makes SSE responses that end on shutdown (`SseShutdown` when provided, else when `scope` closes), bounded. */
export const make = (options: {
  readonly keepAlive: Duration.Duration
  readonly retryMs: number
  readonly maxOpen: number
  readonly stallTimeout: Duration.Duration
}): Effect.Effect<Responses, never, Scope.Scope> =>
  Effect.gen(function* () {
    const provided = yield* Effect.serviceOption(SseShutdown)
    const closing = Option.isSome(provided) ? provided.value : yield* Deferred.make<void>()
    yield* Effect.addFinalizer(() => Deferred.succeed(closing, undefined))
    // a client that reads is pulled from at least every keep-alive: a stall is judged after twice that at least
    const stallMs = Math.max(Duration.toMillis(options.stallTimeout), 2 * Duration.toMillis(options.keepAlive))
    const checkEvery = Duration.millis(Math.max(50, Math.min(1000, stallMs / 4)))
    let open = 0
    const busy = HttpServerResponse.jsonUnsafe(
      { reason: "Busy", message: "too many open streams on this server; retry shortly" },
      { status: 503, headers: { "retry-after": "5" } }
    )
    const respond = (
      request: HttpServerRequest.HttpServerRequest,
      body: Stream.Stream<string>,
      headers: Readonly<Record<string, string>> = {}
    ) => {
      open++
      let lastPull = Date.now()
      // the socket's buffer stays full while the client does not read: nothing is pulled; past stallMs, disconnect
      const watchdog = Effect.repeat(
        Effect.sync(() => Date.now() - lastPull > stallMs),
        {
          schedule: Schedule.spaced(checkEvery),
          until: (stalled) => stalled
        }
      ).pipe(Effect.andThen(disconnect(request)))
      const pings = Stream.fromSchedule(Schedule.spaced(options.keepAlive)).pipe(Stream.map(() => ": keep-alive\n\n"))
      const events = Stream.concat(Stream.make(`retry: ${options.retryMs}\n\n`), body)
      const watched = Stream.unwrap(
        Effect.as(
          Effect.forkScoped(watchdog),
          Stream.merge(events, pings, { haltStrategy: "left" }).pipe(
            Stream.interruptWhen(Deferred.await(closing)),
            Stream.tap(() => Effect.sync(() => void (lastPull = Date.now())))
          )
        )
      )
      return HttpServerResponse.stream(
        watched.pipe(Stream.encodeText, Stream.ensuring(Effect.sync(() => void open--))),
        {
          contentType: "text/event-stream",
          headers: { "cache-control": "no-cache, no-transform", "x-accel-buffering": "no", ...headers }
        }
      )
    }
    return { respond, full: () => open >= options.maxOpen, busy, closing: Deferred.await(closing) }
  })
