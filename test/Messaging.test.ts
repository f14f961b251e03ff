import { assert } from "@effect/vitest"
import { Data, Effect, Exit, Fiber, Layer, Metric, Queue, Ref, Schedule, Schema, Scope, Stream } from "effect"
import { Cluster, Redis } from "ioredis"
import * as CommandBus from "../src/CommandBus.js"
import * as EventBus from "../src/EventBus.js"
import * as Message from "../src/Message.js"
import * as Publisher from "../src/Publisher.js"
import * as RedisClient from "../src/RedisClient.js"
import * as Subscriber from "../src/Subscriber.js"
import * as Metrics from "../src/internal/messaging/metrics.js"
import * as Wire from "../src/internal/messaging/wire.js"
import { slotOf } from "../src/internal/slot.js"
import * as RedisServer from "../src/testing/RedisServer.js"
import { firstLine, outputOf, spawnChild } from "./support/child.js"
import { run } from "../src/testing/internal/process.js"
import { entriesOf } from "./support/streams.js"
import { anotherClient, forEachTarget, maxClientConnections, type Topology, TestTopology } from "./support/targets.js"

/** A publisher and a subscriber with a key prefix of the test's own. */
const withMessaging = <A, E, R>(
  f: (services: {
    readonly publisher: Publisher.Service
    readonly subscriber: Subscriber.Service
    readonly keyPrefix: string
  }) => Effect.Effect<A, E, R>
) =>
  Effect.gen(function* () {
    const keyPrefix = RedisServer.uniquePrefix("msg")
    const publisher = yield* Publisher.make({ keyPrefix })
    const subscriber = yield* Subscriber.make({ keyPrefix })
    return yield* f({ publisher, subscriber, keyPrefix })
  })

const numbered = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => Message.make(String(from + i), { metadata: { n: String(from + i) } }))

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

const numberOf = (received: Subscriber.Received) => Number(Message.text(received.message))

/** Fast claims for the tests. */
const fast = { pollInterval: "100 millis", claimIdleTime: "400 millis", claimInterval: "100 millis" } as const

/** The number of client connections of every node of the topology. */
const connectionCount = (topology: Topology) =>
  Effect.map(
    Effect.forEach(topology.nodes, (node) =>
      Effect.promise(() => run("redis-cli", ["-p", String(node.port), "client", "list"]))
    ),
    (lists) => lists.reduce((sum, list) => sum + list.trim().split("\n").length - 1, 0)
  )

const pendingCount = (key: string, group: string) =>
  Effect.flatMap(RedisClient.RedisClient, (redis) =>
    redis.use("xpending", (client) => client.xpending(key, group) as Promise<[number, ...Array<unknown>]>)
  ).pipe(Effect.map((summary) => Number(summary[0])))

class CreateUser extends Schema.TaggedClass<CreateUser>()("CreateUser", { name: Schema.String }) {}
class DeleteUser extends Schema.TaggedClass<DeleteUser>()("DeleteUser", { id: Schema.Number }) {}
class UserCreated extends Schema.TaggedClass<UserCreated>()("UserCreated", {
  name: Schema.String,
  at: Schema.Date
}) {}
class UserDeleted extends Schema.TaggedClass<UserDeleted>()("UserDeleted", { id: Schema.Number }) {}

/** Runs `f` with the buses' services on a key prefix of the test's own. */
const withBuses = <A, E, R>(f: (keyPrefix: string) => Effect.Effect<A, E, R>) => {
  const keyPrefix = RedisServer.uniquePrefix("bus")
  return f(keyPrefix).pipe(
    Effect.provide(Layer.mergeAll(Publisher.layer({ keyPrefix }), Subscriber.layer({ keyPrefix })))
  )
}

forEachTarget("Publisher / Subscriber", (it) => {
  it.effect("a publish after the Publisher's layer closed fails Closed at once (it used to wait for ever)", () =>
    Effect.gen(function* () {
      const keyPrefix = RedisServer.uniquePrefix("msg")
      const scope = yield* Scope.make()
      const publisher = yield* Publisher.make({ keyPrefix }).pipe(Scope.provide(scope))
      yield* publisher.publish("orders", ...numbered(0, 1))
      yield* Scope.close(scope, Exit.void)
      const error = yield* Effect.flip(publisher.publish("orders", ...numbered(1, 2))).pipe(Effect.timeout("2 seconds"))
      assert.strictEqual(error.reason._tag, "Redis")
      assert.strictEqual((error.reason as { cause: { reason: { _tag: string } } }).cause.reason._tag, "Closed")
    })
  )

  it.effect("two consumers of one group split the messages; two groups each get all of them", () =>
    withMessaging(({ publisher, subscriber }) =>
      Effect.gen(function* () {
        yield* publisher.publish("orders", ...numbered(0, 100))
        const take = (group: string, consumer: string, n: number) =>
          subscriber.subscribe("orders", { group, consumer, ...fast }).pipe(
            Stream.tap((received) => received.ack),
            Stream.take(n),
            Stream.runCollect
          )
        // the processors split the 100 between them; a third reader of the group sees none left
        const [a, b] = yield* Effect.all([take("processors", "worker-1", 50), take("processors", "worker-2", 50)], {
          concurrency: "unbounded"
        })
        const processed = [...a, ...b].map(numberOf).sort((x, y) => x - y)
        assert.deepStrictEqual(processed, range(0, 100))
        assert.isAbove(a.length, 0)
        const [analytics, notifications] = yield* Effect.all(
          [take("analytics", "w", 100), take("notifications", "w", 100)],
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(analytics.map(numberOf), range(0, 100))
        assert.deepStrictEqual(notifications.map(numberOf), range(0, 100))
      })
    )
  )

  it.effect("messages keep their uuid, binary payload and metadata; one consumer gets them in order", () =>
    withMessaging(({ publisher, subscriber }) =>
      Effect.gen(function* () {
        const binary = Message.make(new Uint8Array([0, 255, 10, 13, 0, 128]), { metadata: { type: "raw" } })
        yield* publisher.publish("t", binary).pipe(Effect.withSpan("caller"))
        yield* Effect.forEach(range(0, 20), (i) => publisher.publish("t", ...numbered(i * 50, i * 50 + 50)), {
          concurrency: 5
        })
        const [first, ...rest] = yield* subscriber.subscribe("t", { group: "g", ...fast }).pipe(
          Stream.tap((received) => received.ack),
          Stream.take(1001),
          Stream.runCollect
        )
        assert.strictEqual(first?.message.uuid, binary.uuid)
        assert.deepStrictEqual(Array.from(first?.message.payload ?? []), [0, 255, 10, 13, 0, 128])
        // the metadata as given, plus the caller's trace context
        const { traceparent, ...given } = first?.message.metadata ?? {}
        assert.deepStrictEqual(given, { type: "raw" })
        assert.match(traceparent ?? "", /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/)
        const numbers = rest.map(numberOf)
        // concurrent publishes of 50 each land as whole batches, and the consumer reads the stream in its order
        assert.deepStrictEqual(
          [...numbers].sort((x, y) => x - y),
          range(0, 1000)
        )
        // entry ids only grow: the consumer got them in stream order
        const ids = rest.map((received) => received.id.split("-").map(Number) as [number, number])
        ids.slice(1).forEach(([ms, seq], i) => {
          const [previousMs, previousSeq] = ids[i] as [number, number]
          assert.isTrue(ms > previousMs || (ms === previousMs && seq > previousSeq))
        })
        for (let i = 0; i < numbers.length; i += 50) {
          const batch = numbers.slice(i, i + 50)
          assert.deepStrictEqual(batch, range(batch[0] as number, (batch[0] as number) + 50))
        }
      })
    )
  )

  it.effect(
    "a read whose reply was lost (it timed out while Redis was paused, then ran): its message comes at once, not after a claim",
    () =>
      Effect.gen(function* () {
        const topology = yield* TestTopology
        const keyPrefix = RedisServer.uniquePrefix("lost")
        const key = Wire.keyOf(keyPrefix, "t")
        // the node that serves the topic's key
        const serving = yield* Effect.flatMap(RedisClient.RedisClient, (redis) =>
          redis.use("cluster slots", async (client) =>
            client instanceof Cluster ? (client.slots[slotOf(key)]?.[0] ?? "") : ""
          )
        )
        const node = topology.nodes.find((n) => serving === "" || serving === `${n.host}:${n.port}`)
        assert.isDefined(node)
        const admin = new Redis(node.port, node.host)
        yield* Effect.addFinalizer(() => Effect.sync(() => admin.disconnect()))
        // the subscriber's client gives up on a call after 300 ms; claims could not rescue the message in this test
        const received = yield* Effect.gen(function* () {
          const subscriber = yield* Subscriber.make({ keyPrefix })
          const queue = yield* Queue.unbounded<number>()
          yield* subscriber.subscribe("t", { group: "g", pollInterval: "50 millis", claimIdleTime: "60 seconds" }).pipe(
            Stream.runForEach((message) => Effect.andThen(message.ack, Queue.offer(queue, numberOf(message)))),
            Effect.forkScoped
          )
          const publisher = yield* Publisher.make({ keyPrefix })
          yield* publisher.publish("t", ...numbered(0, 1))
          assert.strictEqual(yield* Queue.take(queue), 0)
          // one entry added and the server paused for writes at once (one pipeline: no read in between); the
          // consumer's next poll (XREADGROUP is a write) waits in Redis, times out here, and runs when the pause ends
          const [uuid, payload, metadata] = Wire.fieldsOf(Message.make("1"), undefined)
          yield* Effect.promise(() =>
            admin
              .pipeline()
              .xadd(key, "*", "uuid", uuid, "payload", payload, "metadata", metadata)
              .call("CLIENT", "PAUSE", "1000", "WRITE")
              .exec()
          )
          const started = Date.now()
          const next = yield* Queue.take(queue).pipe(Effect.timeout("8 seconds"))
          return { next, after: Date.now() - started }
        }).pipe(Effect.provide(anotherClient(topology, { commandTimeout: "300 millis" })))
        assert.strictEqual(received.next, 1)
        assert.isBelow(received.after, 5_000)
      }).pipe(Effect.scoped),
    20_000
  )

  it.effect(
    "a subscription that ended: what it took can still be acknowledged, the rest went back; it left the group",
    () =>
      withMessaging(({ publisher, subscriber, keyPrefix }) =>
        Effect.gen(function* () {
          yield* publisher.publish("t", ...numbered(0, 3))
          const taken = yield* subscriber
            .subscribe("t", { group: "g", ...fast })
            .pipe(Stream.take(2), Stream.runCollect)
          yield* Effect.forEach(taken, (received) => received.ack).pipe(Effect.timeout("5 seconds"))
          // the two taken are acknowledged; the third, read but never taken, was handed back to the group
          assert.strictEqual(yield* pendingCount(`${keyPrefix}{t}`, "g"), 1)
          const [third] = yield* subscriber
            .subscribe("t", { group: "g", ...fast })
            .pipe(Stream.take(1), Stream.runCollect)
          assert.deepStrictEqual([third === undefined ? -1 : numberOf(third), third?.deliveries], [2, 1])
          yield* third?.ack ?? Effect.void
          // and the subscriptions left the group once they held nothing (the retry holder too)
          const redis = yield* RedisClient.RedisClient
          const consumers = yield* redis.use("xinfo", (client) => client.xinfo("CONSUMERS", `${keyPrefix}{t}`, "g"))
          assert.deepStrictEqual(consumers, [])
        })
      )
  )

  it.effect("nack redelivers at once, with the delivery count; a delayed nack waits", () =>
    withMessaging(({ publisher, subscriber }) =>
      Effect.gen(function* () {
        yield* publisher.publish("t", ...numbered(0, 2))
        const seen = yield* Ref.make<Array<string>>([])
        const times: Array<number> = []
        yield* subscriber.subscribe("t", { group: "g", ...fast }).pipe(
          Stream.tap((received) =>
            Effect.gen(function* () {
              yield* Ref.update(seen, (all) => [...all, `${numberOf(received)}#${received.deliveries}`])
              times.push(Date.now())
              if (numberOf(received) === 0 && received.deliveries === 1) return yield* received.nack({ delay: 0 })
              if (numberOf(received) === 1 && received.deliveries === 1) {
                return yield* received.nack({ delay: "300 millis" })
              }
              yield* received.ack
            })
          ),
          Stream.take(4),
          Stream.runDrain
        )
        assert.deepStrictEqual(yield* Ref.get(seen), ["0#1", "1#1", "0#2", "1#2"])
        assert.isAtLeast((times[3] as number) - (times[1] as number), 280)
        assert.isBelow((times[2] as number) - (times[0] as number), 250)
      })
    )
  )

  it.effect("a deploy: a stopped consumer hands what it had not started to another at once; none handled twice", () =>
    withMessaging(({ publisher, subscriber, keyPrefix }) =>
      Effect.gen(function* () {
        const redis = yield* RedisClient.RedisClient
        yield* publisher.publish("jobs", ...numbered(0, 40))
        const handled: Array<readonly [worker: string, n: number, at: number]> = []
        const worker = (name: string) =>
          subscriber.consume(
            "jobs",
            (received) =>
              Effect.sleep("100 millis").pipe(
                Effect.andThen(Effect.sync(() => handled.push([name, numberOf(received), Date.now()])))
              ),
            // the default claim idle time (30 s): only the hand-over can make B this quick
            { group: "workers", consumer: name, concurrency: 2, pollInterval: "100 millis" }
          )
        const a = yield* Effect.forkChild(worker("a"))
        yield* Effect.sleep("250 millis").pipe(Effect.repeat({ until: () => handled.length >= 4 }))
        const stoppedAt = Date.now()
        const stopping = yield* Effect.forkChild(Fiber.interrupt(a))
        const b = yield* Effect.forkChild(worker("b"))
        yield* Effect.sleep("50 millis").pipe(
          Effect.repeat({ until: () => handled.length >= 40 }),
          Effect.timeout("10 seconds")
        )
        yield* Fiber.join(stopping)
        yield* Fiber.interrupt(b)
        const byB = handled.filter(([name]) => name === "b")
        assert.deepStrictEqual(
          handled.map(([, n]) => n).sort((x, y) => x - y),
          range(0, 40)
        )
        assert.isAbove(byB.length, 20)
        // B's first message finished within 1 s of A's stop (it takes 100 ms to handle)
        const handover = (byB[0]?.[2] ?? Infinity) - stoppedAt
        process.stdout.write(`deploy: B finished its first message ${handover} ms after A was stopped\n`)
        assert.isBelow(handover, 1000)
        assert.strictEqual(yield* pendingCount(`${keyPrefix}{jobs}`, "workers"), 0)
        const consumers = yield* redis.use("xinfo", (client) =>
          client.xinfo("CONSUMERS", `${keyPrefix}{jobs}`, "workers")
        )
        assert.deepStrictEqual(consumers, [])
      })
    )
  )

  it.effect("a stop hands back what a cut-off read moved to the consumer, and never takes another's message", () =>
    withMessaging(({ publisher, subscriber, keyPrefix }) =>
      Effect.gen(function* () {
        const redis = yield* RedisClient.RedisClient
        const key = `${keyPrefix}{t}`
        yield* publisher.publish("t", ...numbered(0, 5))
        const owners = redis.use(
          "xpending",
          (client) => client.xpending(key, "g", "-", "+", 10) as Promise<Array<[string, string, number, number]>>
        )
        yield* Effect.scoped(
          Effect.gen(function* () {
            // "c" takes message 0 and holds it (maxInFlight 1: it reads nothing more)
            const pulled = yield* subscriber
              .subscribe("t", { group: "g", consumer: "c", maxInFlight: 1, ...fast })
              .pipe(Stream.toPull)
            const [first] = yield* pulled
            assert.strictEqual(numberOf(first as Subscriber.Received), 0)
            // a read of c's cut off by a stop: Redis moved 1 and 2 to c, c never got them
            yield* redis.use("xreadgroup", (client) =>
              client.xreadgroup("GROUP", "g", "c", "COUNT", 2, "STREAMS", key, ">")
            )
            // another consumer took message 0 over meanwhile; c's late nack must leave it there
            yield* redis.use("xclaim", (client) =>
              client.call("XCLAIM", key, "g", "other", 0, (first as Subscriber.Received).id)
            )
            yield* (first as Subscriber.Received).nack({ delay: "1 second" })
            const held = yield* owners
            assert.deepStrictEqual(held[0]?.slice(0, 2), [(first as Subscriber.Received).id, "other"])
            assert.isTrue(held.slice(1).every(([, owner]) => owner === "c"))
            assert.strictEqual(yield* redis.use("zcard", (client) => client.zcard(`${key}:retry:g`)), 0)
          })
        )
        // c ended: 1 and 2 went back to the group (their delivery uncounted), 0 stays with "other"
        const next = yield* subscriber.subscribe("t", { group: "g", consumer: "d", ...fast }).pipe(
          Stream.tap((received) => received.ack),
          Stream.take(4),
          Stream.runCollect,
          Effect.timeout("2 seconds")
        )
        assert.deepStrictEqual(
          next.map((received) => [numberOf(received), received.deliveries]),
          [
            [1, 1],
            [2, 1],
            [3, 1],
            [4, 1]
          ]
        )
        assert.deepStrictEqual(
          (yield* owners).map(([, owner]) => owner),
          ["other"]
        )
      })
    )
  )

  it.effect("a failing message is retried on the default backoff, kept in Redis through a consumer restart", () =>
    withMessaging(({ publisher, subscriber, keyPrefix }) =>
      Effect.gen(function* () {
        yield* publisher.publish("pay", Message.make("charge"))
        const deliveries: Array<readonly [n: number, at: number]> = []
        const failing = (name: string) =>
          subscriber.consume(
            "pay",
            (received) =>
              Effect.sync(() => deliveries.push([received.deliveries, Date.now()])).pipe(
                Effect.andThen(Effect.fail("payment service down"))
              ),
            { group: "g", consumer: name, maxDeliveries: 6, pollInterval: "100 millis" }
          )
        const first = yield* Effect.forkChild(failing("first"))
        yield* Effect.sleep("20 millis").pipe(Effect.repeat({ until: () => deliveries.length >= 3 }))
        // the third delivery failed: its retry waits in Redis while the consumer is replaced
        yield* Fiber.interrupt(first)
        const waiting = yield* Effect.flatMap(RedisClient.RedisClient, (redis) =>
          redis.use("zcard", (client) => client.zcard(`${keyPrefix}{pay}:retry:g`))
        )
        assert.strictEqual(waiting, 1)
        const second = yield* Effect.forkChild(failing("second"))
        yield* Effect.sleep("20 millis").pipe(
          Effect.repeat({ until: () => deliveries.length >= 6 }),
          Effect.timeout("10 seconds")
        )
        yield* Fiber.interrupt(second)
        assert.deepStrictEqual(
          deliveries.map(([n]) => n),
          [1, 2, 3, 4, 5, 6]
        )
        // 100 ms doubling, jittered (±20%): each gap at least 0.7 of its nominal delay, and at most twice it plus
        // scheduling slack (a loaded machine runs the retry pass late, never early)
        const gaps = deliveries.slice(1).map(([, at], i) => at - (deliveries[i]?.[1] ?? at))
        process.stdout.write(`retries: ${gaps.join(", ")} ms apart (a consumer replaced after the third)\n`)
        gaps.forEach((gap, i) => {
          const nominal = 100 * 2 ** i
          assert.isAtLeast(gap, 0.7 * nominal, `gap ${i + 1}: ${gaps.join(", ")}`)
          assert.isAtMost(gap, 2 * nominal + 250, `gap ${i + 1}: ${gaps.join(", ")}`)
        })
        const dead = yield* entriesOf(`${keyPrefix}{pay}:dead`)
        assert.strictEqual(dead.length, 1)
      })
    )
  )

  it.effect("retention: maxLength trims only what every group handled; a lagging group still gets all 500", () =>
    withMessaging(({ subscriber, keyPrefix }) =>
      Effect.gen(function* () {
        const redis = yield* RedisClient.RedisClient
        const publisher = yield* Publisher.make({ keyPrefix, maxLength: 50 })
        const key = `${keyPrefix}{orders}`
        const length = redis.use("xlen", (client) => client.xlen(key))
        // two groups: "fast" keeps up, "slow" takes 10 and pauses (holding none pending)
        const slow = yield* subscriber.subscribe("orders", { group: "slow", ...fast }).pipe(
          Stream.tap((received) => received.ack),
          Stream.take(10),
          Stream.runCollect,
          Effect.forkChild
        )
        const fastGroup = yield* subscriber.subscribe("orders", { group: "fast", ...fast }).pipe(
          Stream.tap((received) => received.ack),
          Stream.take(501),
          Stream.runCollect,
          Effect.forkChild
        )
        yield* publisher.publish("orders", ...numbered(0, 10))
        assert.strictEqual((yield* Fiber.join(slow)).length, 10)
        for (let i = 10; i < 500; i += 10) yield* publisher.publish("orders", ...numbered(i, i + 10))
        // the slow group's 490 are all still there
        assert.isAtLeast(yield* length, 490)
        const rest = yield* subscriber.subscribe("orders", { group: "slow", ...fast }).pipe(
          Stream.tap((received) => received.ack),
          Stream.take(490),
          Stream.runCollect
        )
        assert.deepStrictEqual(rest.map(numberOf), range(10, 500))
        yield* publisher.publish("orders", ...numbered(500, 501))
        assert.strictEqual((yield* Fiber.join(fastGroup)).length, 501)
        // every group handled everything: the next publish trims back to about 50
        yield* publisher.publish("orders", ...numbered(501, 502))
        const after = yield* length
        assert.isAtLeast(after, 50)
        assert.isAtMost(after, 66)
      })
    )
  )

  it.effect("retention: maxAge trims handled entries only; the hard cap drops unhandled ones, counted per group", () =>
    withMessaging(({ subscriber, keyPrefix }) =>
      Effect.gen(function* () {
        const redis = yield* RedisClient.RedisClient
        const length = (topic: string) => redis.use("xlen", (client) => client.xlen(`${keyPrefix}{${topic}}`))
        const aged = yield* Publisher.make({ keyPrefix, maxAge: "300 millis" })
        const createGroup = (topic: string) =>
          redis.use("xgroup", (client) => client.xgroup("CREATE", `${keyPrefix}{${topic}}`, "g", "0", "MKSTREAM"))
        yield* createGroup("aged")
        yield* aged.publish("aged", ...numbered(0, 20))
        yield* Effect.sleep("500 millis")
        yield* aged.publish("aged", ...numbered(20, 21))
        assert.strictEqual(yield* length("aged"), 21) // unread by g: kept
        yield* subscriber.subscribe("aged", { group: "g", ...fast }).pipe(
          Stream.tap((received) => received.ack),
          Stream.take(21),
          Stream.runDrain
        )
        yield* Effect.sleep("500 millis")
        yield* aged.publish("aged", ...numbered(21, 22))
        assert.strictEqual(yield* length("aged"), 1) // handled and old: trimmed

        const capped = yield* Publisher.make({ keyPrefix, hardMaxLength: 100 })
        yield* createGroup("capped")
        const lostSoFar = Metric.value(Metric.withAttributes(Metrics.dropped, { topic: "capped", group: "g" }))
        const before = (yield* lostSoFar).count // the metric is the process's: other tests count too
        for (let i = 0; i < 500; i += 50) yield* capped.publish("capped", ...numbered(i, i + 50))
        assert.strictEqual(yield* length("capped"), 100)
        assert.strictEqual((yield* lostSoFar).count - before, 400)
        const left = yield* subscriber.subscribe("capped", { group: "g", ...fast }).pipe(
          Stream.tap((received) => received.ack),
          Stream.take(100),
          Stream.runCollect
        )
        assert.deepStrictEqual(left.map(numberOf), range(400, 500))
      })
    )
  )

  it.effect(
    "a consumer killed while holding 100 unacked messages: another one processes all 100 after the idle time",
    () =>
      withMessaging(({ publisher, subscriber, keyPrefix }) =>
        Effect.gen(function* () {
          const topology = yield* TestTopology
          yield* publisher.publish("jobs", ...numbered(0, 100))
          const child = yield* spawnChild("test/support/consumer-child.ts", topology, [
            keyPrefix,
            "jobs",
            "workers",
            "doomed",
            "100"
          ])
          assert.strictEqual(yield* firstLine(child), "holding 100")
          child.kill("SIGKILL")
          const killedAt = Date.now()
          const taken = yield* subscriber.subscribe("jobs", { group: "workers", consumer: "survivor", ...fast }).pipe(
            Stream.tap((received) => received.ack),
            Stream.take(100),
            Stream.runCollect
          )
          assert.deepStrictEqual(
            taken.map(numberOf).sort((x, y) => x - y),
            range(0, 100)
          )
          assert.isTrue(taken.every((received) => received.deliveries === 2))
          assert.isAtLeast(Date.now() - killedAt, 300)
          assert.strictEqual(yield* pendingCount(`${keyPrefix}{jobs}`, "workers"), 0)
        })
      )
  )

  it.effect(
    "a message that always fails lands in the dead letters after maxDeliveries, with its reason and origin",
    () =>
      withMessaging(({ publisher, subscriber, keyPrefix }) =>
        Effect.gen(function* () {
          const [poisonId] = yield* publisher.publish("t", Message.make("poison"))
          yield* publisher.publish("t", Message.make("fine"))
          const handled = yield* Ref.make<Array<string>>([])
          const consumer = yield* Effect.forkChild(
            subscriber.consume(
              "t",
              (received) =>
                Effect.gen(function* () {
                  yield* Ref.update(handled, (all) => [
                    ...all,
                    `${Message.text(received.message)}#${received.deliveries}`
                  ])
                  if (Message.text(received.message) === "poison") return yield* Effect.fail(new Error("cannot digest"))
                }),
              { group: "g", maxDeliveries: 3, ...fast }
            )
          )
          const dead = yield* entriesOf(`${keyPrefix}{t}:dead`).pipe(
            Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (entries) => entries.length > 0 }),
            Effect.timeout("10 seconds")
          )
          yield* Fiber.interrupt(consumer)
          assert.deepStrictEqual(yield* Ref.get(handled), ["poison#1", "fine#1", "poison#2", "poison#3"])
          assert.strictEqual(dead.length, 1)
          const letter = dead[0] as Record<string, string>
          assert.strictEqual(letter.payload, "poison")
          assert.strictEqual(letter.dead_reason, "Error: cannot digest")
          assert.strictEqual(letter.dead_topic, "t")
          assert.strictEqual(letter.dead_id, poisonId)
          assert.strictEqual(letter.dead_group, "g")
          assert.strictEqual(letter.dead_deliveries, "3")
          assert.strictEqual(yield* pendingCount(`${keyPrefix}{t}`, "g"), 0)
          // the dead letters are a topic like any other
          const [again] = yield* subscriber
            .subscribe(Subscriber.deadLetterTopic("t"), { group: "ops", ...fast })
            .pipe(Stream.take(1), Stream.runCollect)
          assert.strictEqual(again === undefined ? undefined : Message.text(again.message), "poison")
          // read as a message, a dead letter says where it came from and why
          assert.deepStrictEqual(again?.deadLettered, {
            reason: "Error: cannot digest",
            topic: "t",
            id: poisonId ?? "",
            group: "g",
            consumer: letter.dead_consumer ?? "",
            deliveries: 3,
            at: letter.dead_at ?? "",
            error: { name: "Error", message: "cannot digest" }
          })
        })
      )
  )

  it.effect("a dead letter keeps the handler's error: its tag and fields as JSON, credentials redacted", () =>
    withMessaging(({ publisher, subscriber, keyPrefix }) =>
      Effect.gen(function* () {
        class PaymentDown extends Data.TaggedError("PaymentDown")<{
          readonly amount: number
          readonly card: { readonly last4: string; readonly token: string }
          readonly password: string
        }> {}
        yield* publisher.publish("pay", Message.make("charge"))
        const consumer = yield* Effect.forkChild(
          subscriber.consume(
            "pay",
            () =>
              Effect.fail(new PaymentDown({ amount: 12.5, card: { last4: "4242", token: "tok_1" }, password: "pw" })),
            { group: "g", maxDeliveries: 1, ...fast }
          )
        )
        const dead = yield* entriesOf(`${keyPrefix}{pay}:dead`).pipe(
          Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (entries) => entries.length > 0 }),
          Effect.timeout("10 seconds")
        )
        yield* Fiber.interrupt(consumer)
        const letter = dead[0] as Record<string, string>
        assert.strictEqual(letter.dead_reason, "PaymentDown")
        const error = JSON.parse(letter.dead_error ?? "null") as Record<string, unknown>
        assert.deepStrictEqual(
          { _tag: error._tag, amount: error.amount, card: error.card, password: error.password },
          { _tag: "PaymentDown", amount: 12.5, card: { last4: "4242", token: "[redacted]" }, password: "[redacted]" }
        )
        assert.notInclude(letter.dead_error ?? "", "tok_1")
      })
    )
  )

  it.effect("the dead letters of a dead-letter topic: a letter that fails again moves on, in the same slot", () =>
    withMessaging(({ publisher, subscriber, keyPrefix }) =>
      Effect.gen(function* () {
        const deadTopic = Subscriber.deadLetterTopic("t")
        yield* publisher.publish(deadTopic, Message.make("still poison"))
        const consumer = yield* Effect.forkChild(
          subscriber.consume(deadTopic, () => Effect.fail(new Error("still cannot digest")), {
            group: "ops",
            maxDeliveries: 2,
            ...fast
          })
        )
        const dead = yield* entriesOf(`${keyPrefix}{t}:dead:dead`).pipe(
          Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (entries) => entries.length > 0 }),
          Effect.timeout("10 seconds")
        )
        yield* Fiber.interrupt(consumer)
        assert.deepStrictEqual(
          dead.map((letter) => [letter.payload, letter.dead_topic, letter.dead_reason]),
          [["still poison", deadTopic, "Error: still cannot digest"]]
        )
        assert.strictEqual(yield* pendingCount(`${keyPrefix}{t}:dead`, "ops"), 0)
      })
    )
  )

  it.effect("an entry that is not a message is dead-lettered and the subscription keeps going", () =>
    withMessaging(({ publisher, subscriber, keyPrefix }) =>
      Effect.gen(function* () {
        const redis = yield* RedisClient.RedisClient
        yield* redis.use("xadd", (client) => client.xadd(`${keyPrefix}{t}`, "*", "something", "else"))
        yield* redis.use("xadd", (client) =>
          client.xadd(`${keyPrefix}{t}`, "*", "uuid", "u", "payload", "p", "metadata", "[1,2]")
        )
        yield* publisher.publish("t", Message.make("good"))
        const [received] = yield* subscriber.subscribe("t", { group: "g", ...fast }).pipe(
          Stream.tap((r) => r.ack),
          Stream.take(1),
          Stream.runCollect
        )
        assert.strictEqual(received === undefined ? undefined : Message.text(received.message), "good")
        const dead = yield* entriesOf(`${keyPrefix}{t}:dead`)
        assert.deepStrictEqual(
          dead.map((entry) => entry.dead_reason),
          ["not a message: the entry has no uuid or payload field", "not a message: metadata is not an object"]
        )
      })
    )
  )

  it.effect("10k messages, 4 competing consumers: every message handled, each acked once, none lost", () =>
    withMessaging(({ publisher, subscriber, keyPrefix }) =>
      Effect.gen(function* () {
        const handled = new Map<number, number>()
        const done = yield* Queue.unbounded<void>()
        const consumers = yield* Effect.forEach(range(0, 4), (i) =>
          Effect.forkChild(
            subscriber.consume(
              "load",
              (received) =>
                Effect.sync(() => {
                  const n = numberOf(received)
                  handled.set(n, (handled.get(n) ?? 0) + 1)
                  if (handled.size === 10_000) Queue.offerUnsafe(done, undefined)
                }),
              { group: "g", consumer: `c${i}`, concurrency: 8, ...fast }
            )
          )
        )
        for (let start = 0; start < 10_000; start += 500)
          yield* publisher.publish("load", ...numbered(start, start + 500))
        yield* Queue.take(done).pipe(Effect.timeout("30 seconds"))
        yield* Effect.sleep("200 millis") // the last acks
        yield* Effect.forEach(consumers, Fiber.interrupt)
        assert.strictEqual(handled.size, 10_000)
        assert.strictEqual(yield* pendingCount(`${keyPrefix}{load}`, "g"), 0)
      })
    )
  )

  it.effect("backpressure: never more than maxInFlight unacknowledged messages", () =>
    withMessaging(({ publisher, subscriber }) =>
      Effect.gen(function* () {
        yield* publisher.publish("t", ...numbered(0, 50))
        const received = yield* Queue.unbounded<Subscriber.Received>()
        const fiber = yield* Effect.forkChild(
          subscriber
            .subscribe("t", { group: "g", maxInFlight: 10, batchCount: 4, ...fast })
            .pipe(Stream.runForEach((r) => Queue.offer(received, r)))
        )
        yield* Effect.sleep("300 millis")
        assert.strictEqual(yield* Queue.size(received), 10)
        const first = yield* Queue.takeN(received, 5)
        yield* Effect.forEach(first, (r) => r.ack)
        yield* Effect.sleep("300 millis")
        assert.strictEqual(yield* Queue.size(received), 10)
        yield* Fiber.interrupt(fiber)
      })
    )
  )

  it.effect("shutdown: running handlers finish and are acked; idle consumers leave the group", () =>
    withMessaging(({ publisher, subscriber, keyPrefix }) =>
      Effect.gen(function* () {
        const redis = yield* RedisClient.RedisClient
        yield* publisher.publish("t", ...numbered(0, 3))
        const started = yield* Queue.unbounded<number>()
        const finished = yield* Ref.make<Array<number>>([])
        const consumer = yield* Effect.forkChild(
          subscriber.consume(
            "t",
            (received) =>
              Queue.offer(started, numberOf(received)).pipe(
                Effect.andThen(Effect.sleep("300 millis")),
                Effect.andThen(Ref.update(finished, (all) => [...all, numberOf(received)]))
              ),
            { group: "g", consumer: "leaving", concurrency: 3, drainTimeout: "2 seconds", ...fast }
          )
        )
        yield* Queue.takeN(started, 3)
        yield* Fiber.interrupt(consumer)
        assert.deepStrictEqual([...(yield* Ref.get(finished))].sort(), [0, 1, 2])
        assert.strictEqual(yield* pendingCount(`${keyPrefix}{t}`, "g"), 0)
        const consumers = yield* redis.use("xinfo", (client) => client.xinfo("CONSUMERS", `${keyPrefix}{t}`, "g"))
        assert.deepStrictEqual(consumers, [])
      })
    )
  )

  it.effect("shutdown past drainTimeout: unfinished work stays pending for another consumer", () =>
    withMessaging(({ publisher, subscriber, keyPrefix }) =>
      Effect.gen(function* () {
        yield* publisher.publish("t", Message.make("slow"))
        const started = yield* Queue.unbounded<void>()
        const consumer = yield* Effect.forkChild(
          subscriber.consume("t", () => Queue.offer(started, undefined).pipe(Effect.andThen(Effect.never)), {
            group: "g",
            drainTimeout: "100 millis",
            ...fast
          })
        )
        yield* Queue.take(started)
        yield* Fiber.interrupt(consumer)
        assert.strictEqual(yield* pendingCount(`${keyPrefix}{t}`, "g"), 1)
        const [again] = yield* subscriber.subscribe("t", { group: "g", ...fast }).pipe(
          Stream.tap((r) => r.ack),
          Stream.take(1),
          Stream.runCollect
        )
        assert.strictEqual(again?.deliveries, 2)
      })
    )
  )

  it.effect(
    "1,000 subscriptions in one process, one topic each: every one receives, on one connection per node plus one",
    () =>
      withMessaging(({ publisher, subscriber }) =>
        Effect.gen(function* () {
          const topology = yield* TestTopology
          const topics = range(0, 1000).map((i) => `many-${i}`)
          const before = yield* connectionCount(topology)
          const subscriptions = yield* Effect.forEach(topics, (topic) =>
            Effect.forkChild(
              subscriber.subscribe(topic, { group: "g" }).pipe(
                Stream.tap((received) => received.ack),
                Stream.map((received) => Message.text(received.message)),
                Stream.take(2),
                Stream.runCollect
              )
            )
          )
          // one message before the subscriptions have settled, one after
          yield* Effect.forEach(topics, (topic) => publisher.publish(topic, Message.make(`${topic}/1`)), {
            concurrency: 100
          })
          yield* Effect.sleep("200 millis")
          const during = yield* connectionCount(topology)
          yield* Effect.forEach(topics, (topic) => publisher.publish(topic, Message.make(`${topic}/2`)), {
            concurrency: 100
          })
          const received = yield* Effect.forEach(subscriptions, Fiber.join).pipe(Effect.timeout("30 seconds"))
          assert.deepStrictEqual(
            received,
            topics.map((topic) => [`${topic}/1`, `${topic}/2`])
          )
          // the shared connection to each node and the one subscriber connection, whatever the number of subscriptions
          assert.isAtMost(during, maxClientConnections(topology), `connections: ${before} before, ${during} with 1,000`)
        })
      )
  )

  it.effect("33 subscriptions while the client's only dedicated connection is held: all receive", () =>
    Effect.gen(function* () {
      const topology = yield* TestTopology
      yield* withMessaging(({ publisher, subscriber }) =>
        Effect.gen(function* () {
          const redis = yield* RedisClient.RedisClient
          yield* redis.dedicated // held until the test ends
          const exhausted = yield* Effect.flip(Effect.scoped(redis.dedicated))
          assert.strictEqual(exhausted.reason._tag, "PoolExhausted")
          assert.include(exhausted.message, "maxDedicatedConnections")
          const topics = range(0, 33).map((i) => `pool-${i}`)
          const subscriptions = yield* Effect.forEach(topics, (topic) =>
            Effect.forkChild(subscriber.subscribe(topic, { group: "g" }).pipe(Stream.take(1), Stream.runCollect))
          )
          yield* Effect.forEach(topics, (topic) => publisher.publish(topic, Message.make(topic)))
          const received = yield* Effect.forEach(subscriptions, Fiber.join).pipe(Effect.timeout("10 seconds"))
          assert.deepStrictEqual(
            received.map(([r]) => (r === undefined ? undefined : Message.text(r.message))),
            topics
          )
        })
      ).pipe(
        Effect.scoped,
        Effect.provide(anotherClient(topology, { maxDedicatedConnections: 1, connectTimeout: "300 millis" }))
      )
    })
  )

  it.effect("a program that ends with its consumer still running (forked, never interrupted) exits by itself", () =>
    Effect.gen(function* () {
      const topology = yield* TestTopology
      for (const fork of ["child", "detached"]) {
        const started = Date.now()
        const child = yield* spawnChild("test/support/exit-child.ts", topology, [
          RedisServer.uniquePrefix("exit"),
          fork
        ])
        const output = yield* outputOf(child).pipe(Effect.timeout("20 seconds"))
        assert.deepStrictEqual(output.lines, ["handled 1", "done"], `forked as ${fork}`)
        assert.strictEqual(output.code, 0)
        assert.isBelow(Date.now() - started, 15_000)
      }
    })
  )

  it.effect("one trace from a publish to the handler in another process (W3C traceparent in the metadata)", () =>
    withMessaging(({ publisher, keyPrefix }) =>
      Effect.gen(function* () {
        const topology = yield* TestTopology
        // with a tracing backend, the handler gets a span of its own whose parent is the publish span; without one,
        // it runs under the publish span's context (no span per message, the trace still continues)
        for (const tracing of ["backend", "none"] as const) {
          const topic = `traced-${tracing}`
          const child = yield* spawnChild("test/support/trace-child.ts", topology, [keyPrefix, topic, tracing])
          const published = yield* Effect.gen(function* () {
            yield* publisher.publish(topic, Message.make("order"))
            const span = yield* Effect.currentSpan
            return { traceId: span.traceId }
          }).pipe(Effect.withSpan("checkout"))
          const line = yield* firstLine(child).pipe(Effect.timeout("20 seconds"))
          const [traceId, spanId, parentId] = line.split(" ")
          const [entry] = yield* entriesOf(`${keyPrefix}{${topic}}`)
          const metadata = JSON.parse(entry?.metadata ?? "{}") as Record<string, string>
          const [, publishTrace, publishSpan] = (metadata.traceparent ?? "").split("-")
          assert.strictEqual(publishTrace, published.traceId, tracing)
          assert.strictEqual(traceId, published.traceId, tracing)
          if (tracing === "backend") {
            assert.strictEqual(parentId, publishSpan)
            assert.notStrictEqual(spanId, publishSpan)
          } else {
            assert.strictEqual(spanId, publishSpan)
          }
        }
      })
    )
  )

  it.effect("publish and consume through the layers", () =>
    Effect.gen(function* () {
      const keyPrefix = RedisServer.uniquePrefix("layers")
      const program = Effect.gen(function* () {
        const publisher = yield* Publisher.Publisher
        const subscriber = yield* Subscriber.Subscriber
        yield* publisher.publish("hello", Message.make("world"))
        return yield* subscriber.subscribe("hello", { group: "g" }).pipe(Stream.take(1), Stream.runCollect)
      })
      const [received] = yield* program.pipe(
        Effect.provide(Layer.mergeAll(Publisher.layer({ keyPrefix }), Subscriber.layer({ keyPrefix })))
      )
      assert.strictEqual(received === undefined ? undefined : Message.text(received.message), "world")
    })
  )

  it.effect(
    "CommandBus: one handler per command type; an unknown type or an undecodable payload is dead-lettered and the bus goes on",
    () =>
      withBuses((keyPrefix) =>
        Effect.gen(function* () {
          const publisher = yield* Publisher.Publisher
          const bus = yield* CommandBus.make(
            CommandBus.define({ topic: "user-commands", commands: { CreateUser, DeleteUser } })
          )
          const handled = yield* Queue.unbounded<string>()
          const handler = yield* Effect.forkChild(
            bus.handle(
              {
                CreateUser: (command) => Queue.offer(handled, `create ${command.name}`),
                DeleteUser: (command) => Queue.offer(handled, `delete ${command.id}`)
              },
              { group: "user-service", ...fast }
            )
          )
          yield* bus.send("CreateUser", new CreateUser({ name: "Ann" }))
          yield* publisher.publish("user-commands", Message.make("{}", { metadata: { name: "RenameUser" } }))
          yield* publisher.publish(
            "user-commands",
            Message.make('{"id":"not a number"}', { metadata: { name: "DeleteUser" } })
          )
          yield* publisher.publish("user-commands", Message.make("not json", { metadata: { name: "DeleteUser" } }))
          yield* bus.send("DeleteUser", new DeleteUser({ id: 7 }))
          assert.deepStrictEqual(yield* Queue.takeN(handled, 2), ["create Ann", "delete 7"])
          yield* Fiber.interrupt(handler)
          const dead = yield* entriesOf(`${keyPrefix}{user-commands}:dead`)
          assert.deepStrictEqual(
            dead.map((entry) => entry.dead_reason),
            [
              "unknown type RenameUser",
              "the payload does not decode as DeleteUser",
              "the payload of a DeleteUser is not JSON"
            ]
          )
          assert.strictEqual(yield* pendingCount(`${keyPrefix}{user-commands}`, "user-service"), 0)
          const invalid = yield* Effect.flip(bus.send("DeleteUser", { id: "x" } as unknown as DeleteUser))
          assert.strictEqual(invalid.reason._tag, "InvalidMessage")
          assert.include(invalid.message, "Expected") // what is wrong, from the Schema
        })
      )
  )

  it.effect("EventBus: every subscriber gets every event of its types, typed (a Date survives the trip)", () =>
    withBuses((keyPrefix) =>
      Effect.gen(function* () {
        const bus = yield* EventBus.make(
          EventBus.define({ topic: "user-events", events: { UserCreated, UserDeleted } })
        )
        const mails = yield* Queue.unbounded<string>()
        const audit = yield* Queue.unbounded<string>()
        const subscribers = yield* Effect.all([
          Effect.forkChild(
            bus.subscribe(
              { UserCreated: (event) => Queue.offer(mails, `welcome ${event.name} ${event.at.toISOString()}`) },
              { group: "welcome-mails", ...fast }
            )
          ),
          Effect.forkChild(
            bus.subscribe(
              {
                UserCreated: (event) => Queue.offer(audit, `created ${event.name}`),
                UserDeleted: (event) => Queue.offer(audit, `deleted ${event.id}`)
              },
              { group: "audit", ...fast }
            )
          )
        ])
        const at = new Date("2026-01-02T03:04:05.000Z")
        yield* bus.publish("UserCreated", new UserCreated({ name: "Ann", at }))
        yield* bus.publish("UserDeleted", new UserDeleted({ id: 1 }))
        yield* bus.publish("UserCreated", new UserCreated({ name: "Bob", at }))
        assert.deepStrictEqual(yield* Queue.takeN(audit, 3), ["created Ann", "deleted 1", "created Bob"])
        assert.deepStrictEqual(yield* Queue.takeN(mails, 2), [
          "welcome Ann 2026-01-02T03:04:05.000Z",
          "welcome Bob 2026-01-02T03:04:05.000Z"
        ])
        yield* Effect.sleep("200 millis")
        yield* Effect.forEach(subscribers, Fiber.interrupt)
        // the mail subscriber skipped UserDeleted: acknowledged, not dead-lettered
        assert.strictEqual(yield* pendingCount(`${keyPrefix}{user-events}`, "welcome-mails"), 0)
        assert.deepStrictEqual(yield* entriesOf(`${keyPrefix}{user-events}:dead`), [])
      })
    )
  )
})
