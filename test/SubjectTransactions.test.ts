import { assert } from "@effect/vitest"
import { Cause, Data, Deferred, Effect, Exit, Fiber, Layer, Option, Queue, Schedule, Schema, Stream } from "effect"
import * as RedisClient from "../src/RedisClient.js"
import * as SubjectStorage from "../src/SubjectStorage.js"
import { slotOf } from "../src/internal/slot.js"
import { outputOf, spawnChild } from "./support/child.js"
import { options, raw, withStorage } from "./support/subjects.js"
import { anotherClient, forEachTarget, TestTopology } from "./support/targets.js"

const alice = SubjectStorage.tagged("bank", "alice")
const bob = SubjectStorage.tagged("bank", "bob")

/** A refusal of the caller's own: the transaction must write nothing. */
class Refused extends Data.TaggedError("Refused")<{}> {}

const balance = (value: Option.Option<unknown>) => Option.getOrElse(value, () => 0) as number

/** Collects the change events of `storage` until `count` arrived, then checks none follows within 200 ms. */
const collectChanges = (storage: SubjectStorage.Service) =>
  Effect.gen(function* () {
    const received = yield* Queue.unbounded<SubjectStorage.ChangeEvent>()
    yield* Effect.forkScoped(Stream.runForEach(storage.changes, (event) => Queue.offer(received, event)))
    yield* Effect.sleep("100 millis") // subscribed
    return (count: number) =>
      Effect.gen(function* () {
        const events = yield* Effect.forEach(Array.from({ length: count }), () => Queue.take(received)).pipe(
          Effect.timeout("5 seconds")
        )
        yield* Effect.sleep("200 millis")
        assert.strictEqual(yield* Queue.size(received), 0, "no further event")
        return events
      })
  })

forEachTarget("SubjectStorage transactions", (it) => {
  it.effect(
    "4 processes × 25 fibers × 100 transfers: the sum is conserved, no overdraft, conflicts retried and reported",
    () =>
      Effect.gen(function* () {
        const topology = yield* TestTopology
        const opts = options()
        yield* withStorage(opts, (storage) =>
          Effect.all([storage.set(alice, "balance", 500), storage.set(bob, "balance", 500)])
        )
        const outputs = yield* Effect.forEach(
          Array.from({ length: 4 }),
          () =>
            Effect.flatMap(
              spawnChild("test/support/transfer-child.ts", topology, [opts.keyPrefix ?? "", alice, bob, "25", "100"]),
              (child) => outputOf(child)
            ),
          { concurrency: "unbounded" }
        ).pipe(Effect.timeout("90 seconds"))
        const reports = outputs.map((output) => {
          assert.strictEqual(output.code, 0)
          return JSON.parse(output.lines[0] ?? "{}") as {
            committed: number
            refused: number
            retriesOfCommitted: number
            conflicts: number
          }
        })
        const total = (key: keyof (typeof reports)[number]) => reports.reduce((sum, report) => sum + report[key], 0)
        assert.strictEqual(total("committed") + total("refused"), 10_000, "every transfer committed or refused")
        // every lost attempt is counted, and the retries of committed transfers are among them
        assert.isAtLeast(total("conflicts"), total("retriesOfCommitted"))
        assert.isAbove(total("conflicts"), 0, "four processes on two subjects do conflict")
        const [a, b] = yield* withStorage(opts, (storage) =>
          Effect.all([storage.get(alice, "balance"), storage.get(bob, "balance")])
        )
        assert.strictEqual(balance(a) + balance(b), 1000)
        assert.isAtLeast(balance(a), 0)
        assert.isAtLeast(balance(b), 0)
      }),
    120_000
  )

  it.effect("a transaction's deletion drops the property's deadline; its writes keep one (as outside)", () =>
    withStorage(options({ expiryInterval: "50 millis" }), (storage) =>
      Effect.gen(function* () {
        yield* storage.set(alice, "hold", 1, { ttl: "300 millis" })
        yield* storage.set(alice, "limit", 1, { ttl: "300 millis" })
        yield* storage.transaction([alice], (tx) =>
          Effect.gen(function* () {
            yield* tx.delete(alice, "hold")
            yield* tx.set(alice, "limit", 2)
          })
        )
        yield* storage.set(alice, "hold", 2) // a new property, no deadline: the deleted one's is gone
        yield* Effect.sleep("700 millis")
        assert.deepStrictEqual((yield* storage.load(alice)).properties, { hold: 2 })
      })
    )
  )

  it.effect("the function's own failure writes nothing; a read of an undeclared subject is NotWatched", () =>
    withStorage(options(), (storage) =>
      Effect.gen(function* () {
        yield* storage.set(alice, "balance", 10)
        const refused = yield* Effect.flip(
          storage.transaction([alice, bob], (tx) =>
            Effect.gen(function* () {
              yield* tx.set(alice, "balance", 0)
              yield* tx.set(bob, "balance", 10)
              return yield* new Refused()
            })
          )
        )
        assert.instanceOf(refused, Refused)
        const undeclared = yield* Effect.flip(
          storage.transaction([alice], (tx) =>
            Effect.andThen(tx.set(alice, "balance", 0), tx.get(SubjectStorage.tagged("bank", "carol"), "balance"))
          )
        )
        assert.strictEqual(undeclared._tag === "SubjectStorageError" && undeclared.reason._tag, "NotWatched")
        const defect = yield* Effect.exit(
          storage.transaction([alice], (tx) =>
            Effect.andThen(
              tx.set(alice, "balance", 0),
              Effect.sync(() => JSON.parse("{"))
            )
          )
        )
        assert.isTrue(Exit.isFailure(defect) && Cause.hasDies(defect.cause))
        assert.deepStrictEqual(yield* storage.get(alice, "balance"), Option.some(10))
        assert.isFalse(yield* storage.exists(bob))
      })
    )
  )

  it.effect("a transaction interrupted between WATCH and EXEC writes nothing; its connection is not reused", () =>
    Effect.gen(function* () {
      const storage = yield* SubjectStorage.SubjectStorage
      yield* storage.set(alice, "balance", 10)
      const inside = yield* Deferred.make<void>()
      const fiber = yield* Effect.forkChild(
        storage.transaction([alice, bob], (tx) =>
          Effect.gen(function* () {
            yield* tx.set(alice, "balance", 0)
            yield* tx.set(bob, "balance", 10)
            yield* Deferred.succeed(inside, undefined)
            return yield* Effect.never
          })
        )
      )
      yield* Deferred.await(inside)
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(yield* storage.get(alice, "balance"), Option.some(10))
      assert.isFalse(yield* storage.exists(bob))
      // a write to a subject the interrupted attempt watched: a connection still watching it would fail EXEC
      yield* storage.set(alice, "balance", 20)
      const next = yield* storage.transaction([alice], (tx) =>
        Effect.map(tx.get(alice, "balance"), (value) => tx.set(alice, "balance", balance(value) + 1)).pipe(
          Effect.flatten
        )
      )
      assert.strictEqual(next.attempts, 1)
      assert.deepStrictEqual(yield* storage.get(alice, "balance"), Option.some(21))
    }).pipe(
      // one dedicated connection: a transaction after the interrupted one can only get it, or a new one
      Effect.provide(
        Layer.unwrap(
          Effect.map(TestTopology, (topology) =>
            SubjectStorage.layer(options()).pipe(Layer.provide(anotherClient(topology, { maxDedicatedConnections: 1 })))
          )
        )
      )
    )
  )

  it.effect("subjects of different Cluster slots: CrossSlot before anything is sent (a single node takes them)", () => {
    const a = SubjectStorage.tagged("x", "a")
    const b = SubjectStorage.tagged("y", "b")
    return withStorage(options(), (storage) =>
      Effect.gen(function* () {
        const redis = yield* RedisClient.RedisClient
        assert.notStrictEqual(slotOf(a), slotOf(b))
        let called = false
        const exit = yield* Effect.exit(
          storage.transaction([a, b], (tx) =>
            Effect.gen(function* () {
              called = true
              yield* tx.set(a, "n", 1)
              yield* tx.set(b, "n", 1)
            })
          )
        )
        if (redis.mode === "cluster") {
          assert.isTrue(Exit.isFailure(exit))
          const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
          assert.instanceOf(error, SubjectStorage.SubjectStorageError)
          const reason = (error as SubjectStorage.SubjectStorageError).reason
          assert.strictEqual(reason._tag, "CrossSlot")
          assert.include(reason.message, "SubjectStorage.tagged")
          assert.isFalse(called, "the function never ran")
          assert.isFalse(yield* storage.exists(a))
        } else {
          assert.isTrue(Exit.isSuccess(exit))
          assert.deepStrictEqual(yield* storage.get(b, "n"), Option.some(1))
        }
      })
    )
  })

  it.effect("events: one per committed property change, none for an aborted or a conflicted attempt", () =>
    Effect.gen(function* () {
      const opts = options({ changes: true })
      yield* withStorage(opts, (storage) =>
        Effect.gen(function* () {
          yield* storage.store(alice, {
            inserts: [
              ["balance", 10],
              ["note", "x"]
            ]
          })
          const take = yield* collectChanges(storage)
          // aborted: nothing announced
          yield* Effect.flip(
            storage.transaction([alice, bob], (tx) => Effect.andThen(tx.set(alice, "balance", 1), new Refused()))
          )
          // the first attempt loses: a write lands between its WATCH and its EXEC
          let attempt = 0
          const done = yield* storage.transaction([alice, bob], (tx) =>
            Effect.gen(function* () {
              attempt++
              if (attempt === 1) yield* storage.set(alice, "balance", 7)
              const paid = balance(yield* tx.get(alice, "balance"))
              yield* tx.set(alice, "balance", paid - 5)
              yield* tx.set(bob, "balance", attempt === 1 ? 999 : 5)
              yield* tx.delete(alice, "note")
            })
          )
          assert.strictEqual(done.attempts, 2)
          assert.strictEqual(done.written, 3)
          const events = yield* take(4)
          assert.deepStrictEqual(events, [
            {
              _tag: "PropertyChanged",
              subject: alice,
              property: "balance",
              extended: false,
              value: 7,
              previous: Option.some(10)
            },
            {
              _tag: "PropertyChanged",
              subject: alice,
              property: "balance",
              extended: false,
              value: 2,
              previous: Option.some(7)
            },
            { _tag: "PropertyDeleted", subject: alice, property: "note", extended: false, previous: "x" },
            {
              _tag: "PropertyChanged",
              subject: bob,
              property: "balance",
              extended: false,
              value: 5,
              previous: Option.none()
            }
          ])
          // a flush in a transaction announces the subject's deletion, then what was written anew
          yield* storage.transaction([alice], (tx) => Effect.andThen(tx.flush(alice), tx.set(alice, "fresh", true)))
          const [deleted, fresh] = yield* take(2)
          assert.deepStrictEqual(deleted, { _tag: "SubjectDeleted", subject: alice })
          assert.deepStrictEqual(fresh, {
            _tag: "PropertyChanged",
            subject: alice,
            property: "fresh",
            extended: false,
            value: true,
            previous: Option.none()
          })
          assert.deepStrictEqual(yield* storage.load(alice), { properties: { fresh: true }, extended: {} })
        })
      ).pipe(Effect.scoped)
    })
  )

  it.effect("retries exhausted: Conflict naming the subjects, nothing of the transaction written", () =>
    withStorage(options(), (storage) =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          storage.transaction(
            [alice, bob],
            (tx) =>
              Effect.gen(function* () {
                yield* storage.increment(alice, "interference") // every attempt loses
                yield* tx.set(bob, "balance", 1)
              }),
            { retrySchedule: Schedule.recurs(2) }
          )
        )
        assert.strictEqual(error._tag === "SubjectStorageError" && error.reason._tag, "Conflict")
        assert.include(error.message, alice)
        assert.include(error.message, bob)
        assert.deepStrictEqual(yield* storage.get(alice, "interference"), Option.some(3))
        assert.isFalse(yield* storage.exists(bob))
        assert.strictEqual(yield* storage.conflicts, 3)
      })
    )
  )

  it.effect("typed transactions decode and encode with the schemas; a bad stored value aborts with Decode", () =>
    withStorage(options(), (storage) =>
      Effect.gen(function* () {
        const accounts = storage.typed(
          SubjectStorage.define({ properties: { balance: Schema.Number, opened: Schema.Date } })
        )
        yield* accounts.set(alice, "balance", 100)
        yield* accounts.set(alice, "opened", new Date("2026-01-01T00:00:00Z"))
        const done = yield* accounts.transaction([alice, bob], (tx) =>
          Effect.gen(function* () {
            const from = yield* tx.get(alice, "balance")
            const opened = yield* tx.get(alice, "opened")
            yield* tx.store(bob, {
              inserts: [
                ["balance", 40],
                ["opened", Option.getOrThrow(opened)]
              ]
            })
            yield* tx.set(alice, "balance", Option.getOrElse(from, () => 0) - 40)
            return Option.getOrThrow(opened).getUTCFullYear()
          })
        )
        assert.strictEqual(done.value, 2026)
        assert.deepStrictEqual(yield* accounts.load(bob), {
          balance: 40,
          opened: new Date("2026-01-01T00:00:00Z")
        })
        yield* storage.set(bob, "balance", "forty")
        const error = yield* Effect.flip(
          accounts.transaction([alice, bob], (tx) =>
            Effect.andThen(tx.set(alice, "balance", 0), tx.get(bob, "balance"))
          )
        )
        assert.strictEqual(error.reason._tag, "Decode")
        assert.deepStrictEqual(yield* accounts.get(alice, "balance"), Option.some(60))
      })
    )
  )

  it.effect("expiry: a subject is gone after its ttl; writes refresh it, or not, as configured", () =>
    Effect.gen(function* () {
      const ttl = (opts: SubjectStorage.Options, subject: string) => raw((c) => c.pttl(`s:${opts.keyPrefix}${subject}`))
      const refreshing = options({ ttl: "1 second" })
      const fixed = options({ ttl: "1 second", refreshTtl: false })
      yield* withStorage(refreshing, (storage) =>
        Effect.gen(function* () {
          yield* storage.set("s", "n", 1)
          yield* storage.store("t", { inserts: [["n", 1]] })
          yield* storage.transaction(["x"], (tx) => tx.set("x", "n", 1))
          for (const subject of ["s", "t", "x"]) assert.isAbove(yield* ttl(refreshing, subject), 0)
          yield* Effect.sleep("400 millis")
          yield* storage.increment("s", "n")
          assert.isAbove(yield* ttl(refreshing, "s"), 900, "refreshed by the write")
          yield* Effect.sleep("1200 millis")
          assert.deepStrictEqual(yield* storage.load("s"), { properties: {}, extended: {} })
          assert.isFalse(yield* storage.exists("t"))
          assert.isFalse(yield* storage.exists("x"))
        })
      )
      yield* withStorage(fixed, (storage) =>
        Effect.gen(function* () {
          yield* storage.set("s", "n", 1)
          yield* Effect.sleep("400 millis")
          yield* storage.set("s", "n", plusOneOf(1))
          yield* storage.transaction(["s"], (tx) => tx.set("s", "m", 1))
          assert.isBelow(yield* ttl(fixed, "s"), 700, "not refreshed")
          yield* Effect.sleep("800 millis")
          assert.isFalse(yield* storage.exists("s"))
        })
      )
    })
  )

  it.effect("combined writes announce one change per caller, each with its own value and previous", () =>
    Effect.gen(function* () {
      const opts = options({ changes: true })
      yield* withStorage(opts, (storage) =>
        Effect.gen(function* () {
          const take = yield* collectChanges(storage)
          yield* Effect.forEach(Array.from({ length: 20 }), () => storage.increment("c", "hits"), {
            concurrency: "unbounded",
            discard: true
          })
          yield* Effect.forEach(
            Array.from({ length: 20 }),
            () => storage.set("c", "total", (previous) => balance(previous) + 2),
            { concurrency: "unbounded", discard: true }
          )
          const events = yield* take(40)
          for (const property of ["hits", "total"]) {
            const step = property === "hits" ? 1 : 2
            const changes = events.flatMap((event) =>
              event._tag === "PropertyChanged" && event.property === property ? [event] : []
            )
            assert.strictEqual(changes.length, 20)
            changes.forEach((event, index) => {
              assert.strictEqual(event.value, (index + 1) * step)
              assert.deepStrictEqual(event.previous, index === 0 ? Option.none() : Option.some(index * step))
            })
          }
        })
      ).pipe(Effect.scoped)
    })
  )
})

/** An update function adding `n`. */
const plusOneOf = (n: number) => (previous: Option.Option<unknown>) => balance(previous) + n
