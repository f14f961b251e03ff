/**
 * `npm run example:subjects`: a rule engine's per-subject state in Redis hashes (KRules' format). 200 concurrent
 * "login" events update one user's counters atomically, a typed view reads them back, 200 concurrent transactions
 * move credit between two users (never below zero, the sum conserved), another instance of the application watches
 * the changes, and the raw hash shows the wire format.
 */
import { Console, Data, Effect, Fiber, Layer, Option, Schema, Stream } from "effect"
import * as RedisClient from "../src/RedisClient.js"
import * as SubjectStorage from "../src/SubjectStorage.js"
import * as RedisServer from "../src/testing/RedisServer.js"

const User = SubjectStorage.define({
  properties: { name: Schema.String, logins: Schema.Number, score: Schema.Number },
  extended: { lastLogin: Schema.Date }
})

/** One login event: the rules of the engine, each an atomic update. */
const onLogin = (storage: SubjectStorage.Service, user: string, at: Date) =>
  Effect.gen(function* () {
    const users = storage.typed(User)
    yield* users.increment(user, "logins")
    // a read-modify-write: the function gets the committed value, so no update is lost
    yield* users.set(user, "score", (previous) => Math.min(100, Option.getOrElse(previous, () => 0) + 3))
    yield* users.set(user, "lastLogin", at)
  })

/** A transfer the payer's credit does not cover: the transaction writes nothing. */
class Overdraft extends Data.TaggedError("Overdraft")<{}> {}

const Wallet = SubjectStorage.define({ properties: { credit: Schema.Number } })
// one hash tag: both wallets in one Cluster slot, as a transaction over them requires there
const wallets = [SubjectStorage.tagged("wallets", "ann"), SubjectStorage.tagged("wallets", "bob")] as const

/** Moves `amount` of credit from one wallet to the other, atomically; an overdraft is refused. */
const transfer = (storage: SubjectStorage.Service, from: string, to: string, amount: number) =>
  storage.typed(Wallet).transaction(wallets, (tx) =>
    Effect.gen(function* () {
      const payer = Option.getOrElse(yield* tx.get(from, "credit"), () => 0)
      const payee = Option.getOrElse(yield* tx.get(to, "credit"), () => 0)
      if (payer < amount) return yield* new Overdraft()
      yield* tx.set(from, "credit", payer - amount)
      yield* tx.set(to, "credit", payee + amount)
    })
  )

/** 200 concurrent transfers between the two wallets, in random directions. */
const transfers = (storage: SubjectStorage.Service) =>
  Effect.gen(function* () {
    const [ann, bob] = wallets
    yield* storage.typed(Wallet).set(ann, "credit", 50)
    yield* storage.typed(Wallet).set(bob, "credit", 50)
    const outcomes = yield* Effect.forEach(
      Array.from({ length: 200 }, (_, i): readonly [string, string] => (i % 2 === 0 ? [ann, bob] : [bob, ann])),
      ([from, to]) => Effect.result(transfer(storage, from, to, 1 + Math.floor(Math.random() * 20))),
      { concurrency: "unbounded" }
    )
    const refused = outcomes.filter((outcome) => outcome._tag === "Failure").length
    const credit = (wallet: string) =>
      Effect.map(
        storage.typed(Wallet).get(wallet, "credit"),
        Option.getOrElse(() => 0)
      )
    const [a, b] = yield* Effect.all([credit(ann), credit(bob)])
    yield* Console.log(
      `200 concurrent transfers: ${200 - refused} committed, ${refused} refused as overdrafts; ` +
        `ann=${a}, bob=${b}, sum=${a + b}`
    )
  })

const program = Effect.gen(function* () {
  const storage = yield* SubjectStorage.SubjectStorage
  const redis = yield* RedisClient.RedisClient
  yield* storage.typed(User).store("user-123", { inserts: [["name", "Ann"]] })

  // another instance, on its own connection, watches what changes
  const watcher = yield* Effect.forkChild(watchChanges)
  yield* Effect.sleep("100 millis")

  const started = Date.now()
  yield* Effect.forEach(Array.from({ length: 200 }), () => onLogin(storage, "user-123", new Date()), {
    concurrency: "unbounded",
    discard: true
  })
  const user = yield* storage.typed(User).load("user-123")
  yield* Console.log(
    `200 concurrent logins in ${Date.now() - started} ms: logins=${user.logins}, score=${user.score} (capped at 100), ` +
      `last login ${user.lastLogin?.toISOString()}`
  )
  yield* Fiber.join(watcher).pipe(Effect.timeout("2 seconds"), Effect.ignore)
  yield* transfers(storage)

  const raw = yield* redis.use("hgetall", (client) => client.hgetall("s:example:user-123"))
  yield* Console.log("the hash, as KRules reads it:", raw)
})

/** Another instance of the application: its own client and storage, printing the first changes it receives. */
const watchChanges = Effect.gen(function* () {
  const storage = yield* SubjectStorage.SubjectStorage
  yield* Stream.runForEach(Stream.take(storage.changes, 5), (event) =>
    Console.log(
      event._tag === "PropertyChanged"
        ? `  [another instance] ${event.property} changed to ${JSON.stringify(event.value)}`
        : `  [another instance] ${event._tag}`
    )
  )
}).pipe(
  Effect.provide(
    Layer.unwrap(
      Effect.map(RedisServer.RedisServer, (node) =>
        SubjectStorage.layer({ keyPrefix: "example:" }).pipe(Layer.provide(RedisClient.layer({ url: node.url })))
      )
    )
  )
)

const Live = SubjectStorage.layer({ keyPrefix: "example:", changes: true }).pipe(
  Layer.provideMerge(RedisServer.layerClient()),
  Layer.provideMerge(RedisServer.layer({ url: process.env.REDIS_URL }))
)

Effect.runPromise(program.pipe(Effect.provide(Live))).catch((error) => {
  console.error(error)
  process.exit(1)
})
