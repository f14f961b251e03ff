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

/**
 * The current span's context as a `traceparent`, if there is one (a span of this process, or one from another process
 * that a handler runs under when no tracing backend is installed).
 */
export const currentTraceparent: Effect.Effect<string | undefined> = Effect.currentParentSpan.pipe(
  Effect.map((span) => `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`),
  Effect.orElseSucceed(() => undefined)
)

/** The last `traceparent` parsed and its span: the messages of one publish share one, and are handled together. */
let lastParsed: { readonly traceparent: string | undefined; readonly span: Option.Option<Tracer.ExternalSpan> } = {
  traceparent: undefined,
  span: Option.none()
}

/** The span a `traceparent` names, as a parent for spans of this process; none for a malformed one. */
export const parentOf = (traceparent: string | undefined): Option.Option<Tracer.ExternalSpan> => {
  if (traceparent === lastParsed.traceparent) return lastParsed.span
  const match = traceparent === undefined ? null : pattern.exec(traceparent)
  const span =
    match === null
      ? Option.none()
      : Option.some(
          Tracer.externalSpan({
            traceId: match[1] as string,
            spanId: match[2] as string,
            sampled: (Number.parseInt(match[3] as string, 16) & 1) === 1
          })
        )
  lastParsed = { traceparent, span }
  return span
}
