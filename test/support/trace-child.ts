/**
 * A consumer in its own process, for the trace test: handles one message of a topic and prints the trace id of its
 * handler's span and the id of that span's parent. Arguments: `single <url>` or `cluster <host:port,…>`, then the
 * key prefix and the topic.
 */
import { Effect, Layer, Option } from "effect"
import * as Subscriber from "../../src/Subscriber.js"
import { clientFromArgs } from "./child.js"

const [mode, target, keyPrefix, topic] = process.argv.slice(2)

const program = Effect.gen(function* () {
  const subscriber = yield* Subscriber.Subscriber
  yield* subscriber.consume(
    topic ?? "",
    () =>
      Effect.gen(function* () {
        const span = yield* Effect.currentSpan
        const parent = Option.getOrUndefined(span.parent)
        process.stdout.write(`${span.traceId} ${parent?.spanId ?? "none"}\n`)
        process.exit(0)
      }),
    { group: "traced" }
  )
})

Effect.runPromise(
  program.pipe(Effect.provide(Subscriber.layer({ keyPrefix }).pipe(Layer.provide(clientFromArgs(mode, target)))))
).catch(() => process.exit(1))
