/**
 * A consumer in its own process, for the trace test: handles one message of a topic and prints the trace id of the
 * span its handler runs in (its current parent span), that span's id and the id of its parent. Arguments: `single <url>` or
 * `cluster <host:port,…>`, then the key prefix, the topic, and `backend` (a tracer other than Effect's native one is
 * installed, as an exporter would be) or `none` (no tracer installed).
 */
import { Effect, Layer, Option, Tracer } from "effect"
import * as Subscriber from "../../src/Subscriber.js"
import { clientFromArgs } from "./child.js"

const [mode, target, keyPrefix, topic, tracing] = process.argv.slice(2)

/** A tracing backend as far as the library can tell: a tracer of its own (its spans are the native ones). */
const backend = Tracer.make({ span: (options) => Tracer.nativeTracer.span(options) })

const program = Effect.gen(function* () {
  const subscriber = yield* Subscriber.Subscriber
  yield* subscriber.consume(
    topic ?? "",
    () =>
      Effect.gen(function* () {
        const span = yield* Effect.currentParentSpan
        const parent = span._tag === "Span" ? Option.getOrUndefined(span.parent) : undefined
        process.stdout.write(`${span.traceId} ${span.spanId} ${parent?.spanId ?? "none"}\n`)
        process.exit(0)
      }),
    { group: "traced" }
  )
})

Effect.runPromise(
  program.pipe(
    tracing === "backend" ? Effect.withTracer(backend) : (self) => self,
    Effect.provide(Subscriber.layer({ keyPrefix }).pipe(Layer.provide(clientFromArgs(mode, target))))
  )
).catch(() => process.exit(1))
