import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, References, Tracer } from "effect"
import { traced } from "../../src/internal/spans.js"

/** A service whose operation answers the name of the span it runs in (none: outside any span). */
const service = traced(
  "Service",
  {
    operation: () =>
      Effect.map(Effect.currentParentSpan, (span) => (span._tag === "Span" ? span.name : "external")).pipe(
        Effect.option
      )
  },
  ["operation"]
)

/** A tracer that records the names of the spans it makes (Effect's native spans underneath). */
const recordingTracer = () => {
  const names: Array<string> = []
  const tracer = Tracer.make({
    span: (options) => {
      names.push(options.name)
      return Tracer.nativeTracer.span(options)
    }
  })
  return { names, tracer }
}

describe("traced", () => {
  it.effect("with a tracer installed, each operation runs in a span Module.method", () =>
    Effect.gen(function* () {
      const { names, tracer } = recordingTracer()
      const inside = yield* service.operation().pipe(Effect.withTracer(tracer))
      assert.deepStrictEqual(inside, Option.some("Service.operation"))
      assert.deepStrictEqual(names, ["Service.operation"])
    })
  )

  it.effect("with Effect's native tracer or tracing disabled, no span is made", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* service.operation(), Option.none())
      const { names, tracer } = recordingTracer()
      const disabled = yield* service
        .operation()
        .pipe(Effect.withTracer(tracer), Effect.provideService(References.TracerEnabled, false))
      assert.deepStrictEqual(disabled, Option.none())
      assert.deepStrictEqual(names, [])
    })
  )
})
