/**
 * Spans for the public operations of a service: each named method runs in a span `Module.method`, so a trace shows
 * what the application asked of Redis, whatever the capability. No stack trace is captured: it would point here, at
 * a cost on every call. With Effect's native tracer (no tracer installed: nothing exports its spans) or tracing
 * disabled, no span is made: a span costs more than a batched read itself.
 *
 * @internal
 */
import { Effect, References, Tracer } from "effect"

/** Span options that skip the stack trace (it would point at our wrapper, at a cost on every call). */
export const noStackTrace = { captureStackTrace: false } as const

type Operation = (...args: ReadonlyArray<never>) => Effect.Effect<unknown, unknown, unknown>

/** `service` with each of `methods` (functions returning an Effect) running in a span `${module}.${method}`. */
export const traced = <S extends object>(module: string, service: S, methods: ReadonlyArray<keyof S & string>): S => {
  const spanned: Record<string, unknown> = { ...(service as Record<string, unknown>) }
  for (const method of methods) {
    const operation = service[method] as unknown as Operation
    const name = `${module}.${method}`
    spanned[method] = (...args: ReadonlyArray<never>) =>
      Effect.withFiber((fiber) =>
        fiber.getRef(Tracer.Tracer) === Tracer.nativeTracer || !fiber.getRef(References.TracerEnabled)
          ? operation(...args)
          : Effect.withSpan(operation(...args), name, noStackTrace)
      )
  }
  return spanned as S
}
