/**
 * `npm run example:subjects`: a rule engine's per-subject state in Redis hashes (KRules' format). 200 concurrent
 * "login" events update one user's counters atomically, a typed view reads them back, another instance of the
 * application watches the changes, and the raw hash shows the wire format.
 */
import { Console, Effect, Fiber, Layer, Option, Schema, Stream } from "effect"
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
  Layer.provideMerge(RedisServer.layer())
)

Effect.runPromise(program.pipe(Effect.provide(Live))).catch((error) => {
  console.error(error)
  process.exit(1)
})
