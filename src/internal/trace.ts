/**
 * Trace context across processes, as W3C `traceparent` (`00-<trace id>-<span id>-<flags>`), the way OpenTelemetry's
 * messaging conventions carry it: a publish writes the current span's context into the message's metadata, and the
 * consumer's handler span takes it as its parent, so one trace shows publish → consume wherever they run.
 *
 * @internal
 */
import { Effect, Option, Tracer } from "effect"

/** The metadata key of the trace context. */
export const traceparentKey = "traceparent"

const pattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** The current span's context as a `traceparent`, if there is a span. */
export const currentTraceparent: Effect.Effect<string | undefined> = Effect.currentSpan.pipe(
  Effect.map((span) => `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`),
  Effect.orElseSucceed(() => undefined)
)

/** The span a `traceparent` names, as a parent for spans of this process; none for a malformed one. */
export const parentOf = (traceparent: string | undefined): Option.Option<Tracer.ExternalSpan> => {
  const match = traceparent === undefined ? null : pattern.exec(traceparent)
  if (match === null) return Option.none()
  return Option.some(
    Tracer.externalSpan({
      traceId: match[1] as string,
      spanId: match[2] as string,
      sampled: (Number.parseInt(match[3] as string, 16) & 1) === 1
    })
  )
}
