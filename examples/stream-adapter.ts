/**
 * `npm run example:live`: a real-time board. One instance writes tasks, another one's subscriber sees every change
 * live; the subscriber disconnects, misses changes, and resumes from the last position it saw, missing nothing; then a
 * query over the board.
 */
import { Console, Effect, Fiber, Layer, Schema, Stream } from "effect"
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

  // another instance of the application, on its own connection, watches the board
  const watcher = yield* Effect.forkChild(
    Effect.flatMap(StreamAdapter.StreamAdapter, (adapter) =>
      adapter
        .stream(Tasks)
        .subscribe({ groupId: "board" })
        .pipe(
          Stream.take(3),
          Stream.runForEach((event) => Console.log(`  [other instance] ${describe(event)}`)),
          Effect.as(undefined)
        )
    ).pipe(Effect.provide(OtherInstance))
  )
  yield* Effect.sleep("100 millis")
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
  Layer.provideMerge(RedisServer.layer())
)

Effect.runPromise(program.pipe(Effect.provide(Live))).catch((error) => {
  console.error(error)
  process.exit(1)
})
