/**
 * `npm run demo`: a small support desk on the whole library, against Redis (REDIS_URL, or a redis-server started for
 * the demo when it is unset, stopped at the end).
 *
 * - tickets arrive as typed commands (CommandBus on Publisher/Subscriber); one, a refund the payment service
 *   refuses, fails every delivery and lands in the dead letters;
 * - each ticket's answer is streamed by a background run (ResumableStream): the desk reads it live, and a second
 *   reader joins halfway and still gets the whole answer;
 * - every step is recorded (EventSink), per-customer state is kept in subjects (SubjectStorage), and a live board
 *   shows the tickets (StreamAdapter), followed by a subscriber;
 * - the inspector (`Inspector.routes`) serves a page showing all of it: its URL, with the access token made at start,
 *   is printed.
 *
 * It prints what each part did in a few lines and ends by itself; `npm run demo -- --serve` keeps the inspector up
 * until Ctrl-C.
 */
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Fiber, Layer, Option, Queue, Redacted, References, Schema, Stream } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { randomBytes } from "node:crypto"
import { createServer } from "node:http"
import * as CommandBus from "../src/CommandBus.js"
import * as EventSink from "../src/EventSink.js"
import * as Publisher from "../src/Publisher.js"
import * as ResumableStream from "../src/ResumableStream.js"
import * as StreamAdapter from "../src/StreamAdapter.js"
import * as SubjectStorage from "../src/SubjectStorage.js"
import * as Subscriber from "../src/Subscriber.js"
import * as RedisServer from "../src/testing/RedisServer.js"
import { inspectorRoutes } from "./demo/inspector.js"

const serve = process.argv.includes("--serve")
const prefix = "desk:"

// ---- the desk's types ----

class OpenTicket extends Schema.TaggedClass<OpenTicket>()("OpenTicket", {
  ticket: Schema.String,
  customer: Schema.String,
  question: Schema.String
}) {}
class Refund extends Schema.TaggedClass<Refund>()("Refund", { ticket: Schema.String, customer: Schema.String }) {}
const Tickets = CommandBus.define({ topic: "tickets", commands: { OpenTicket, Refund } })

/** An answer, streamed word by word by a background run. */
const Answer = ResumableStream.define({
  name: "answer",
  input: Schema.Struct({ question: Schema.String }),
  chunk: Schema.String,
  run: ({ question }, writer) =>
    Effect.forEach(
      `About "${question}": your order left the warehouse this morning and arrives tomorrow before noon.`.split(" "),
      (word) => Effect.andThen(writer.append(`${word} `), Effect.sleep("25 millis")),
      { discard: true }
    )
})

/** A ticket on the live board. */
const BoardTicket = StreamAdapter.define({
  name: "board",
  item: Schema.Struct({ customer: Schema.String, status: Schema.Literals(["open", "answered", "failed"]) })
})

// ---- the story ----

const story = Effect.gen(function* () {
  const bus = yield* CommandBus.make(Tickets)
  const streams = yield* ResumableStream.ResumableStream
  const sink = yield* EventSink.EventSink
  const subjects = yield* SubjectStorage.SubjectStorage
  const board = (yield* StreamAdapter.StreamAdapter).stream(BoardTicket)

  // the board's follower: counts the changes it sees
  const changes = yield* Queue.unbounded<StreamAdapter.ChangeEvent<typeof BoardTicket.item.Type>>()
  const follower = yield* Effect.forkChild(
    Stream.runForEach(board.subscribe({ groupId: "today" }), (change) => Queue.offer(changes, change))
  )
  yield* Effect.sleep("50 millis") // subscribed

  const answered: Array<string> = []
  const handlers = bus.handle(
    {
      OpenTicket: (command) =>
        Effect.gen(function* () {
          yield* sink.emit({ event_type: "ticket.opened", data: { ticket: command.ticket } })
          yield* board.set("today", command.ticket, { customer: command.customer, status: "open" })
          yield* subjects.increment(command.customer, "tickets")
          const run = yield* streams.start(Answer, { question: command.question }, { key: command.ticket })
          const text = (yield* Stream.runCollect(run.stream)).map((entry) => entry.chunk).join("")
          answered.push(`${command.ticket}: ${text.trim()}`)
          yield* board.set("today", command.ticket, { customer: command.customer, status: "answered" })
          yield* sink.emit({
            event_type: "ticket.answered",
            data: { ticket: command.ticket, words: text.split(" ").length }
          })
        }),
      Refund: (command) =>
        Effect.andThen(
          board.set("today", command.ticket, { customer: command.customer, status: "failed" }),
          Effect.fail(new Error("the payment service refused the refund"))
        )
    },
    { group: "desk", maxDeliveries: 3, redeliveryDelay: "20 millis" }
  )
  const handling = yield* Effect.forkChild(handlers)

  yield* bus.send("OpenTicket", new OpenTicket({ ticket: "T-1", customer: "ann", question: "where is my order?" }))
  yield* bus.send(
    "OpenTicket",
    new OpenTicket({ ticket: "T-2", customer: "bob", question: "can I change the address?" })
  )
  yield* bus.send("Refund", new Refund({ ticket: "T-3", customer: "ann" }))

  // a second reader joins T-2's answer halfway, by its key, and still gets all of it
  const joined = yield* Effect.gen(function* () {
    for (;;) {
      const active = yield* streams.active(Answer, "T-2")
      if (Option.isSome(active)) return active.value
      yield* Effect.sleep("20 millis")
    }
  })
  yield* Effect.sleep("200 millis")
  const replay = (yield* Stream.runCollect(streams.resume(Answer, joined.token))).length

  // wait until both answers are in and the refund is dead-lettered
  const deadTopic = Subscriber.deadLetterTopic(Tickets.topic)
  const dead = yield* (yield* Subscriber.Subscriber)
    .subscribe(deadTopic, { group: "demo-audit" })
    .pipe(Stream.take(1), Stream.runHead)
  while (answered.length < 2) yield* Effect.sleep("20 millis")
  yield* sink.flush
  yield* Fiber.interrupt(handling)

  const stats = yield* sink.stats
  const ann = yield* subjects.load("ann")
  const seen = (yield* Queue.takeAll(changes)).length
  yield* Fiber.interrupt(follower)
  const items = yield* board.getGroup("today")

  const deadLetter = Option.getOrUndefined(dead)
  return [
    `CommandBus (Publisher/Subscriber): 3 tickets sent; 2 handled; the refund failed 3 times and went to ${deadTopic}` +
      (deadLetter?.deadLettered === undefined ? "" : ` (reason: ${deadLetter.deadLettered.reason})`),
    `ResumableStream: 2 answers streamed in the background; a reader that joined T-2 halfway got all ${replay} chunks`,
    ...answered.map((line) => `    ${line}`),
    `EventSink: ${stats.written} events written to ${prefix}events (${stats.dropped.overflow} dropped)`,
    `SubjectStorage: customer ann has ${String(ann.properties.tickets)} ticket(s) on record`,
    `StreamAdapter: the board holds ${items.map((item) => `${item.id} ${item.data.status}`).join(", ")}; its follower saw ${seen} changes`
  ]
})

// ---- the app ----

const Desk = Layer.mergeAll(
  // signed tokens: a random secret of this process (a real deployment shares one through STREAM_SECRET)
  ResumableStream.layer({
    streams: [Answer],
    keyPrefix: `${prefix}runs:`,
    secret: Redacted.make(process.env.STREAM_SECRET ?? randomBytes(32).toString("hex"))
  }),
  EventSink.layer({ streamKey: `${prefix}events` }),
  Publisher.layer({ keyPrefix: prefix }),
  Subscriber.layer({ keyPrefix: prefix }),
  SubjectStorage.layer({ keyPrefix: prefix }),
  StreamAdapter.layer({ keyPrefix: `${prefix}live:` })
)

const inspector = inspectorRoutes(prefix)
const Inspector = HttpRouter.serve(inspector.routes, { disableLogger: true, disableListenLog: true }).pipe(
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port: Number(process.env.PORT ?? 0), host: "127.0.0.1" }))
)

const program = Effect.gen(function* () {
  const server = yield* RedisServer.RedisServer
  const started = Date.now()
  yield* Console.log(`Redis: ${server.url} (${server.controllable ? "started for this demo" : "REDIS_URL"})`)
  const lines = yield* story
  for (const line of lines) yield* Console.log(line)
  yield* HttpServer.addressFormattedWith((url) => Console.log(`Inspector: ${url}/inspector?token=${inspector.token}`))
  yield* Console.log(`the story took ${((Date.now() - started) / 1000).toFixed(1)} s`)
  if (serve) {
    yield* Console.log("serving the inspector until Ctrl-C")
    yield* Effect.never
  }
})

// the inspector sees the desk's services (its event sink, its resumable runs' service for cancels)
const Live = Inspector.pipe(
  Layer.provideMerge(Desk),
  Layer.provideMerge(RedisServer.layerClient()),
  Layer.provideMerge(RedisServer.layer({ url: process.env.REDIS_URL }))
)

// the refund's failed deliveries are the story: the demo prints them in its own words, not as warnings;
// runMain closes everything (the redis-server it started too) on Ctrl-C or SIGTERM
NodeRuntime.runMain(program.pipe(Effect.provide(Live), Effect.provideService(References.MinimumLogLevel, "Error")))
