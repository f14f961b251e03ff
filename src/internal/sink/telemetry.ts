/**
 * Effect spans and logs as sink events: the Effect-native form of StreamLL's `@instrument`. A tracer that wraps the
 * one in place emits a `start` event when a span starts and an `end` (or `error`) event when it ends, with its name,
 * duration, attributes, parent and error; a logger emits a `log` event per log line. Both only enqueue (never wait).
 *
 * @internal
 */
import { Cause, Context, Exit, Logger, Option, Tracer } from "effect"
import type { EventInput } from "./event.js"

/** Enqueues an event; never waits, never fails (a refused event is counted by the sink). */
export type EmitUnsafe = (event: EventInput) => void

/** A value made safe for JSON: primitives and arrays of primitives pass; anything else becomes its string form. */
const jsonSafe = (value: unknown): unknown => {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value
  if (typeof value === "number") return Number.isFinite(value) ? value : String(value)
  if (Array.isArray(value)) return value.map((item) => (typeof item === "object" ? String(item) : jsonSafe(item)))
  return String(value)
}

const attributesOf = (attributes: ReadonlyMap<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [key, value] of attributes) out[key] = jsonSafe(value)
  return out
}

const parentId = (span: Tracer.Span): string | null =>
  Option.match(span.parent, { onNone: () => null, onSome: (parent) => parent.spanId })

/** What an ended span tells: its status and, for a failure, the error's type and message. */
const outcomeOf = (exit: Exit.Exit<unknown, unknown>): { readonly type: string; readonly data: object } => {
  if (Exit.isSuccess(exit)) return { type: "end", data: { status: "ok" } }
  if (Cause.hasInterruptsOnly(exit.cause)) return { type: "end", data: { status: "interrupted" } }
  const error = Cause.squash(exit.cause)
  const tagged = typeof error === "object" && error !== null ? (error as { _tag?: unknown; name?: unknown }) : {}
  const errorType =
    typeof tagged._tag === "string" ? tagged._tag : typeof tagged.name === "string" ? tagged.name : "Error"
  const message = error instanceof Error ? error.message : String(error)
  return { type: "error", data: { status: "error", error_type: errorType, error_message: message } }
}

/** Spans of the sink itself, which are not recorded into it. */
const ownSpan = /^EventSink\./

/** A tracer that does what `base` does and emits each span's start and end (except the sink's own). */
export const tracer = (base: Tracer.Tracer, emit: EmitUnsafe): Tracer.Tracer =>
  Tracer.make({
    span(options) {
      const span = base.span.call(base, options)
      if (ownSpan.test(span.name)) return span
      const ids = { span_id: span.spanId, parent_span_id: parentId(span) }
      emit({ event_type: "start", operation: span.name, execution_id: span.traceId, data: ids })
      const end = span.end.bind(span)
      span.end = (endTime, exit) => {
        end(endTime, exit)
        const outcome = outcomeOf(exit)
        emit({
          event_type: outcome.type,
          operation: span.name,
          execution_id: span.traceId,
          data: {
            ...ids,
            duration_ms: Number(endTime - options.startTime) / 1_000_000,
            attributes: attributesOf(span.attributes),
            ...outcome.data
          }
        })
      }
      return span
    },
    ...(base.context === undefined ? {} : { context: base.context })
  })

/** A logger that emits each log line as a `log` event of the current span's trace. */
export const logger = (emit: EmitUnsafe): Logger.Logger<unknown, void> =>
  Logger.make((options) => {
    const span = Context.getOption(options.fiber.context, Tracer.ParentSpan)
    const messages = Array.isArray(options.message) ? options.message : [options.message]
    emit({
      event_type: "log",
      timestamp: options.date,
      execution_id: Option.match(span, { onNone: () => null, onSome: (s) => s.traceId }),
      operation: Option.match(span, { onNone: () => null, onSome: (s) => (s._tag === "Span" ? s.name : null) }),
      data: {
        level: options.logLevel,
        message: messages.map((part) => (typeof part === "string" ? part : JSON.stringify(jsonSafe(part)))).join(" "),
        ...(options.cause.reasons.length === 0 ? {} : { cause: Cause.pretty(options.cause) })
      }
    })
  })
