import { assert } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Layer, Option, Queue, Schedule, Schema, Stream } from "effect"
import * as RedisClient from "../src/RedisClient.js"
import { groupKeys } from "../src/internal/adapter/keys.js"
import * as StreamAdapter from "../src/StreamAdapter.js"
import * as RedisServer from "../src/testing/RedisServer.js"
import { anotherClient, commandCalls, forEachTarget, TestTopology } from "./support/targets.js"
import { counterCount } from "./support/metrics.js"

const Task = Schema.Struct({
  title: Schema.String,
  priority: Schema.Number,
  done: Schema.Boolean,
  tags: Schema.Array(Schema.String),
  due: Schema.optional(Schema.Date)
})
type Task = typeof Task.Type

const Tasks = StreamAdapter.define({ name: "tasks", item: Task })

const task = (title: string, priority = 1, extra: Partial<Task> = {}): Task => ({
  title,
  priority,
  done: false,
  tags: [],
  ...extra
})

/** A typed handle on a key prefix of the test's own, on the suite's client. */
const tasksOn = (keyPrefix: string) => Effect.map(StreamAdapter.make({ keyPrefix }), (adapter) => adapter.stream(Tasks))

/** The same on a second, independent client: another instance of the application. */
const withOtherInstance = <A, E, R>(
  keyPrefix: string,
  f: (tasks: StreamAdapter.Handle<Task>) => Effect.Effect<A, E, R>
) =>
  Effect.flatMap(TestTopology, (topology) =>
    Effect.flatMap(StreamAdapter.StreamAdapter, (adapter) => f(adapter.stream(Tasks))).pipe(
      Effect.provide(StreamAdapter.layer({ keyPrefix }).pipe(Layer.provide(anotherClient(topology))))
    )
  )

/**
 * Follows a group (or one of its items) from its current state: takes a snapshot, subscribes after its position, and
 * collects the events into a queue from a fiber of its own.
 */
const follow = (tasks: StreamAdapter.Handle<Task>, groupId: string, id?: string) =>
  Effect.gen(function* () {
    const { position } = yield* tasks.snapshot(groupId)
    const received = yield* Queue.unbounded<StreamAdapter.ChangeEvent<Task>>()
    const fiber = yield* Effect.forkChild(
      Stream.runForEach(tasks.subscribe({ groupId, id, after: position }), (event) => Queue.offer(received, event))
    )
    return { received, fiber }
  })

const summary = (event: StreamAdapter.ChangeEvent<Task>) =>
  event.type === "create" || event.type === "update"
    ? `${event.type} ${event.id} ${event.data.title}`
    : event.type === "delete" || event.type === "expired"
      ? `${event.type} ${event.id} ${event.previous.title}`
      : event.type === "event"
        ? `event ${event.id ?? "-"} ${event.event.type}`
        : event.type

forEachTarget("StreamAdapter", (it, target) => {
  it.effect(
    "a set on one instance reaches another's subscriber: create, then update, then delete, with previous values",
    () =>
      Effect.gen(function* () {
        const keyPrefix = RedisServer.uniquePrefix("sa")
        const tasks = yield* tasksOn(keyPrefix)
        yield* withOtherInstance(keyPrefix, (other) =>
          Effect.gen(function* () {
            const { received, fiber } = yield* follow(other, "board")
            const created = yield* tasks.set("board", "t1", task("write tests"))
            const updated = yield* tasks.set("board", "t1", task("write more tests", 2))
            assert.deepStrictEqual(yield* tasks.delete("board", "t1"), Option.some(task("write more tests", 2)))
            assert.deepStrictEqual(yield* tasks.delete("board", "t1"), Option.none()) // nothing: no event
            const events = yield* Queue.takeN(received, 3)
            yield* Fiber.interrupt(fiber)
            assert.deepStrictEqual(events.map(summary), [
              "create t1 write tests",
              "update t1 write more tests",
              "delete t1 write more tests"
            ])
            assert.strictEqual(created.type, "create")
            assert.strictEqual(updated.type, "update")
            const [, update] = events
            assert.deepStrictEqual(update?.type === "update" ? update.previous : undefined, task("write tests"))
            assert.deepStrictEqual(
              events.map((event) => event.position.version),
              [created.position.version, updated.position.version, updated.position.version + 1]
            )
            assert.deepStrictEqual(yield* other.get("board", "t1"), Option.none())
          })
        )
      })
  )

  it.effect("set returns the item as stored, the same as get: what the schema does not know is not in it", () =>
    Effect.gen(function* () {
      const tasks = yield* tasksOn(RedisServer.uniquePrefix("stored"))
      const withExtra = { ...task("a"), secret: "not in the schema" } as Task
      const stored = yield* tasks.set("g", "a", withExtra)
      assert.deepStrictEqual(stored.data, task("a"))
      assert.deepStrictEqual(Option.getOrUndefined(yield* tasks.get("g", "a")), stored.data)
    })
  )

  it.effect("a clear racing sets of another instance: a group with items is always listed", () =>
    Effect.gen(function* () {
      const keyPrefix = RedisServer.uniquePrefix("race")
      const tasks = yield* tasksOn(keyPrefix)
      yield* withOtherInstance(keyPrefix, (other) =>
        Effect.forEach(
          Array.from({ length: 30 }, (_, round) => round),
          (round) =>
            Effect.gen(function* () {
              yield* tasks.set("g", "seed", task("seed"))
              yield* Effect.all([tasks.clear("g"), other.set("g", `r${round}`, task("r"))], {
                concurrency: "unbounded"
              })
              const items = yield* tasks.getGroup("g")
              const listed = (yield* tasks.listGroups).includes("g")
              assert.strictEqual(listed, items.length > 0, `round ${round}: ${items.length} items, listed ${listed}`)
            }),
          { discard: true }
        )
      )
    })
  )

  it.effect("concurrent creates of one id from two instances: exactly one create event", () =>
    Effect.gen(function* () {
      const keyPrefix = RedisServer.uniquePrefix("sa")
      const tasks = yield* tasksOn(keyPrefix)
      const { received, fiber } = yield* follow(tasks, "g")
      const writes = (handle: StreamAdapter.Handle<Task>, from: number) =>
        Effect.forEach(
          Array.from({ length: 10 }, (_, i) => from + i),
          (i) => handle.set("g", "same", task(`v${i}`)),
          {
            concurrency: "unbounded"
          }
        )
      const [mine, theirs] = yield* Effect.all(
        [writes(tasks, 0), withOtherInstance(keyPrefix, (other) => writes(other, 10))],
        {
          concurrency: "unbounded"
        }
      )
      const events = yield* Queue.takeN(received, 20)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(events.filter((event) => event.type === "create").length, 1)
      assert.strictEqual([...mine, ...theirs].filter((stored) => stored.type === "create").length, 1)
      assert.deepStrictEqual(
        events.map((event) => event.position.version),
        Array.from({ length: 20 }, (_, i) => (events[0]?.position.version ?? 0) + i)
      )
    })
  )

  it.effect("a subscriber away while 100 changes happen gets all 100 on resume, in order, without duplicates", () =>
    Effect.gen(function* () {
      const tasks = yield* tasksOn(RedisServer.uniquePrefix("sa"))
      yield* tasks.set("g", "first", task("first"))
      const { position } = yield* tasks.snapshot("g")
      yield* tasks.set("g", "second", task("second"))
      const [seen] = yield* tasks.subscribe({ groupId: "g", after: position }).pipe(Stream.take(1), Stream.runCollect)
      assert.strictEqual(seen?.type, "create")
      // away: 100 changes
      yield* Effect.forEach(
        Array.from({ length: 100 }, (_, i) => i),
        (i): Effect.Effect<unknown, StreamAdapter.StreamAdapterError> =>
          i % 3 === 2
            ? tasks.send({ groupId: "g", id: `t${i}` }, { type: "ping", data: i })
            : tasks.set("g", `t${i}`, task(`change ${i}`))
      )
      const resumed = yield* tasks
        .subscribe({ groupId: "g", after: seen?.position })
        .pipe(Stream.take(100), Stream.runCollect)
      assert.deepStrictEqual(
        resumed.map((event) => event.position.version),
        Array.from({ length: 100 }, (_, i) => (seen?.position.version ?? 0) + 1 + i)
      )
      assert.strictEqual(summary(resumed[0] as StreamAdapter.ChangeEvent<Task>), "create t0 change 0")
      assert.strictEqual(summary(resumed[2] as StreamAdapter.ChangeEvent<Task>), "event t2 ping")
      // a resume from further back than the log holds is a reset, not a silent gap
      const small = yield* Effect.map(
        StreamAdapter.make({ keyPrefix: RedisServer.uniquePrefix("sa"), changeLogLength: 5 }),
        (a) => a.stream(Tasks)
      )
      const first = yield* small.set("g", "a", task("a"))
      yield* Effect.forEach(
        Array.from({ length: 300 }, (_, i) => i),
        (i) => small.set("g", `x${i}`, task(`x${i}`))
      )
      const [reset] = yield* small
        .subscribe({ groupId: "g", after: first.position })
        .pipe(Stream.take(1), Stream.runCollect)
      assert.deepStrictEqual(reset?.type === "reset" ? reset.reason : undefined, "truncated")
    })
  )

  it.effect(
    "a subscriber that does not keep up holds at most its live buffer, then gets every change in order; a malformed message or a change whose message was lost is read from the log",
    () =>
      Effect.gen(function* () {
        const keyPrefix = RedisServer.uniquePrefix("sa")
        const redis = yield* RedisClient.RedisClient
        const adapter = yield* StreamAdapter.make({ keyPrefix, liveBufferBytes: 8 * 1024, checkInterval: "200 millis" })
        const tasks = adapter.stream(Tasks)
        const keys = groupKeys(keyPrefix, "tasks", "slow")
        const overflows = counterCount("stream_adapter_live_overflows")
        const overflowsBefore = yield* overflows
        // the subscriber stalls after its first change, until the gate opens
        const gate = yield* Deferred.make<void>()
        const received = yield* Queue.unbounded<StreamAdapter.ChangeEvent<Task>>()
        const { position } = yield* tasks.snapshot("slow")
        const fiber = yield* Effect.forkChild(
          Stream.runForEach(tasks.subscribe({ groupId: "slow", after: position }), (event) =>
            Effect.andThen(
              Queue.offer(received, event),
              event.type === "create" && event.id === "t0" ? Deferred.await(gate) : Effect.void
            )
          )
        )
        yield* tasks.set("slow", "t0", task("first"))
        assert.strictEqual(summary(yield* Queue.take(received)), "create t0 first")
        // stalled: a malformed message on the group's channel, then 300 changes of ~200 bytes (~60 KB of messages)
        yield* redis.send("PUBLISH", keys.channel, "not json")
        const ids = Array.from({ length: 300 }, (_, i) => `t${i + 1}`)
        yield* Effect.forEach(ids, (id) => tasks.set("slow", id, task(`${id} ${"x".repeat(100)}`)))
        yield* Deferred.succeed(gate, undefined)
        const caughtUp = yield* Queue.takeN(received, 300).pipe(Effect.timeout("10 seconds"))
        assert.deepStrictEqual(
          caughtUp.map((event) => (event.type === "create" ? event.id : event.type)),
          ids
        )
        assert.isAtLeast((yield* overflows) - overflowsBefore, 1, "the live buffer filled up and was counted")

        // a change written as the write script does, but whose message was lost, and nothing after it: a quiet tick
        // finds it
        const [epoch, version, last] = yield* redis.send<ReadonlyArray<string>>(
          "HMGET",
          keys.meta,
          "epoch",
          "version",
          "last"
        )
        const lost = Number(version) + 1
        const event = { epoch, w: "lost-write", version: lost, p: last, type: "create", id: "lost", data: task("lost") }
        yield* redis.send("XADD", keys.log, `0-${lost}`, "events", JSON.stringify([event]))
        yield* redis.send("HSET", keys.meta, "version", lost, "last", "lost-write")
        const found = yield* Queue.take(received).pipe(Effect.timeout("3 seconds"))
        assert.strictEqual(summary(found), "create lost lost")
        assert.strictEqual(found.position.version, lost)
        yield* Fiber.interrupt(fiber)
      })
  )

  it.effect("a snapshot and a subscription after its position: the state, then exactly the changes after it", () =>
    Effect.gen(function* () {
      const tasks = yield* tasksOn(RedisServer.uniquePrefix("sa"))
      const empty = yield* tasks.snapshot("new-group")
      assert.deepStrictEqual(empty, { items: [], position: { epoch: "", version: 0 } })
      // from before the group's first write: its first events, no reset
      const first = yield* Effect.forkChild(
        tasks.subscribe({ groupId: "new-group", after: empty.position }).pipe(Stream.take(2), Stream.runCollect)
      )
      yield* tasks.set("new-group", "a", task("a"))
      yield* tasks.set("new-group", "b", task("b"))
      assert.deepStrictEqual((yield* Fiber.join(first)).map(summary), ["create a a", "create b b"])
      const snapshot = yield* tasks.snapshot("new-group")
      assert.deepStrictEqual([...snapshot.items.map((item) => item.id)].sort(), ["a", "b"])
      yield* tasks.set("new-group", "c", task("c"))
      const [next] = yield* tasks
        .subscribe({ groupId: "new-group", after: snapshot.position })
        .pipe(Stream.take(1), Stream.runCollect)
      assert.strictEqual(next === undefined ? undefined : summary(next), "create c c")
      assert.strictEqual(next?.position.version, snapshot.position.version + 1)
    })
  )

  it.effect("query: every operator, ordering, offset and limit", () =>
    Effect.gen(function* () {
      const tasks = yield* tasksOn(RedisServer.uniquePrefix("sa"))
      const day = (d: number) => new Date(Date.UTC(2026, 0, d))
      yield* Effect.forEach(
        [
          ["a", task("alpha", 3, { tags: ["x", "y"], due: day(3) })],
          ["b", task("beta", 1, { done: true, tags: ["y"], due: day(1) })],
          ["c", task("gamma", 2, { tags: [] })],
          ["d", task("delta", 5, { done: true, tags: ["x"], due: day(2) })]
        ] as const,
        ([id, data]) => tasks.set("q", id, data)
      )
      const ids = (q: StreamAdapter.Query<Task>) =>
        Effect.map(tasks.query("q", q), (items) => items.map((item) => item.id))
      const sorted = (q: StreamAdapter.Query<Task>) => Effect.map(ids(q), (found) => [...found].sort())
      const cases: ReadonlyArray<readonly [StreamAdapter.Query<Task>, ReadonlyArray<string>, "sorted" | "ordered"]> = [
        [{ where: { done: true } }, ["b", "d"], "sorted"],
        [{ where: { done: { eq: false } } }, ["a", "c"], "sorted"],
        [{ where: { title: { ne: "beta" } } }, ["a", "c", "d"], "sorted"],
        [{ where: { priority: { gt: 2 } } }, ["a", "d"], "sorted"],
        [{ where: { priority: { gte: 3 } } }, ["a", "d"], "sorted"],
        [{ where: { priority: { lt: 2 } } }, ["b"], "sorted"],
        [{ where: { priority: { lte: 2 } } }, ["b", "c"], "sorted"],
        [{ where: { priority: { gt: 1, lt: 5 } } }, ["a", "c"], "sorted"],
        [{ where: { title: { in: ["alpha", "delta", "omega"] } } }, ["a", "d"], "sorted"],
        [{ where: { title: { contains: "et" } } }, ["b"], "sorted"],
        [{ where: { tags: { contains: "x" } } }, ["a", "d"], "sorted"],
        [{ where: { due: { gte: day(2) } } }, ["a", "d"], "sorted"],
        [{ where: { done: true, priority: { gt: 1 } } }, ["d"], "sorted"],
        [{ orderBy: "priority" }, ["b", "c", "a", "d"], "ordered"],
        [{ orderBy: "priority", orderDirection: "desc" }, ["d", "a", "c", "b"], "ordered"],
        [{ orderBy: "title" }, ["a", "b", "d", "c"], "ordered"],
        [{ orderBy: "due" }, ["b", "d", "a", "c"], "ordered"], // without a due date: last
        [{ orderBy: "due", orderDirection: "desc" }, ["a", "d", "b", "c"], "ordered"],
        [{ orderBy: "priority", limit: 2 }, ["b", "c"], "ordered"],
        [{ orderBy: "priority", offset: 1, limit: 2 }, ["c", "a"], "ordered"],
        [{ orderBy: "priority", offset: 3 }, ["d"], "ordered"],
        [{ orderBy: "priority", offset: 10 }, [], "ordered"],
        [{ orderBy: "priority", limit: 0 }, [], "ordered"]
      ]
      for (const [q, expected, kind] of cases) {
        const found = kind === "sorted" ? yield* sorted(q) : yield* ids(q)
        assert.deepStrictEqual(found, expected, JSON.stringify(q))
      }
      for (const bad of [
        { limit: -1 },
        { offset: -2 },
        { limit: 1.5 },
        { where: { priority: { between: 1 } } }
      ] as const) {
        const error = yield* Effect.flip(tasks.query("q", bad as StreamAdapter.Query<Task>))
        assert.strictEqual(error.reason._tag, "InvalidQuery", JSON.stringify(bad))
      }
    })
  )

  it.effect("tricky group names and ids never collide: a group a:b is not group a's item b; __proto__ is an id", () =>
    Effect.gen(function* () {
      const tasks = yield* tasksOn(RedisServer.uniquePrefix("sa"))
      const { received, fiber } = yield* follow(tasks, "a")
      const ids = ["b", "x:y", "*", "?", "[", "]", "{tag}", "with space", "ünï 🚀", "a:b", "__proto__", "constructor"]
      for (const id of ids) yield* tasks.set("a:b", id, task(`in a:b ${id}`))
      for (const id of ids) yield* tasks.set("a", id, task(`in a ${id}`))
      yield* tasks.set("*", "b", task("in *"))
      const events = yield* Queue.takeN(received, ids.length)
      yield* Effect.sleep("100 millis")
      assert.strictEqual(yield* Queue.size(received), 0)
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(
        events.map((event) => (event.type === "create" ? event.data.title : event.type)),
        ids.map((id) => `in a ${id}`)
      )
      const group = yield* tasks.getGroup("a:b")
      assert.deepStrictEqual([...group.map((item) => item.id)].sort(), [...ids].sort())
      const snapshot = yield* tasks.snapshot("a")
      assert.deepStrictEqual(
        snapshot.items.find((item) => item.id === "__proto__"),
        { id: "__proto__", data: task("in a __proto__") }
      )
      assert.deepStrictEqual(yield* tasks.get("a", "b"), Option.some(task("in a b")))
      assert.deepStrictEqual(yield* tasks.get("a:b", "b"), Option.some(task("in a:b b")))
      assert.deepStrictEqual([...(yield* tasks.listGroups)].sort(), ["*", "a", "a:b"])
      yield* tasks.clear("a:b")
      assert.deepStrictEqual([...(yield* tasks.listGroups)].sort(), ["*", "a"])
      assert.deepStrictEqual(yield* tasks.getGroup("a:b"), [])
    })
  )

  it.effect("an item-level subscription gets that item's changes and custom events, and the group's clears", () =>
    Effect.gen(function* () {
      const tasks = yield* tasksOn(RedisServer.uniquePrefix("sa"))
      const { received, fiber } = yield* follow(tasks, "g", "mine")
      yield* tasks.set("g", "other", task("other"))
      yield* tasks.set("g", "mine", task("mine"))
      yield* tasks.send({ groupId: "g" }, { type: "group-wide" })
      yield* tasks.send({ groupId: "g", id: "mine" }, { type: "for-me", data: { n: 1 } })
      yield* tasks.clear("g")
      const events = yield* Queue.takeN(received, 3)
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(events.map(summary), ["create mine mine", "event mine for-me", "clear"])
      const custom = events[1]
      assert.deepStrictEqual(custom?.type === "event" ? custom.event : undefined, { type: "for-me", data: { n: 1 } })
    })
  )

  it.effect(
    "items with a time to live: renewed by each set (a heartbeat), the others expire on every instance with an expired event, within the sweep interval",
    () =>
      Effect.gen(function* () {
        const keyPrefix = RedisServer.uniquePrefix("sa")
        const Presence = StreamAdapter.define({ name: "presence", item: Task, ttl: "700 millis" })
        const interval = 100
        // this instance sweeps every 100 ms; the other instance only follows the group
        const online = (yield* StreamAdapter.make({ keyPrefix, expiryInterval: interval })).stream(Presence)
        yield* withOtherInstance(keyPrefix, () =>
          Effect.gen(function* () {
            const viewer = (yield* StreamAdapter.StreamAdapter).stream(Presence)
            const { position } = yield* viewer.snapshot("room")
            const received = yield* Queue.unbounded<readonly [StreamAdapter.ChangeEvent<Task>, number]>()
            const fiber = yield* Effect.forkChild(
              Stream.runForEach(viewer.subscribe({ groupId: "room", after: position }), (event) =>
                Queue.offer(received, [event, Date.now()] as const)
              )
            )
            const setAt = Date.now()
            yield* online.set("room", "ann", task("ann")) // renewed below: stays
            yield* online.set("room", "bob", task("bob")) // never renewed: expires after 700 ms
            yield* online.set("room", "cid", task("cid"), { ttl: "300 millis" }) // its own ttl
            yield* online.set("room", "dan", task("dan"))
            yield* online.set("room", "dan", task("dan"), { ttl: Duration.infinity }) // the deadline dropped
            yield* online.set("room", "eve", task("eve"))
            yield* online.delete("room", "eve") // deleted: no expiry later
            const heartbeat = yield* Effect.forkChild(
              Effect.repeat(online.set("room", "ann", task("ann")), Schedule.spaced("200 millis"))
            )
            const expiredOf = (id: string) =>
              Effect.gen(function* () {
                for (;;) {
                  const [event, at] = yield* Queue.take(received)
                  if (event.type === "expired" && event.id === id) return { event, at }
                  assert.notStrictEqual(event.type, "expired", `unexpected ${summary(event)}`)
                }
              })
            const cid = yield* expiredOf("cid")
            const bob = yield* expiredOf("bob")
            assert.strictEqual(summary(bob.event), "expired bob bob")
            // removed within the sweep interval of its deadline (plus a round trip and the event's way)
            const bobLate = bob.at - (setAt + 700)
            const cidLate = cid.at - (setAt + 300)
            assert.isAtLeast(bobLate, -50, `bob expired ${-bobLate} ms early`)
            assert.isBelow(bobLate, interval + 400, `bob expired ${bobLate} ms after its deadline`)
            assert.isBelow(cidLate, interval + 400, `cid expired ${cidLate} ms after its deadline`)
            yield* Effect.sleep("900 millis") // ann keeps beating, dan has no deadline
            assert.deepStrictEqual((yield* viewer.getGroup("room")).map((item) => item.id).sort(), ["ann", "dan"])
            yield* Fiber.interrupt(heartbeat)
            yield* expiredOf("ann") // the heartbeat stopped (a crashed client): gone within its ttl and the bound
            yield* Effect.sleep(`${interval * 3} millis`)
            assert.deepStrictEqual(
              (yield* viewer.getGroup("room")).map((item) => item.id),
              ["dan"]
            )
            assert.strictEqual(yield* Queue.size(received), 0)
            yield* Fiber.interrupt(fiber)
          })
        )
      })
  )

  it.effect(
    "a failover that lost the last writes, then new writes numbered the same: the subscriber gets a reset, not a skip",
    () =>
      Effect.gen(function* () {
        const keyPrefix = RedisServer.uniquePrefix("sa")
        const tasks = yield* tasksOn(keyPrefix)
        const redis = yield* RedisClient.RedisClient
        const { received, fiber } = yield* follow(tasks, "g")
        for (const id of ["a", "b", "c", "d", "e"]) yield* tasks.set("g", id, task(id))
        const seen = yield* Queue.takeN(received, 5)
        assert.deepStrictEqual(
          seen.map((event) => event.position.version),
          [1, 2, 3, 4, 5]
        )
        // what a failover to a replica that had only the first 3 writes leaves: versions 4 and 5 never happened
        const tag = `${keyPrefix}{tasks:g}`
        const [entry] = yield* redis.use("xrange", (c) => c.xrange(`${tag}:log`, "0-3", "0-3"))
        const third = (JSON.parse(entry?.[1][1] ?? "[]") as Array<{ w: string }>).at(-1)?.w ?? ""
        yield* redis.use("rewind", (c) =>
          c
            .multi()
            .hset(`${tag}:meta`, "version", 3, "last", third)
            .xdel(`${tag}:log`, "0-4", "0-5")
            .xsetid(`${tag}:log`, "0-3")
            .hdel(`${tag}:items`, "d", "e")
            .exec()
        )
        // the new master numbers new writes 4 and 5 again
        yield* tasks.set("g", "x", task("x"))
        yield* tasks.set("g", "y", task("y"))
        const next = yield* Queue.take(received).pipe(Effect.timeout("10 seconds"))
        yield* Fiber.interrupt(fiber)
        assert.strictEqual(next.type, "reset")
        assert.deepStrictEqual(next.position.version, 5)
      })
  )

  it.effect("a group of 10k items reads whole in one call", () =>
    Effect.gen(function* () {
      const tasks = yield* tasksOn(RedisServer.uniquePrefix("sa"))
      yield* Effect.forEach(
        Array.from({ length: 10_000 }, (_, i) => i),
        (i) => tasks.set("big", `t${i}`, task(`task ${i}`, i % 10)),
        {
          concurrency: 200,
          discard: true
        }
      )
      const group = yield* tasks.getGroup("big")
      assert.strictEqual(group.length, 10_000)
      const top = yield* tasks.query("big", { where: { priority: 9 }, orderBy: "title", limit: 3 })
      assert.deepStrictEqual(
        top.map((item) => item.data.title),
        ["task 1009", "task 1019", "task 1029"]
      )
    })
  )

  it.effect("100 concurrent gets of a group go to Redis as a few HMGETs, each caller getting its own item", () =>
    Effect.gen(function* () {
      const topology = yield* TestTopology
      const tasks = yield* tasksOn(RedisServer.uniquePrefix("sa"))
      yield* Effect.forEach(
        Array.from({ length: 50 }, (_, i) => i),
        (i) => tasks.set("g", `t${i}`, task(`task ${i}`)),
        { concurrency: "unbounded", discard: true }
      )
      const [hmgetBefore, hgetBefore] = [yield* commandCalls(topology, "hmget"), yield* commandCalls(topology, "hget")]
      const items = yield* Effect.forEach(
        Array.from({ length: 100 }, (_, i) => i),
        (i) => tasks.get("g", `t${i}`),
        { concurrency: "unbounded" }
      )
      const hmgets = (yield* commandCalls(topology, "hmget")) - hmgetBefore
      assert.deepStrictEqual(
        items.map((item) => Option.getOrUndefined(item)?.title),
        Array.from({ length: 100 }, (_, i) => (i < 50 ? `task ${i}` : undefined))
      )
      assert.isAtLeast(hmgets, 1)
      assert.isAtMost(hmgets, 3)
      assert.strictEqual((yield* commandCalls(topology, "hget")) - hgetBefore, 0)
    })
  )

  it.effect(
    "concurrent sets of a group, one id twice: one log entry for the batch, create then update with the first as previous; a resume from inside the batch gets exactly what follows",
    () =>
      Effect.gen(function* () {
        const topology = yield* TestTopology
        const tasks = yield* tasksOn(RedisServer.uniquePrefix("sa"))
        const { position } = yield* tasks.snapshot("g")
        const xaddBefore = yield* commandCalls(topology, "xadd")
        const titles = ["a1", "b1", "a2", "c1", "b2"]
        const stored = yield* Effect.forEach(titles, (title) => tasks.set("g", title.slice(0, 1), task(title)), {
          concurrency: "unbounded"
        })
        assert.strictEqual((yield* commandCalls(topology, "xadd")) - xaddBefore, 1)
        assert.deepStrictEqual(
          stored.map((item) => `${item.type} ${item.id} ${item.position.version - position.version}`),
          ["create a 1", "create b 2", "update a 3", "create c 4", "update b 5"]
        )
        const all = yield* tasks.subscribe({ groupId: "g", after: position }).pipe(Stream.take(5), Stream.runCollect)
        assert.deepStrictEqual(all.map(summary), [
          "create a a1",
          "create b b1",
          "update a a2",
          "create c c1",
          "update b b2"
        ])
        const updated = all[2]
        assert.strictEqual(updated?.type === "update" ? updated.previous.title : undefined, "a1")
        const rest = yield* tasks
          .subscribe({ groupId: "g", after: stored[2]?.position })
          .pipe(Stream.take(2), Stream.runCollect)
        assert.deepStrictEqual(rest.map(summary), ["create c c1", "update b b2"])
        assert.deepStrictEqual((yield* tasks.getGroup("g")).map((item) => item.data.title).sort(), ["a2", "b2", "c1"])
      })
  )
  it.effect("items that do not decode: get fails naming group and id; the rest of the group still reads", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const keyPrefix = RedisServer.uniquePrefix("sa")
      const tasks = yield* tasksOn(keyPrefix)
      yield* tasks.set("g", "good", task("good"))
      const items = `${keyPrefix}{tasks:g}:items`
      yield* redis.use("hset", (c) => c.hset(items, "bad", '{"title":1}', "worse", "not json"))
      const error = yield* Effect.flip(tasks.get("g", "bad"))
      assert.strictEqual(error.reason._tag, "Decode")
      assert.strictEqual(error.groupId, "g")
      assert.strictEqual(error.id, "bad")
      assert.deepStrictEqual(yield* tasks.getGroup("g"), [{ id: "good", data: task("good") }])
      assert.strictEqual((yield* Effect.flip(tasks.getGroup("g", { onInvalid: "fail" }))).reason._tag, "Decode")
      const invalid = yield* Effect.flip(tasks.set("g", "x", { title: 5 } as unknown as Task))
      assert.strictEqual(invalid.reason._tag, "InvalidItem")
      assert.include(invalid.message, "Expected") // what is wrong, from the Schema
      assert.deepStrictEqual(yield* tasks.get("g", "x"), Option.none())
    })
  )

  it.effect("layerWithOwnClient connects from Motia's options (single node: host, port, database)", () =>
    Effect.gen(function* () {
      const topology = yield* TestTopology
      const node = topology.nodes[0] as RedisServer.Node
      if (target.name === "cluster") {
        // Motia's options name one server: on a cluster the adapter takes a RedisClient layer instead
        const adapter = yield* StreamAdapter.StreamAdapter.pipe(
          Effect.provide(StreamAdapter.layer({ keyPrefix: "c:" }).pipe(Layer.provide(anotherClient(topology))))
        )
        assert.strictEqual(adapter.stream(Tasks).name, "tasks")
        return
      }
      const stored = yield* Effect.flatMap(StreamAdapter.StreamAdapter, (adapter) =>
        adapter.stream(Tasks).set("g", "1", task("via options"))
      ).pipe(
        Effect.provide(
          StreamAdapter.layerWithOwnClient({ host: node.host, port: node.port, database: 2, keyPrefix: "opt:" })
        )
      )
      assert.strictEqual(stored.type, "create")
      const redis = yield* RedisClient.RedisClient
      assert.strictEqual(yield* redis.use("exists", (c) => c.exists("opt:{tasks:g}:items")), 0) // another database
    })
  )
})
