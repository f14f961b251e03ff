/**
 * `npm run example:failover`: a Redis Cluster of 3 masters and 3 replicas (started here), an answer streamed token by
 * token through `ResumableStream` and orders consumed through `Subscriber`, and the master that holds them killed
 * mid-way. A replica takes over; the answer completes without a gap and every order is handled, and the example says
 * how long each part waited.
 */
import { Console, Effect, Fiber, Layer, Schedule, Schema, Stream } from "effect"
import * as Message from "../src/Message.js"
import * as Publisher from "../src/Publisher.js"
import * as RedisClient from "../src/RedisClient.js"
import * as ResumableStream from "../src/ResumableStream.js"
import * as Subscriber from "../src/Subscriber.js"
import * as RedisServer from "../src/testing/RedisServer.js"

const words = "Redis Cluster keeps serving while a replica takes over the slots of a master that died".split(" ")

/** An "LLM" that says `words`, one token every 40 ms, a few times over. */
const Answer = ResumableStream.define({
  name: "answer",
  input: Schema.Struct({ rounds: Schema.Number }),
  chunk: Schema.String,
  run: ({ rounds }, writer) =>
    Effect.forEach(
      Array.from({ length: rounds * words.length }, (_, i) => words[i % words.length] as string),
      (word) => Effect.andThen(writer.append(word), Effect.sleep("40 millis")),
      { discard: true }
    )
})

const program = Effect.gen(function* () {
  const cluster = yield* RedisServer.RedisCluster
  const streams = yield* ResumableStream.ResumableStream
  const publisher = yield* Publisher.Publisher
  const subscriber = yield* Subscriber.Subscriber

  // the run's keys and the topic share the hash tag {orders}: one master holds both
  const victim = yield* cluster.masterOf("{orders}")
  const handled = new Set<string>()
  yield* Effect.forkScoped(
    subscriber.consume("orders", (received) => Effect.sync(() => handled.add(Message.text(received.message))), {
      group: "shipping"
    })
  )
  const started = yield* streams.start(Answer, { rounds: 4 }, { runId: "orders" })
  const reader = yield* Effect.forkScoped(Stream.runCollect(streams.resume(Answer, started.token)))

  let published = 0
  const publishing = yield* Effect.forkScoped(
    Effect.forever(
      Effect.suspend(() => publisher.publish("orders", Message.make(`order-${published}`))).pipe(
        // while no master serves the topic, publish fails retryably: publish the same message again
        Effect.retry({ schedule: Schedule.spaced("100 millis"), while: (error) => error.isRetryable }),
        Effect.andThen(
          Effect.sync(() => {
            published += 1
          })
        ),
        Effect.andThen(Effect.sleep("20 millis"))
      )
    )
  )

  yield* Effect.sleep("1 second")
  yield* victim.kill
  const killedAt = Date.now()
  yield* Console.log(`killed the master at port ${victim.port}, which holds the answer and the orders`)
  yield* cluster.awaitHealthy
  yield* Console.log(`a replica took over after ${Date.now() - killedAt} ms`)

  const answer = (yield* Fiber.join(reader)).map((entry) => entry.chunk)
  const expected = Array.from({ length: 4 * words.length }, (_, i) => words[i % words.length])
  yield* Console.log(
    `the answer: ${answer.length} of ${expected.length} tokens, in order: ${answer.every((w, i) => w === expected[i])}`
  )
  yield* Effect.sleep("1 second") // orders keep flowing on the new master
  yield* Fiber.interrupt(publishing)
  yield* Effect.sleep("500 millis")
  const missing = Array.from({ length: published }, (_, i) => `order-${i}`).filter((order) => !handled.has(order))
  yield* Console.log(`orders: ${published} published, ${published - missing.length} handled, ${missing.length} lost`)
  yield* victim.start
})

const Client = Layer.unwrap(
  Effect.map(RedisServer.RedisCluster, (cluster) =>
    RedisClient.layerCluster({ nodes: cluster.nodes.map(({ host, port }) => ({ host, port })) })
  )
)

program
  .pipe(
    Effect.scoped,
    Effect.provide(
      Layer.mergeAll(
        ResumableStream.layer({ streams: [Answer], unsignedTokens: true }),
        Publisher.layer(),
        Subscriber.layer()
      ).pipe(
        Layer.provideMerge(Client),
        Layer.provideMerge(RedisServer.layerCluster({ replicas: 1, nodeTimeout: "1 second" }))
      )
    ),
    Effect.runPromise
  )
  .catch((error: unknown) => {
    process.exitCode = 1
    console.error(error)
  })
