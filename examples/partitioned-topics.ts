/**
 * `npm run example:partitioned`: one hot topic of 8 partitions handled in order per key by three workers. Order
 * updates of 20 orders are published with the order id as the key; each worker checks that an order's updates come in
 * the order they were published while different orders run at once. Midway a worker leaves (a deploy): its partitions
 * move to the others without breaking any order. The inspector's view of the partitions (owner, fencing token, lag)
 * is printed before and after; then a bulk writer takes the same kind of updates in batches.
 */
import { Console, Effect, Fiber, Layer } from "effect"
import * as Message from "../src/Message.js"
import * as PartitionedTopics from "../src/PartitionedTopics.js"
import * as Publisher from "../src/Publisher.js"
import * as RedisServer from "../src/testing/RedisServer.js"

const orders = 20
const updatesPerOrder = 25

const showPartitions = (topics: PartitionedTopics.Service, label: string) =>
  Effect.flatMap(topics.inspect("order-updates", "fulfilment"), (states) =>
    Console.log(
      `${label}:\n` +
        states
          .map(
            (state) =>
              `  partition ${state.partition} (${state.topic}, slot ${state.slot}): ` +
              `${state.owner ?? "nobody"} (token ${state.fence ?? "-"}), lag ${state.lag}, pending ${state.pending}`
          )
          .join("\n")
    )
  )

const program = Effect.gen(function* () {
  const topics = yield* PartitionedTopics.PartitionedTopics
  const layout = yield* topics.create("order-updates", 8)
  yield* Console.log(`order-updates has ${layout.partitions.length} partitions: ${layout.partitions.join(", ")}`)

  // each order's last handled update: a worker sees them in publish order, or says so
  const last = new Map<string, number>()
  let outOfOrder = 0
  const worker = (name: string) =>
    topics.consume(
      "order-updates",
      (delivery) =>
        Effect.gen(function* () {
          const update = Number(delivery.message.metadata.update)
          const order = delivery.key ?? ""
          if (update !== (last.get(order) ?? -1) + 1) outOfOrder++
          yield* Effect.sleep("2 millis") // the work: write the order's new state somewhere
          last.set(order, update)
        }),
      { group: "fulfilment", member: name, concurrency: 4, leaseTime: "2 seconds" }
    )
  const workers = yield* Effect.forEach(["worker-a", "worker-b", "worker-c"], (name) => Effect.forkChild(worker(name)))
  yield* Effect.sleep("500 millis") // the workers share the partitions out
  yield* showPartitions(topics, "three workers")

  const publishUpdates = (from: number, to: number) =>
    Effect.forEach(
      Array.from({ length: orders }, (_, n) => `order-${n}`),
      (order) =>
        Effect.forEach(
          Array.from({ length: to - from }, (_, i) => from + i),
          (update) =>
            topics.publish(
              "order-updates",
              Message.make(`${order} #${update}`, { metadata: { update: String(update) } }),
              {
                key: order
              }
            ),
          { discard: true }
        ),
      { concurrency: "unbounded", discard: true }
    )
  yield* publishUpdates(0, 10)
  // a deploy: worker-c leaves; it finishes what it runs, then the others take its partitions over
  yield* Fiber.interrupt(workers[2]!)
  yield* publishUpdates(10, updatesPerOrder)
  const handled = () => Array.from(last.values()).reduce((sum, update) => sum + update + 1, 0)
  yield* Effect.sleep("100 millis").pipe(Effect.repeat({ until: () => handled() === orders * updatesPerOrder }))
  yield* showPartitions(topics, "after worker-c left")
  yield* Console.log(`handled ${handled()} updates of ${orders} orders; out of order: ${outOfOrder}`)
  yield* Effect.forEach(workers.slice(0, 2), Fiber.interrupt)

  // a bulk writer: up to 50 updates of a partition at once, acknowledged together
  const batchSizes: Array<number> = []
  const writer = yield* Effect.forkChild(
    topics.consumeBatches("order-updates", (batch) => Effect.sync(() => batchSizes.push(batch.length)), {
      group: "warehouse",
      maxBatch: 50,
      maxWait: "20 millis"
    })
  )
  yield* Effect.sleep("100 millis").pipe(
    Effect.repeat({ until: () => batchSizes.reduce((a, b) => a + b, 0) === orders * updatesPerOrder })
  )
  yield* Fiber.interrupt(writer)
  yield* Console.log(
    `warehouse wrote the same ${orders * updatesPerOrder} updates in ${batchSizes.length} batches (largest ${Math.max(...batchSizes)})`
  )
})

const Live = PartitionedTopics.layer().pipe(
  Layer.provideMerge(Publisher.layer()),
  Layer.provideMerge(RedisServer.layerClient()),
  Layer.provideMerge(RedisServer.layer({ url: process.env.REDIS_URL }))
)

Effect.runPromise(program.pipe(Effect.provide(Live))).catch((error) => {
  console.error(error)
  process.exit(1)
})
