/**
 * A consumer in its own process, for the fault test that kills it: receives messages of a topic without acknowledging
 * them, prints `holding <count>` once it holds `count`, and goes on until it is killed. Arguments: `single <url>` or
 * `cluster <host:port,…>`, then the key prefix, topic, group, consumer name and count.
 */
import { Effect, Layer, Stream } from "effect"
import * as Subscriber from "../../src/Subscriber.js"
import { clientFromArgs } from "./child.js"

const [mode, target, keyPrefix, topic, group, consumer, count] = process.argv.slice(2)

const program = Effect.gen(function* () {
  const subscriber = yield* Subscriber.Subscriber
  let held = 0
  yield* Stream.runForEach(
    subscriber.subscribe(topic ?? "", { group: group ?? "", consumer, maxInFlight: 1_000 }),
    () =>
      Effect.sync(() => {
        if (++held === Number(count)) process.stdout.write(`holding ${held}\n`)
      })
  )
})

Effect.runPromise(
  program.pipe(Effect.provide(Subscriber.layer({ keyPrefix }).pipe(Layer.provide(clientFromArgs(mode, target)))))
).catch(() => process.exit(1))
