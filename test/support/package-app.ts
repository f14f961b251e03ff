/**
 * The program of the packaging test, installed with the packed tarball into an application of its own: every
 * capability, through the package's public entry points only, against a redis-server of its own. Prints `ok`.
 */
import { Effect, Layer, Option, Redacted, Schema, Stream } from "effect"
import {
  EventSink,
  Message,
  Publisher,
  ResumableStream,
  StreamAdapter,
  SubjectStorage,
  Subscriber
} from "effect-redis-streams"
import { RedisServer } from "effect-redis-streams/testing"

const Answer = ResumableStream.define({
  name: "answer",
  input: Schema.Struct({ words: Schema.Array(Schema.String) }),
  chunk: Schema.String,
  run: ({ words }, writer) => writer.appendAll(words)
})
const User = SubjectStorage.define({ properties: { name: Schema.String, visits: Schema.Number } })
const Task = StreamAdapter.define({ name: "tasks", item: Schema.Struct({ title: Schema.String }) })

const program = Effect.gen(function* () {
  const streams = yield* ResumableStream.ResumableStream
  const started = yield* streams.start(Answer, { words: ["hello", "world"] })
  const chunks = yield* Stream.runCollect(streams.resume(Answer, started.token))

  const sink = yield* EventSink.EventSink
  yield* sink.emit({ event_type: "started" })
  yield* sink.flush

  const publisher = yield* Publisher.Publisher
  const subscriber = yield* Subscriber.Subscriber
  yield* publisher.publish("jobs", Message.make("job-1"))
  const [job] = yield* subscriber.subscribe("jobs", { group: "workers" }).pipe(Stream.take(1), Stream.runCollect)
  yield* job === undefined ? Effect.void : job.ack

  const users = (yield* SubjectStorage.SubjectStorage).typed(User)
  yield* users.set("ann", "visits", 1)
  const visits = yield* users.get("ann", "visits")

  const tasks = (yield* StreamAdapter.StreamAdapter).stream(Task)
  const stored = yield* tasks.set("board", "t1", { title: "ship it" })

  const results = [
    chunks.map((entry) => entry.chunk).join(" ") === "hello world",
    (yield* sink.stats).written === 1,
    job !== undefined && Message.text(job.message) === "job-1",
    Option.getOrUndefined(visits) === 1,
    stored.type === "create"
  ]
  if (!results.every(Boolean)) return yield* Effect.die(new Error(`unexpected results: ${results.join(", ")}`))
  process.stdout.write("ok\n")
})

const Capabilities = Layer.mergeAll(
  ResumableStream.layer({ streams: [Answer], secret: Redacted.make("package-test") }),
  EventSink.layer({ streamKey: "events" }),
  Publisher.layer(),
  Subscriber.layer(),
  SubjectStorage.layer(),
  StreamAdapter.layer()
).pipe(Layer.provideMerge(RedisServer.layerClient()), Layer.provide(RedisServer.layer({ args: [] })))

Effect.runPromise(program.pipe(Effect.provide(Capabilities))).catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`)
  process.exit(1)
})
