/**
 * Spans for the public operations of a service: each named method runs in a span `Module.method`, so a trace shows
 * what the application asked of Redis, whatever the capability. No stack trace is captured: it would point here, at
 * a cost on every call. With Effect's native tracer (no tracer installed: nothing exports its spans) or tracing
 * disabled, no span is made: a span costs more than a batched read itself.
 *
 * @internal
 */
import { Effect, type Fiber, References, Tracer } from "effect"

/** Span options that skip the stack trace (it would point at our wrapper, at a cost on every call). */
export const noStackTrace = { captureStackTrace: false } as const

/** Whether anyone sees spans: tracing is enabled and a tracer other than Effect's native one is installed. */
export const isTracing = (fiber: Fiber.Fiber<unknown, unknown>): boolean =>
  fiber.getRef(Tracer.Tracer) !== Tracer.nativeTracer && fiber.getRef(References.TracerEnabled)

/** `effect` in a span `name` (no stack trace) when anyone sees spans (see `isTracing`), else as it is. */
export const spanned = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  name: string,
  options?: Tracer.SpanOptions
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) =>
    isTracing(fiber) ? Effect.withSpan(effect, name, { ...options, ...noStackTrace }) : effect
  )

type Operation = (...args: ReadonlyArray<never>) => Effect.Effect<unknown, unknown, unknown>

/** `service` with each of `methods` (functions returning an Effect) running in a span `${module}.${method}`. */
export const traced = <S extends object>(module: string, service: S, methods: ReadonlyArray<keyof S & string>): S => {
  const withSpans: Record<string, unknown> = { ...(service as Record<string, unknown>) }
  for (const method of methods) {
    const operation = service[method] as unknown as Operation
    const name = `${module}.${method}`
    withSpans[method] = (...args: ReadonlyArray<never>) => spanned(operation(...args), name)
  }
  return withSpans as S
}
