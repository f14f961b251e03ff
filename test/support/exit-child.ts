/**
 * A program that forks a consumer (and a user fiber holding a dedicated connection in a blocking read) and then ends
 * without interrupting either, as a careless application does: it must exit by itself. Prints `handled <n>` when its
 * consumer handled the message it published, then `done` when its main effect ended. Arguments: `single <url>` or
 * `cluster <host:port,…>`, then the key prefix and how the consumer is forked (`child` or `detached`).
 */
import { Effect, Layer } from "effect"
import * as Message from "../../src/Message.js"
import * as Publisher from "../../src/Publisher.js"
import * as RedisClient from "../../src/RedisClient.js"
import * as Subscriber from "../../src/Subscriber.js"
import { clientFromArgs } from "./child.js"

const [mode, target, keyPrefix, fork] = process.argv.slice(2)
const forkIt = fork === "detached" ? Effect.forkDetach : Effect.forkChild

const program = Effect.gen(function* () {
  const subscriber = yield* Subscriber.Subscriber
  const publisher = yield* Publisher.Publisher
  const redis = yield* RedisClient.RedisClient
  let handled = 0
  yield* forkIt(
    subscriber.consume("jobs", () => Effect.sync(() => process.stdout.write(`handled ${++handled}\n`)), {
      group: "g",
      drainTimeout: "1 second"
    })
  )
  yield* forkIt(
    Effect.scoped(
      Effect.flatMap(redis.dedicated, (connection) =>
        redis.use("blpop", () => connection.blpop(`${keyPrefix}{never}`, 0))
      )
    )
  )
  yield* publisher.publish("jobs", Message.make("hello"))
  yield* Effect.sleep("500 millis")
})

const Layers = Layer.mergeAll(Subscriber.layer({ keyPrefix }), Publisher.layer({ keyPrefix })).pipe(
  Layer.provideMerge(clientFromArgs(mode, target))
)
Effect.runPromise(program.pipe(Effect.provide(Layers))).then(
  () => process.stdout.write("done\n"),
  (error) => {
    process.stdout.write(`failed ${String(error)}\n`)
    process.exit(1)
  }
)
