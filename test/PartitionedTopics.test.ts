import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Schedule } from "effect"
import * as Message from "../src/Message.js"
import * as PartitionedTopics from "../src/PartitionedTopics.js"
import * as Publisher from "../src/Publisher.js"
import * as RedisClient from "../src/RedisClient.js"
import { partitionOf } from "../src/internal/messaging/partitions/layout.js"
import { keyOf } from "../src/internal/messaging/wire.js"
import { slotOf } from "../src/internal/slot.js"
import * as RedisServer from "../src/testing/RedisServer.js"
import { entriesOf } from "./support/streams.js"
import { forEachTarget, onEveryNode, TestTopology } from "./support/targets.js"
import { runExample } from "./support/example.js"
import { checkOrder, type HandlerEvent, memberProcesses, publishKeyed } from "./support/partitions.js"

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

  it.effect("the key prefix is the Publisher's by default; another one is a defect when the service is built", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const keyPrefix = RedisServer.uniquePrefix("part")
      const publisher = yield* Publisher.make({ keyPrefix })
      const topics = yield* PartitionedTopics.make().pipe(Effect.provideService(Publisher.Publisher, publisher))
      yield* topics.create("prefixed", 2)
      assert.strictEqual(yield* redis.send<string>("HGET", `${keyPrefix}{prefixed}:partitions`, "count"), "2")
      const mismatch = yield* Effect.exit(
        PartitionedTopics.make({ keyPrefix: "other:" }).pipe(Effect.provideService(Publisher.Publisher, publisher))
      )
      assert.isTrue(Exit.hasDies(mismatch))
    })
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

  it.effect("a grow while a member runs: it owns and reads the new partitions within a tick", () =>
    withTopics((topics) =>
      Effect.gen(function* () {
        yield* topics.create("growing", 2)
        const handled: Array<string> = []
        const member = yield* Effect.forkChild(
          topics.consume(
            "growing",
            (delivery) => Effect.sync(() => handled.push(`${delivery.partition}/${delivery.key}`)),
            {
              group: "g",
              member: "a",
              ...fast
            }
          )
        )
        yield* Effect.sleep(300)
        yield* topics.grow("growing", 4)
        const key = Array.from({ length: 100 }, (_, n) => `key-${n}`).find((key) => partitionOf(key, 4) === 3)!
        yield* topics.publish("growing", Message.make("after the grow"), { key })
        yield* Effect.sync(() => handled.includes(`3/${key}`)).pipe(
          Effect.repeat({ until: (found) => found, schedule: Schedule.spaced(20) }),
          Effect.timeout("5 seconds")
        )
        const owners = (yield* topics.inspect("growing", "g")).map((state) => state.owner)
        assert.deepStrictEqual(owners, ["a", "a", "a", "a"])
        yield* Fiber.interrupt(member)
      })
    )
  )

  it.effect(
    "a failing handler is retried in place: the key's next message waits; after maxDeliveries, a dead letter",
    () =>
      withTopics((topics, keyPrefix) =>
        Effect.gen(function* () {
          const layout = yield* topics.create("payments", 4)
          const handled: Array<string> = []
          const failing = (delivery: PartitionedTopics.Delivery) =>
            Effect.gen(function* () {
              const seq = delivery.message.metadata.seq
              handled.push(`${delivery.key}/${seq}#${delivery.deliveries}`)
              if (delivery.key === "k" && seq === "1" && delivery.deliveries < 3) return yield* Effect.fail("flaky")
              if (delivery.key === "k" && seq === "3") return yield* Effect.fail("poison")
            })
          const member = yield* Effect.forkChild(
            topics.consume("payments", failing, {
              group: "g",
              concurrency: 4,
              maxDeliveries: 3,
              redeliveryDelay: "20 millis",
              ...fast
            })
          )
          yield* publishKeyed(topics, "payments", 1, 5) // key-0
          yield* Effect.forEach([0, 1, 2, 3, 4], (seq) =>
            topics.publish("payments", Message.make(`k/${seq}`, { metadata: { seq: String(seq) } }), { key: "k" })
          )
          yield* Effect.sync(() => handled.filter((entry) => entry.startsWith("k/4")).length).pipe(
            Effect.repeat({ until: (n) => n > 0, schedule: Schedule.spaced(20) }),
            Effect.timeout("10 seconds")
          )
          yield* Fiber.interrupt(member)
          assert.deepStrictEqual(
            handled.filter((entry) => entry.startsWith("k/")),
            ["k/0#1", "k/1#1", "k/1#2", "k/1#3", "k/2#1", "k/3#1", "k/3#2", "k/3#3", "k/4#1"]
          )
          assert.deepStrictEqual(
            handled.filter((entry) => entry.startsWith("key-0/")),
            ["key-0/0#1", "key-0/1#1", "key-0/2#1", "key-0/3#1", "key-0/4#1"]
          )
          const dead = `${layout.partitions[partitionOf("k", 4)]}:dead`
          const deadLetters = yield* entriesOf(keyOf(keyPrefix, dead))
          assert.deepStrictEqual(
            deadLetters.map((entry) => [entry.dead_reason, entry.dead_deliveries]),
            [["poison", "3"]]
          )
        })
      )
  )

  it.effect("batches: at most maxBatch messages of a partition, a lone one after maxWait, all in order", () =>
    withTopics((topics) =>
      Effect.gen(function* () {
        yield* topics.create("rows", 2)
        const batches: Array<{ readonly seqs: ReadonlyArray<number>; readonly at: number }> = []
        const member = yield* Effect.forkChild(
          topics.consumeBatches(
            "rows",
            (batch) =>
              Effect.sync(() => {
                batches.push({ seqs: batch.map((delivery) => Number(delivery.message.metadata.seq)), at: Date.now() })
              }),
            { group: "g", maxBatch: 10, maxWait: "200 millis", ...fast }
          )
        )
        yield* topics.layout("rows")
        yield* Effect.sleep(300) // the member owns both partitions
        yield* topics.publish(
          "rows",
          Array.from({ length: 95 }, (_, seq) => Message.make("row", { metadata: { seq: String(seq) } })),
          { key: "table-a" }
        )
        const handledAll = Effect.sync(() => batches.reduce((sum, batch) => sum + batch.seqs.length, 0))
        yield* handledAll.pipe(
          Effect.repeat({ until: (n) => n === 95, schedule: Schedule.spaced(20) }),
          Effect.timeout("10 seconds")
        )
        assert.deepStrictEqual(
          batches.flatMap((batch) => batch.seqs),
          Array.from({ length: 95 }, (_, seq) => seq)
        )
        assert.isTrue(batches.every((batch) => batch.seqs.length <= 10))
        assert.isAtLeast(batches.filter((batch) => batch.seqs.length === 10).length, 8)
        const sentAt = Date.now()
        yield* topics.publish("rows", Message.make("row", { metadata: { seq: "95" } }), { key: "table-a" })
        yield* handledAll.pipe(
          Effect.repeat({ until: (n) => n === 96, schedule: Schedule.spaced(10) }),
          Effect.timeout("5 seconds")
        )
        const waited = batches.at(-1)!.at - sentAt
        assert.deepStrictEqual(batches.at(-1)!.seqs, [95])
        assert.isAtLeast(waited, 180)
        assert.isBelow(waited, 1_000)
        yield* Fiber.interrupt(member)
      })
    )
  )

  it.effect(
    "4 member processes, 100 keys × 200 messages: one SIGKILLed, a fifth joins; every key in order, every message handled",
    () =>
      withTopics((topics, keyPrefix) =>
        Effect.gen(function* () {
          yield* topics.create("jobs", 8)
          const { spawn, ownersNow, awaitOwners, ended, events } = yield* memberProcesses(topics, "jobs", keyPrefix)
          const members = yield* Effect.forEach(["m1", "m2", "m3", "m4"], spawn, { concurrency: "unbounded" })
          yield* awaitOwners((owners) => new Set(owners).size === 4 && !owners.includes(undefined))
          const publishing = yield* Effect.forkChild(publishKeyed(topics, "jobs", 100, 200))
          yield* ended(5_000)
          // a crash: its partitions move once its lease expires (2 s), without breaking any key's order
          const lost = (yield* ownersNow).flatMap((owner, partition) => (owner === "m1" ? [partition] : []))
          const killedAt = Date.now()
          members[0]!.kill("SIGKILL")
          const owners = yield* awaitOwners((owners) =>
            lost.every((partition) => !["m1", undefined].includes(owners[partition]))
          )
          const takeover = Date.now() - killedAt
          yield* spawn("m5")
          yield* awaitOwners((owners) => owners.includes("m5"))
          yield* Fiber.join(publishing)
          yield* ended(20_000, "60 seconds")
          yield* Effect.sleep(500) // what a duplicate would add arrives now
          const check = checkOrder(yield* events, new Set(["m1"]))
          console.log(
            `partitioned takeover after SIGKILL: ${takeover} ms (lease 2 s); ${check.duplicates} duplicate(s); ` +
              `m1 held ${lost.length} partition(s), then ${owners.join(",")}`
          )
          assert.deepStrictEqual(check.violations, [])
          assert.strictEqual(check.handled, 20_000)
          assert.isBelow(takeover, 4_000)
        })
      ),
    { timeout: 120_000 }
  )

  it.effect(
    "a member frozen (SIGSTOP) loses its partitions at the lease's end; thawed, it never reads or handles out of turn",
    () =>
      withTopics((topics, keyPrefix) =>
        Effect.gen(function* () {
          yield* topics.create("frozen", 4)
          const { spawn, awaitOwners, ended, events } = yield* memberProcesses(topics, "frozen", keyPrefix)
          const [m1] = yield* Effect.forEach(["m1", "m2"], spawn, { concurrency: "unbounded" })
          yield* awaitOwners(
            (owners) => owners.filter((owner) => owner === "m1").length === 2 && !owners.includes(undefined)
          )
          m1!.kill("SIGSTOP")
          yield* publishKeyed(topics, "frozen", 20, 20)
          yield* awaitOwners((owners) => owners.every((owner) => owner === "m2"))
          yield* ended(400)
          // thawed while new messages arrive: its reader's next read finds its lease gone
          const publishing = yield* Effect.forkChild(publishKeyed(topics, "frozen", 20, 20, 20))
          m1!.kill("SIGCONT")
          yield* Fiber.join(publishing)
          yield* ended(800)
          yield* awaitOwners((owners) => owners.includes("m1"))
          const check = checkOrder(yield* events, new Set())
          assert.deepStrictEqual(check.violations, [])
          assert.strictEqual(check.handled, 800)
          assert.strictEqual(check.duplicates, 0)
        })
      ),
    { timeout: 60_000 }
  )
})

describe("npm run example:partitioned", () => {
  it("keeps every order's updates in order across a worker leaving, and ends", { timeout: 45_000 }, async () => {
    const { code, stdout } = await runExample("partitioned-topics.ts", 30_000)
    assert.strictEqual(code, 0)
    assert.match(stdout, /^handled 500 updates of 20 orders; out of order: 0$/m)
    assert.match(stdout, /^warehouse wrote the same 500 updates in \d+ batches/m)
    // after it left, worker-c owns nothing
    assert.notMatch(stdout.slice(stdout.indexOf("after worker-c left")), /worker-c \(token/)
  })
})
