/**
 * Server-Sent Events responses of the HTTP routes: a `retry:` hint, the body's events, keep-alive comments while it
 * is quiet, and an end as soon as the routes shut down (a deploy): clients reconnect, to another instance, from the
 * last event id they saw, instead of holding the server's graceful shutdown open.
 *
 * @internal
 */
import { Context, Deferred, type Duration, Effect, Layer, Option, Schedule, type Scope, Stream } from "effect"
import { Sse } from "effect/encoding"
import { HttpServerResponse } from "effect/http"

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

/** Makes SSE responses that end on shutdown: `SseShutdown` when provided, else when `scope` closes. */
export const make = (options: {
  readonly keepAlive: Duration.Duration
  readonly retryMs: number
}): Effect.Effect<
  (body: Stream.Stream<string>, headers?: Readonly<Record<string, string>>) => HttpServerResponse.HttpServerResponse,
  never,
  Scope.Scope
> =>
  Effect.gen(function* () {
    const provided = yield* Effect.serviceOption(SseShutdown)
    const closing = Option.isSome(provided) ? provided.value : yield* Deferred.make<void>()
    yield* Effect.addFinalizer(() => Deferred.succeed(closing, undefined))
    return (body, headers = {}) => {
      const pings = Stream.fromSchedule(Schedule.spaced(options.keepAlive)).pipe(Stream.map(() => ": keep-alive\n\n"))
      const events = Stream.concat(Stream.make(`retry: ${options.retryMs}\n\n`), body)
      return HttpServerResponse.stream(
        Stream.merge(events, pings, { haltStrategy: "left" }).pipe(
          Stream.interruptWhen(Deferred.await(closing)),
          Stream.encodeText
        ),
        {
          contentType: "text/event-stream",
          headers: { "cache-control": "no-cache, no-transform", "x-accel-buffering": "no", ...headers }
        }
      )
    }
  })
