/**
 * `npm run example:live`: a real-time board. Another instance loads the board and follows every change from that
 * state; a subscriber that was away resumes from the last position it saw, missing nothing; then a query.
 */
import { Console, Deferred, Effect, Fiber, Layer, Schema, Stream } from "effect"
import * as RedisClient from "../src/RedisClient.js"
import * as StreamAdapter from "../src/StreamAdapter.js"
import * as RedisServer from "../src/testing/RedisServer.js"

const Task = Schema.Struct({ title: Schema.String, priority: Schema.Number, done: Schema.Boolean })
const Tasks = StreamAdapter.define({ name: "tasks", item: Task })

const describe = (event: StreamAdapter.ChangeEvent<typeof Task.Type>) =>
  `v${event.position.version} ${event.type}` +
  ("id" in event && event.id !== undefined ? ` ${event.id}` : "") +
  (event.type === "create" || event.type === "update" ? ` "${event.data.title}"` : "")

const program = Effect.gen(function* () {
  const board = (yield* StreamAdapter.StreamAdapter).stream(Tasks)

  // another instance of the application, on its own connection, loads the board and follows it from that state
  const loaded = yield* Deferred.make<void>()
  const watcher = yield* Effect.forkChild(
    Effect.flatMap(StreamAdapter.StreamAdapter, (adapter) =>
      Effect.gen(function* () {
        const other = adapter.stream(Tasks)
        const { items, position } = yield* other.snapshot("board")
        yield* Console.log(`  [other instance] loaded ${items.length} tasks at v${position.version}`)
        yield* Deferred.succeed(loaded, undefined)
        yield* other.subscribe({ groupId: "board", after: position }).pipe(
          Stream.take(3),
          Stream.runForEach((event) => Console.log(`  [other instance] ${describe(event)}`))
        )
      })
    ).pipe(Effect.provide(OtherInstance))
  )
  yield* Deferred.await(loaded)
  yield* board.set("board", "t1", { title: "write the README", priority: 2, done: false })
  const last = yield* board.set("board", "t1", { title: "write the README", priority: 2, done: true })
  yield* board.set("board", "t2", { title: "ship it", priority: 1, done: false })
  yield* Fiber.join(watcher)

  // a subscriber that was away resumes after the last position it saw
  yield* board.set("board", "t3", { title: "celebrate", priority: 3, done: false })
  yield* board.delete("board", "t2")
  yield* board.send({ groupId: "board" }, { type: "confetti" })
  yield* Console.log(`resuming after v${last.position.version}:`)
  yield* board.subscribe({ groupId: "board", after: last.position }).pipe(
    Stream.take(4),
    Stream.runForEach((event) => Console.log(`  ${describe(event)}`))
  )

  const open = yield* board.query("board", { where: { done: false }, orderBy: "priority", orderDirection: "desc" })
  yield* Console.log(`open tasks, most important first: ${open.map((item) => item.data.title).join(", ")}`)
})

const OtherInstance = Layer.unwrap(
  Effect.map(RedisServer.RedisServer, (node) =>
    StreamAdapter.layer({ keyPrefix: "example:" }).pipe(Layer.provide(RedisClient.layer({ url: node.url })))
  )
)

const Live = StreamAdapter.layer({ keyPrefix: "example:" }).pipe(
  Layer.provideMerge(RedisServer.layerClient()),
  Layer.provideMerge(RedisServer.layer({ url: process.env.REDIS_URL }))
)

Effect.runPromise(program.pipe(Effect.provide(Live))).catch((error) => {
  console.error(error)
  process.exit(1)
})
