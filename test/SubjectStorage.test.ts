import { assert } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Fiber, Layer, Option, Queue, Result, Schedule, Schema, Stream } from "effect"
import * as RedisClient from "../src/RedisClient.js"
import * as SubjectStorage from "../src/SubjectStorage.js"
import { slotOf, slotTag } from "../src/internal/slot.js"
import * as Scripts from "../src/internal/subjects/scripts.js"
import { options, raw, withStorage } from "./support/subjects.js"
import { anotherClient, forEachTarget, TestTopology } from "./support/targets.js"

/** Runs `f` with a storage on a second, independent client: another instance of the application. */
const withOtherInstance = <A, E, R>(
  opts: SubjectStorage.Options,
  f: (storage: SubjectStorage.Service) => Effect.Effect<A, E, R>
) =>
  Effect.flatMap(TestTopology, (topology) =>
    Effect.flatMap(SubjectStorage.SubjectStorage, f).pipe(
      Effect.provide(SubjectStorage.layer(opts).pipe(Layer.provide(anotherClient(topology))))
    )
  )

const User = SubjectStorage.define({
  properties: { name: Schema.String, age: Schema.Number, visits: Schema.Number },
  extended: { lastLogin: Schema.Date }
})

const plusOne = (previous: Option.Option<unknown>) => (Option.getOrElse(previous, () => 0) as number) + 1

forEachTarget("SubjectStorage", (it) => {
  it.effect("the seed's own test: store a property, then load it", () =>
    withStorage(options(), (storage) =>
      Effect.gen(function* () {
        yield* storage.store("test-subject", { inserts: [["email", "test@example.com"]] })
        const loaded = yield* storage.load("test-subject")
        assert.strictEqual(loaded.properties.email, "test@example.com")
        assert.deepStrictEqual(loaded.extended, {})
      })
    )
  )

  it.effect("200 concurrent loads: each gets its own subject; one whose key is not a hash fails alone, typed", () =>
    Effect.gen(function* () {
      const opts = options()
      yield* withStorage(opts, (storage) =>
        Effect.gen(function* () {
          const subjects = Array.from({ length: 200 }, (_, i) => `user-${i}`)
          yield* Effect.forEach(subjects, (subject, i) => storage.store(subject, { inserts: [["n", i]] }), {
            concurrency: 50,
            discard: true
          })
          yield* raw((client) => client.set(`s:${opts.keyPrefix}not-a-hash`, "x"))
          const loads = yield* Effect.forEach(
            [...subjects, "not-a-hash", "nobody"],
            (subject) => Effect.result(storage.load(subject)),
            { concurrency: "unbounded" }
          )
          assert.deepStrictEqual(
            loads.slice(0, 200).map((load) => (Result.isSuccess(load) ? load.success.properties.n : "failed")),
            subjects.map((_, i) => i)
          )
          const wrongType = loads[200]
          assert.isTrue(wrongType !== undefined && Result.isFailure(wrongType))
          if (wrongType !== undefined && Result.isFailure(wrongType)) {
            assert.strictEqual(wrongType.failure.reason._tag, "Redis")
            assert.strictEqual(wrongType.failure.subject, "not-a-hash")
          }
          const nobody = loads[201]
          assert.deepStrictEqual(nobody !== undefined && Result.isSuccess(nobody) ? nobody.success : undefined, {
            properties: {},
            extended: {}
          })
        })
      )
    })
  )

  it.effect("a hash written in the seed's format loads; what we write is the seed's format", () =>
    Effect.gen(function* () {
      const opts = options()
      const key = `s:${opts.keyPrefix}user-123`
      yield* raw((c) =>
        c.hset(key, {
          pname: '"John Doe"',
          pemail: '"john@example.com"',
          page: "30",
          elastlogin: '"2024-01-01T12:00:00"',
          pprefs: '{"theme": "dark", "tags": ["a", "b"]}' // Python's json.dumps spacing
        })
      )
      yield* withStorage(opts, (storage) =>
        Effect.gen(function* () {
          const loaded = yield* storage.load("user-123")
          assert.deepStrictEqual(loaded, {
            properties: {
              name: "John Doe",
              email: "john@example.com",
              age: 30,
              prefs: { theme: "dark", tags: ["a", "b"] }
            },
            extended: { lastlogin: "2024-01-01T12:00:00" }
          })
          yield* storage.set("user-123", "age", 31)
          yield* storage.set("user-123", SubjectStorage.extended("source"), "web")
          yield* storage.delete("user-123", "email")
        })
      )
      const fields = yield* raw((c) => c.hgetall(key))
      assert.deepStrictEqual(fields, {
        pname: '"John Doe"',
        page: "31",
        elastlogin: '"2024-01-01T12:00:00"',
        pprefs: '{"theme": "dark", "tags": ["a", "b"]}',
        esource: '"web"'
      })
    })
  )

  it.effect("50 fibers × 200 read-modify-writes through set with a function, on one layer: exactly 10,000", () =>
    withStorage(options(), (storage) =>
      Effect.gen(function* () {
        const results = yield* Effect.forEach(
          Array.from({ length: 50 }),
          () => Effect.forEach(Array.from({ length: 200 }), () => storage.set("counter", "n", plusOne)),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(yield* storage.get("counter", "n"), Option.some(10_000))
        const attempts = results.flat().reduce((sum, written) => sum + written.attempts, 0)
        // one layer: its writers take turns, so none loses a compare-and-set to another
        assert.strictEqual(attempts, 10_000)
        assert.strictEqual(yield* storage.conflicts, 0)
        const values = results.flat().map((written) => written.value as number)
        assert.strictEqual(new Set(values).size, 10_000)
      })
    )
  )

  it.effect(
    "two instances × 25 fibers × 200 read-modify-writes of one property: exactly 10,000, conflicts retried",
    () =>
      Effect.gen(function* () {
        const opts = options()
        const run = (storage: SubjectStorage.Service) =>
          Effect.forEach(
            Array.from({ length: 25 }),
            () => Effect.forEach(Array.from({ length: 200 }), () => storage.set("counter", "n", plusOne)),
            { concurrency: "unbounded", discard: true }
          ).pipe(Effect.andThen(storage.conflicts))
        const [here, there] = yield* Effect.all([withStorage(opts, run), withOtherInstance(opts, run)], {
          concurrency: "unbounded"
        })
        const value = yield* withStorage(opts, (storage) => storage.get("counter", "n"))
        assert.deepStrictEqual(value, Option.some(10_000))
        assert.isAtLeast(here + there, 0) // reported; how many depends on the interleaving
      })
  )

  it.effect("50 fibers × 200 increments: exactly 10,000; decrement goes back", () =>
    withStorage(options(), (storage) =>
      Effect.gen(function* () {
        yield* Effect.forEach(
          Array.from({ length: 50 }),
          () => Effect.forEach(Array.from({ length: 200 }), () => storage.increment("counter", "n")),
          { concurrency: "unbounded", discard: true }
        )
        assert.deepStrictEqual(yield* storage.get("counter", "n"), Option.some(10_000))
        assert.strictEqual(yield* storage.decrement("counter", "n", 2.5), 9_997.5)
        assert.strictEqual(yield* storage.increment("counter", "fresh", 3), 3)
      })
    )
  )

  it.effect("concurrent updates of two properties of one subject, from two instances, never conflict", () =>
    Effect.gen(function* () {
      const opts = options()
      const bump = (property: string) => (storage: SubjectStorage.Service) =>
        Effect.forEach(Array.from({ length: 300 }), () => storage.set("subject", property, plusOne), {
          concurrency: 10
        })
      const [a, b] = yield* Effect.all([withStorage(opts, bump("a")), withOtherInstance(opts, bump("b"))], {
        concurrency: "unbounded"
      })
      assert.isTrue([...a, ...b].every((written) => written.attempts === 1))
      const loaded = yield* withStorage(opts, (storage) => storage.load("subject"))
      assert.deepStrictEqual(loaded.properties, { a: 300, b: 300 })
    })
  )

  it.effect("the function of an atomic set sees the committed value, not what this instance last wrote", () =>
    Effect.gen(function* () {
      const opts = options()
      const seen: Array<unknown> = []
      const written = yield* withStorage(opts, (storage) =>
        Effect.gen(function* () {
          yield* storage.set("s", "x", () => 5) // this instance now remembers 5
          yield* withOtherInstance(opts, (other) => other.set("s", "x", 10))
          return yield* storage.set("s", "x", (previous) => {
            seen.push(Option.getOrUndefined(previous))
            return (Option.getOrElse(previous, () => 0) as number) + 1
          })
        })
      )
      assert.deepStrictEqual(written.previous, Option.some(10))
      assert.strictEqual(written.value, 11)
      assert.strictEqual(seen.at(-1), 10)
      assert.strictEqual(written.attempts, seen.length)
      assert.deepStrictEqual(yield* withStorage(opts, (storage) => storage.get("s", "x")), Option.some(11))
    })
  )

  it.effect("retries exhausted: a typed Conflict naming the property, and nothing of its own written", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const opts = options({ retrySchedule: Schedule.recurs(2) })
      const key = `s:${opts.keyPrefix}s`
      let calls = 0
      yield* withStorage(opts, (storage) =>
        Effect.gen(function* () {
          // every time the function runs, another writer gets in first: its HSET is queued on the shared connection
          // ahead of the compare-and-set
          const error = yield* Effect.flip(
            storage.set("s", "x", () => {
              calls++
              void redis.client.hset(key, "px", String(1000 + calls))
              return -1
            })
          )
          assert.strictEqual(error.reason._tag, "Conflict")
          assert.strictEqual(error.property, "x")
          assert.strictEqual(error.subject, "s")
          assert.isTrue(error.isRetryable)
          assert.strictEqual(calls, 3)
          assert.deepStrictEqual(yield* storage.get("s", "x"), Option.some(1003))
          assert.isAtLeast(yield* storage.conflicts, 3)
          // the next call starts from the committed value
          assert.strictEqual((yield* storage.set("s", "x", plusOne)).value, 1004)
        })
      )
    })
  )

  it.effect("typed subjects: typed get/set/load; a stored value that does not decode is a typed error naming it", () =>
    Effect.gen(function* () {
      const opts = options()
      yield* withStorage(opts, (storage) =>
        Effect.gen(function* () {
          const users = storage.typed(User)
          const login = new Date("2024-01-01T12:00:00Z")
          yield* users.store("u1", {
            inserts: [
              ["name", "Ann"],
              ["age", 30]
            ]
          })
          yield* users.set("u1", "lastLogin", login)
          const age = yield* users.set("u1", "age", (previous) => Option.getOrElse(previous, () => 0) + 1)
          assert.strictEqual(age.value, 31)
          assert.deepStrictEqual(yield* users.load("u1"), { name: "Ann", age: 31, lastLogin: login })
          assert.deepStrictEqual(
            yield* raw((c) => c.hget(`s:${opts.keyPrefix}u1`, "elastLogin")),
            '"2024-01-01T12:00:00.000Z"'
          )

          yield* raw((c) => c.hset(`s:${opts.keyPrefix}u1`, "page", '"thirty"'))
          const wrongType = yield* Effect.flip(users.get("u1", "age"))
          assert.strictEqual(wrongType.reason._tag, "Decode")
          assert.strictEqual(wrongType.property, "age")
          assert.strictEqual(wrongType.subject, "u1")
          assert.include(wrongType.message, "Expected") // what is wrong, from the Schema
          assert.strictEqual((yield* Effect.flip(users.load("u1"))).property, "age")
          yield* raw((c) => c.hset(`s:${opts.keyPrefix}u1`, "pname", "not json"))
          const notJson = yield* Effect.flip(storage.get("u1", "name"))
          assert.strictEqual(notJson.reason._tag, "Decode")
          assert.include(notJson.message, "not JSON")
          // the other properties still read
          assert.deepStrictEqual(yield* users.get("u1", "lastLogin"), Option.some(login))
        })
      )
    })
  )

  it.effect(
    "values that cannot be stored, and increments of what is not a number, are typed errors that write nothing",
    () =>
      withStorage(options(), (storage) =>
        Effect.gen(function* () {
          assert.strictEqual((yield* Effect.flip(storage.set("s", "big", 10n))).reason._tag, "InvalidValue")
          assert.strictEqual((yield* Effect.flip(storage.set("s", "fn", () => 1n))).reason._tag, "InvalidValue")
          yield* storage.set("s", "name", "Ann")
          const error = yield* Effect.flip(storage.increment("s", "name"))
          assert.strictEqual(error.reason._tag, "NotANumber")
          assert.strictEqual(error.property, "name")
          assert.deepStrictEqual(yield* storage.load("s"), { properties: { name: "Ann" }, extended: {} })
        })
      )
  )

  it.effect("subject names with ':', '*', '{', spaces and unicode are their own keys", () =>
    Effect.gen(function* () {
      const opts = options()
      const names = ["a:b", "a", "x*y", "{tag}rest", "with space", "ünïcødé 🚀", "a:b:c"]
      yield* withStorage(opts, (storage) =>
        Effect.gen(function* () {
          yield* Effect.forEach(names, (name) => storage.set(name, "name", name))
          for (const name of names) {
            assert.deepStrictEqual(yield* storage.get(name, "name"), Option.some(name))
            assert.isTrue(yield* raw((c) => c.exists(`s:${opts.keyPrefix}${name}`).then((n) => n === 1)))
          }
          assert.isTrue(yield* storage.flush("a"))
          assert.isFalse(yield* storage.exists("a"))
          assert.isTrue(yield* storage.exists("a:b"))
        })
      )
    })
  )

  it.effect("default and extended properties of the same name are separate", () =>
    withStorage(options(), (storage) =>
      Effect.gen(function* () {
        yield* storage.set("s", "x", "default")
        yield* storage.set("s", SubjectStorage.extended("x"), "extended")
        assert.deepStrictEqual(yield* storage.load("s"), { properties: { x: "default" }, extended: { x: "extended" } })
        assert.deepStrictEqual(yield* storage.extendedProperties("s"), { x: "extended" })
        assert.isTrue(yield* storage.delete("s", SubjectStorage.extended("x")))
        assert.isFalse(yield* storage.delete("s", SubjectStorage.extended("x")))
        assert.isTrue(yield* storage.exists("s", "x"))
        assert.isFalse(yield* storage.exists("s", SubjectStorage.extended("x")))
      })
    )
  )

  it.effect("store writes inserts, updates and deletes in one step; an empty store writes nothing", () =>
    Effect.gen(function* () {
      const opts = options()
      yield* withStorage(opts, (storage) =>
        Effect.gen(function* () {
          assert.strictEqual(yield* storage.store("empty", {}), 0)
          assert.isFalse(yield* storage.exists("empty"))
          yield* storage.store("s", {
            inserts: [
              ["a", 1],
              ["b", 2]
            ]
          })
          const changed = yield* storage.store("s", {
            inserts: [[SubjectStorage.extended("c"), 3]],
            updates: [["a", 10]],
            deletes: ["b", "missing"]
          })
          assert.strictEqual(changed, 3)
          assert.deepStrictEqual(yield* storage.load("s"), { properties: { a: 10 }, extended: { c: 3 } })
        })
      )
    })
  )

  it.effect("a subject handle collects sets locally and writes them with one store (last writer wins)", () =>
    withStorage(options(), (storage) =>
      Effect.gen(function* () {
        yield* storage.set("s", "n", 1)
        const first = storage.subject("s")
        const second = storage.subject("s")
        for (let i = 0; i < 100; i++) yield* first.set(`field${i}`, i)
        yield* first.set("n", plusOne)
        yield* second.set("n", plusOne)
        assert.isTrue(yield* first.delete("n"))
        yield* first.set("n", plusOne) // from the cache: deleted, so 0 + 1
        assert.strictEqual(yield* first.pending, 101)
        assert.deepStrictEqual(yield* storage.get("s", "field0"), Option.none())
        assert.strictEqual(yield* first.store, 101)
        assert.strictEqual(yield* first.pending, 0)
        assert.strictEqual(yield* second.store, 1)
        const loaded = yield* storage.load("s")
        assert.strictEqual(Object.keys(loaded.properties).length, 101)
        // both handles read n = 1 and wrote 2: the handle path does not merge concurrent updates
        assert.strictEqual(loaded.properties.n, 2)
        assert.deepStrictEqual(yield* second.get("field7"), Option.none()) // its cache predates first's store
      })
    )
  )

  it.effect("combined read-modify-writes: a function that throws fails its own caller only", () =>
    withStorage(options(), (storage) =>
      Effect.gen(function* () {
        const results = yield* Effect.forEach(
          Array.from({ length: 30 }, (_, i) => i),
          (i) =>
            Effect.exit(
              storage.set("s", "n", (previous) => {
                if (i % 3 === 1) throw new Error(`refused ${i}`)
                return (Option.getOrElse(previous, () => 0) as number) + 1
              })
            ),
          { concurrency: "unbounded" }
        )
        const succeeded = results.filter(Exit.isSuccess)
        assert.strictEqual(succeeded.length, 20)
        assert.strictEqual(results.filter((exit) => Exit.isFailure(exit) && Cause.hasDies(exit.cause)).length, 10)
        assert.deepStrictEqual(yield* storage.get("s", "n"), Option.some(20))
        // each success saw the value the one before it produced
        const seen = succeeded.map((exit) => [Option.getOrElse(exit.value.previous, () => 0), exit.value.value])
        for (const [previous, value] of seen) assert.strictEqual(value, (previous as number) + 1)
        assert.deepStrictEqual(new Set(seen.map(([, value]) => value)).size, 20)
      })
    )
  )

  it.effect("change events reach another instance, only for committed writes", () =>
    Effect.gen(function* () {
      const opts = options({ changes: true })
      yield* withStorage(opts, (storage) =>
        withOtherInstance(opts, (other) =>
          Effect.gen(function* () {
            const received = yield* Queue.unbounded<SubjectStorage.ChangeEvent>()
            const listener = yield* Effect.forkChild(
              Stream.runForEach(other.changes, (event) => Queue.offer(received, event))
            )
            yield* Effect.sleep("100 millis") // subscribed
            yield* storage.set("u1", "name", "Ann")
            yield* Effect.flip(storage.increment("u1", "name")) // refused: no event
            yield* storage.set("u1", "visits", plusOne)
            yield* storage.store("u1", { inserts: [[SubjectStorage.extended("tag"), "x"]], deletes: ["name"] })
            yield* storage.flush("u1")
            yield* storage.flush("u1") // nothing to delete: no event
            const events = yield* Effect.forEach(Array.from({ length: 5 }), () => Queue.take(received))
            yield* Effect.sleep("100 millis")
            assert.strictEqual(yield* Queue.size(received), 0)
            yield* Fiber.interrupt(listener)
            assert.deepStrictEqual(events, [
              {
                _tag: "PropertyChanged",
                subject: "u1",
                property: "name",
                extended: false,
                value: "Ann",
                previous: Option.none()
              },
              {
                _tag: "PropertyChanged",
                subject: "u1",
                property: "visits",
                extended: false,
                value: 1,
                previous: Option.none()
              },
              {
                _tag: "PropertyChanged",
                subject: "u1",
                property: "tag",
                extended: true,
                value: "x",
                previous: Option.none()
              },
              { _tag: "PropertyDeleted", subject: "u1", property: "name", extended: false, previous: "Ann" },
              { _tag: "SubjectDeleted", subject: "u1" }
            ])
          })
        )
      )
    })
  )

  it.effect(
    "properties with a time to live expire on every instance with a PropertyExpired change; renewed, kept, dropped and deleted ones do not",
    () =>
      Effect.gen(function* () {
        const interval = 100
        const opts = options({ changes: true, expiryInterval: interval })
        yield* withStorage(opts, (storage) =>
          withOtherInstance({ ...opts, expiryInterval: "1 minute" }, (other) =>
            Effect.gen(function* () {
              const received = yield* Queue.unbounded<readonly [SubjectStorage.ChangeEvent, number]>()
              const listener = yield* Effect.forkChild(
                Stream.runForEach(other.changes, (event) => Queue.offer(received, [event, Date.now()] as const))
              )
              yield* Effect.sleep("100 millis") // subscribed
              const setAt = Date.now()
              yield* storage.set("ann", "online", true, { ttl: "600 millis" }) // renewed below: stays
              yield* storage.set("ann", "typing", true, { ttl: "300 millis" }) // expires
              yield* storage.set("ann", "typing", false) // a write without ttl keeps the deadline
              yield* storage.store(
                "ann",
                {
                  inserts: [
                    ["cart", 1],
                    ["coupon", "X"]
                  ]
                },
                { ttl: "300 millis" }
              )
              yield* storage.increment("ann", "cart") // keeps the deadline too
              yield* storage.set("ann", "coupon", "Y", { ttl: Duration.infinity }) // the deadline dropped
              yield* storage.set("ann", "draft", plusOne, { ttl: "300 millis" })
              yield* storage.delete("ann", "draft") // deleted: never expires
              yield* storage.set("ann", "name", "Ann") // never had one
              const heartbeat = yield* Effect.forkChild(
                Effect.repeat(storage.set("ann", "online", true, { ttl: "600 millis" }), Schedule.spaced("150 millis"))
              )
              const expired: Array<string> = []
              while (expired.length < 2) {
                const [event, at] = yield* Queue.take(received)
                if (event._tag === "PropertyExpired") {
                  expired.push(`${event.property}=${JSON.stringify(event.previous)}`)
                  const late = at - (setAt + 300)
                  assert.isBelow(late, interval + 400, `${event.property} expired ${late} ms after its deadline`)
                }
              }
              assert.deepStrictEqual(expired.sort(), ["cart=2", "typing=false"])
              yield* Effect.sleep("700 millis") // past online's first deadline: the heartbeat renews it
              assert.deepStrictEqual((yield* other.load("ann")).properties, { online: true, coupon: "Y", name: "Ann" })
              yield* Fiber.interrupt(heartbeat)
              for (;;) {
                const [event] = yield* Queue.take(received)
                if (event._tag === "PropertyExpired") {
                  assert.strictEqual(event.property, "online")
                  break
                }
              }
              assert.deepStrictEqual((yield* other.load("ann")).properties, { coupon: "Y", name: "Ann" })
              yield* Fiber.interrupt(listener)
            })
          )
        )
      })
  )

  it.effect(
    "a write retried after its reply was lost, and found applied, announces its change again (its first PUBLISH may have died with its master)",
    () =>
      Effect.gen(function* () {
        const opts = options({ changes: true })
        const redis = yield* RedisClient.RedisClient
        yield* withStorage(opts, (storage) =>
          Effect.gen(function* () {
            const received = yield* Queue.unbounded<SubjectStorage.ChangeEvent>()
            const listener = yield* Effect.forkChild(
              Stream.runForEach(storage.changes, (event) => Queue.offer(received, event))
            )
            yield* Effect.sleep("100 millis") // subscribed
            const key = `s:${opts.keyPrefix}ann`
            const run = redis.evalIdempotent(
              Scripts.set,
              [key, `s-ttl:{${slotTag(slotOf(key))}}${key}`],
              [`s-changes:${opts.keyPrefix}`, "ann", "", "pname", '"Ann"', ""],
              { requestId: "one-write" }
            )
            assert.isNull(yield* run)
            assert.isNull(yield* run) // the same request again: not applied again, announced again
            const events = yield* Effect.forEach([1, 2], () => Queue.take(received)).pipe(Effect.timeout("5 seconds"))
            assert.deepStrictEqual(
              events.map((event) => (event._tag === "PropertyChanged" ? [event.property, event.value] : event._tag)),
              [
                ["name", "Ann"],
                ["name", "Ann"]
              ]
            )
            assert.deepStrictEqual((yield* storage.load("ann")).properties, { name: "Ann" })
            yield* Fiber.interrupt(listener)
          })
        )
      })
  )
})
