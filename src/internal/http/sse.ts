/**
 * Server-Sent Events responses of the HTTP routes: a `retry:` hint, the body's events, keep-alive comments while it
 * is quiet, and an end as soon as the routes shut down (a deploy): clients reconnect, to another instance, from the
 * last event id they saw, instead of holding the server's graceful shutdown open.
 *
 * @internal
 */
import { Deferred, type Duration, Effect, Schedule, type Scope, Stream } from "effect"
import { Sse } from "effect/encoding"
import { HttpServerResponse } from "effect/http"

/** One SSE event as text: `event:` (when named), `id:` (when given), `data:`. */
export const event = (name: string | undefined, data: string, id?: string): string =>
  Sse.encoder.write({ _tag: "Event", event: name ?? "message", id, data })

/** Makes SSE responses that end when `scope` closes. */
export const make = (options: {
  readonly keepAlive: Duration.Duration
  readonly retryMs: number
}): Effect.Effect<
  (body: Stream.Stream<string>, headers?: Readonly<Record<string, string>>) => HttpServerResponse.HttpServerResponse,
  never,
  Scope.Scope
> =>
  Effect.gen(function* () {
    const closing = yield* Deferred.make<void>()
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
