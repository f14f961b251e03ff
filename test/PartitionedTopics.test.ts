import { assert } from "@effect/vitest"
import { Effect, Fiber, Layer, Schedule } from "effect"
import * as Message from "../src/Message.js"
import * as PartitionedTopics from "../src/PartitionedTopics.js"
import * as Publisher from "../src/Publisher.js"
import * as RedisClient from "../src/RedisClient.js"
import * as Subscriber from "../src/Subscriber.js"
import { partitionOf } from "../src/internal/messaging/partitions/layout.js"
import { keyOf } from "../src/internal/messaging/wire.js"
import { slotOf } from "../src/internal/slot.js"
import * as RedisServer from "../src/testing/RedisServer.js"
import { forEachTarget, onEveryNode, TestTopology } from "./support/targets.js"
import { checkOrder, type HandlerEvent, publishKeyed } from "./support/partitions.js"

/** The partitioned topics service (and a publisher, a subscriber) on a key prefix of the test's own. */
const withTopics = <A, E, R>(f: (topics: PartitionedTopics.Service, keyPrefix: string) => Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const keyPrefix = RedisServer.uniquePrefix("part")
    const publisher = yield* Publisher.make({ keyPrefix })
    const topics = yield* PartitionedTopics.make({ keyPrefix }).pipe(
      Effect.provideService(Publisher.Publisher, publisher)
    )
    return yield* f(topics, keyPrefix)
  })

/** Fast leases and polls for the tests. */
const fast = { leaseTime: "1 second", pollInterval: "100 millis", drainTimeout: "2 seconds" } as const

const failedWith = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.flip(effect), (error) => (error as { reason: { _tag: string } }).reason._tag)

forEachTarget("PartitionedTopics", (it) => {
  it.effect("a topic's partitions spread over every master; its count is stored, checked and only grows", () =>
    withTopics((topics) =>
      Effect.gen(function* () {
        const topology = yield* TestTopology
        const layout = yield* topics.create("orders", 8)
        assert.strictEqual(layout.partitions.length, 8)
        assert.strictEqual(new Set(layout.partitions).size, 8)
        if (topology.kind === "cluster") {
          const [slots] = yield* onEveryNode(
            topology,
            (node) => node.call("CLUSTER", "SLOTS") as Promise<Array<[number, number, [string, number]]>>
          )
          const portOf = (slot: number) => slots!.find(([from, to]) => slot >= from && slot <= to)![2][1]
          const masters = new Set(layout.partitions.map((partition) => portOf(slotOf(`{${partition}}`))))
          assert.strictEqual(masters.size, 3)
        }
        // another process agrees; a different count is a typed error; growing keeps the partitions it had
        assert.deepStrictEqual(yield* topics.create("orders", 8), layout)
        assert.strictEqual(yield* failedWith(topics.create("orders", 4)), "PartitionMismatch")
        assert.strictEqual(yield* failedWith(topics.publish("unknown", Message.make("x"))), "PartitionMismatch")
        assert.strictEqual(yield* failedWith(topics.create("bad name", 2)), "InvalidMessage")
        const grown = yield* topics.grow("orders", 12)
        assert.deepStrictEqual(grown.partitions.slice(0, 8), layout.partitions)
        assert.strictEqual(grown.partitions.length, 12)
        assert.strictEqual(yield* failedWith(topics.grow("orders", 10)), "PartitionMismatch")
      })
    )
  )

  it.effect("a key's partition is CRC16 of the key mod N: Redis' own CLUSTER KEYSLOT agrees", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      for (const key of ["order-1", "customer:42", "ü-ß", "a", ""]) {
        const slot = yield* redis
          .send<number>("CLUSTER", "KEYSLOT", key)
          .pipe(Effect.catch(() => Effect.succeed(slotOf(key))))
        if (key.includes("{")) continue
        assert.strictEqual(partitionOf(key, 16), slot % 16)
      }
    })
  )

  it.effect("two members split the partitions; each key's messages are handled in publish order, all of them", () =>
    withTopics((topics) =>
      Effect.gen(function* () {
        yield* topics.create("trades", 8)
        const events: Array<HandlerEvent> = []
        const handler = (member: string) => (delivery: PartitionedTopics.Delivery) =>
          Effect.gen(function* () {
            events.push({ phase: "start", key: delivery.key!, seq: Number(delivery.message.metadata.seq), member })
            yield* Effect.sleep(Math.random() < 0.5 ? 1 : 0)
            events.push({ phase: "end", key: delivery.key!, seq: Number(delivery.message.metadata.seq), member })
          })
        const members = yield* Effect.forEach(["a", "b"], (member) =>
          Effect.forkChild(topics.consume("trades", handler(member), { group: "g", member, concurrency: 4, ...fast }))
        )
        yield* publishKeyed(topics, "trades", 20, 30)
        yield* Effect.gen(function* () {
          while (events.filter((event) => event.phase === "end").length < 600) yield* Effect.sleep(20)
        }).pipe(Effect.timeout("20 seconds"))
        // once the first tick's claims settled, each member owns four partitions
        const owners = yield* topics.inspect("trades", "g").pipe(
          Effect.map((states) => states.map((state) => state.owner ?? "").sort()),
          Effect.repeat({ until: (owners) => owners.join() === "a,a,a,a,b,b,b,b", schedule: Schedule.spaced(50) }),
          Effect.timeout("5 seconds")
        )
        assert.deepStrictEqual(owners, ["a", "a", "a", "a", "b", "b", "b", "b"])
        yield* Fiber.interruptAll(members)
        const check = checkOrder(events, new Set())
        assert.deepStrictEqual(check.violations, [])
        assert.strictEqual(check.handled, 600)
      })
    )
  )
})

void Layer
void Subscriber
void keyOf
