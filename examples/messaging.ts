/**
 * `npm run example:messaging`: work passed between workers over Redis consumer groups. Two workers share the orders;
 * a worker that takes orders and vanishes leaves them pending, and a live one claims them after the idle time; a
 * poison order is retried with backoff and ends in the dead letters with its error; a deploy replaces a worker, which
 * hands what it had not started to its successor at once; then typed commands and events on the buses.
 */
import { Console, Effect, Fiber, Layer, Schema, Stream } from "effect"
import * as CommandBus from "../src/CommandBus.js"
import * as EventBus from "../src/EventBus.js"
import * as Message from "../src/Message.js"
import * as Publisher from "../src/Publisher.js"
import * as Subscriber from "../src/Subscriber.js"
import * as RedisServer from "../src/testing/RedisServer.js"

const fast = { claimIdleTime: "500 millis", claimInterval: "100 millis", pollInterval: "200 millis" } as const

const orders = Effect.gen(function* () {
  const publisher = yield* Publisher.Publisher
  const subscriber = yield* Subscriber.Subscriber
  yield* publisher.publish("orders", ...Array.from({ length: 6 }, (_, i) => Message.make(`order-${i}`)))

  // a worker takes two orders and vanishes without acknowledging them
  yield* subscriber.subscribe("orders", { group: "shipping", consumer: "vanishing", maxInFlight: 2 }).pipe(
    Stream.take(2),
    Stream.runForEach((received) => Console.log(`vanishing worker took ${Message.text(received.message)}`))
  )

  const shipped: Array<string> = []
  const worker = (name: string) =>
    subscriber.consume(
      "orders",
      (received) =>
        Effect.gen(function* () {
          const order = Message.text(received.message)
          if (order === "order-5") return yield* Effect.fail(new Error("the address does not exist"))
          shipped.push(order)
          yield* Console.log(`${name} shipped ${order} (delivery ${received.deliveries})`)
        }),
      { group: "shipping", consumer: name, maxDeliveries: 2, ...fast }
    )
  const workers = yield* Effect.all([Effect.forkChild(worker("worker-1")), Effect.forkChild(worker("worker-2"))])
  yield* Effect.sleep("1500 millis") // the vanished worker's orders are claimed after 500 ms of idleness
  yield* Effect.forEach(workers, Fiber.interrupt)
  yield* Console.log(`shipped ${shipped.length} of 6; order-5 went to the dead letters:`)
  yield* subscriber.subscribe(Subscriber.deadLetterTopic("orders"), { group: "ops", ...fast }).pipe(
    Stream.take(1),
    Stream.runForEach((received) =>
      Console.log(
        `  dead letter: ${Message.text(received.message)}, error ${JSON.stringify(received.deadLettered?.error)}`
      )
    )
  )
})

// a deploy: "blue" is stopped mid-work and "green" starts; blue hands back what it read but had not started
const deploy = Effect.gen(function* () {
  const publisher = yield* Publisher.Publisher
  const subscriber = yield* Subscriber.Subscriber
  yield* publisher.publish("jobs", ...Array.from({ length: 20 }, (_, i) => Message.make(`job-${i}`)))
  const handled: Array<readonly [worker: string, at: number]> = []
  const worker = (name: string) =>
    subscriber.consume(
      "jobs",
      () => Effect.sleep("100 millis").pipe(Effect.andThen(Effect.sync(() => handled.push([name, Date.now()])))),
      { group: "jobs", consumer: name, concurrency: 2 }
    )
  const blue = yield* Effect.forkChild(worker("blue"))
  yield* Effect.sleep("250 millis")
  const stoppedAt = Date.now()
  const stopping = yield* Effect.forkChild(Fiber.interrupt(blue)) // blue's two running jobs finish meanwhile
  const green = yield* Effect.forkChild(worker("green"))
  yield* Effect.sleep("50 millis").pipe(Effect.repeat({ until: () => handled.length >= 20 }))
  yield* Effect.forEach([stopping, green], Fiber.interrupt)
  const byGreen = handled.filter(([name]) => name === "green")
  yield* Console.log(
    `deploy: blue handled ${handled.length - byGreen.length} jobs and was stopped; green finished its first job ` +
      `${(byGreen[0]?.[1] ?? stoppedAt) - stoppedAt} ms later (a job takes 100 ms) and handled the other ${byGreen.length}`
  )
})

class ShipOrder extends Schema.TaggedClass<ShipOrder>()("ShipOrder", { order: Schema.String }) {}
class OrderShipped extends Schema.TaggedClass<OrderShipped>()("OrderShipped", {
  order: Schema.String,
  at: Schema.Date
}) {}

const buses = Effect.gen(function* () {
  const commands = yield* CommandBus.make(CommandBus.define({ topic: "shipping-commands", commands: { ShipOrder } }))
  const events = yield* EventBus.make(EventBus.define({ topic: "shipping-events", events: { OrderShipped } }))
  const handler = yield* Effect.forkChild(
    commands.handle(
      {
        ShipOrder: (command) =>
          events.publish("OrderShipped", new OrderShipped({ order: command.order, at: new Date() }))
      },
      { group: "shipping-service", ...fast }
    )
  )
  const mailer = yield* Effect.forkChild(
    events.subscribe(
      { OrderShipped: (event) => Console.log(`mailer: ${event.order} shipped at ${event.at.toISOString()}`) },
      { group: "mailer", ...fast }
    )
  )
  yield* commands.send("ShipOrder", new ShipOrder({ order: "order-42" }))
  yield* Effect.sleep("500 millis")
  yield* Effect.forEach([handler, mailer], Fiber.interrupt)
})

const Live = Layer.mergeAll(Publisher.layer(), Subscriber.layer()).pipe(
  Layer.provideMerge(RedisServer.layerClient()),
  Layer.provideMerge(RedisServer.layer({ url: process.env.REDIS_URL }))
)

Effect.runPromise(Effect.all([orders, deploy, buses], { discard: true }).pipe(Effect.provide(Live))).catch((error) => {
  console.error(error)
  process.exit(1)
})
