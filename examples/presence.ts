/**
 * `npm run example:presence`: who is online, across instances. Two instances of an application (two processes) each
 * keep their user's entry in a presence list alive with a heartbeat; a third watches the list. One instance is killed
 * (SIGKILL: no goodbye); its entry expires by itself, on every instance, within its time to live and the sweep
 * interval. The other stops cleanly and deletes its entry.
 *
 * Redis: REDIS_URL, or a redis-server started for the example when it is unset. `presence.ts member <name> <url>`
 * runs one instance (what the example spawns).
 */
import { spawn } from "node:child_process"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Duration, Effect, Layer, Schedule, Schema, Stream } from "effect"
import * as RedisClient from "../src/RedisClient.js"
import * as StreamAdapter from "../src/StreamAdapter.js"
import * as RedisServer from "../src/testing/RedisServer.js"

const ttl = Duration.seconds(3)
const heartbeat = Duration.seconds(1)
/** A user's entry: since when, and the time of the instance's last heartbeat (ms since the epoch). */
const Entry = Schema.Struct({ name: Schema.String, since: Schema.Number, beat: Schema.Number })
type Entry = typeof Entry.Type
const Presence = StreamAdapter.define({
  name: "presence",
  item: Entry,
  ttl // every set renews it: an entry whose instance stopped beating is gone within 3 s (and the sweep's 1 s)
})

const instance = (url: string) =>
  StreamAdapter.layer({ keyPrefix: "example:" }).pipe(Layer.provide(RedisClient.layer({ url })))

/** One instance: its user's entry, set again every second, deleted when the instance stops cleanly. */
const member = (name: string, url: string) =>
  Effect.gen(function* () {
    const lobby = (yield* StreamAdapter.StreamAdapter).stream(Presence)
    const since = Date.now()
    // a beat is not cut short: an interrupted set may still be applied, and it must not land after the goodbye
    const beat = Effect.uninterruptible(
      Effect.suspend(() => lobby.set("lobby", name, { name, since, beat: Date.now() }))
    )
    yield* Effect.addFinalizer(() => Effect.ignore(lobby.delete("lobby", name)))
    yield* beat
    yield* Console.log("online")
    yield* Effect.repeat(beat, Schedule.spaced(heartbeat))
  }).pipe(Effect.scoped, Effect.provide(instance(url)))

const describe = (event: StreamAdapter.ChangeEvent<Entry>) =>
  event.type === "create" || event.type === "update"
    ? `${event.id} is online`
    : event.type === "delete"
      ? `${event.id} left`
      : event.type === "expired"
        ? `${event.id} expired`
        : event.type

/** Starts an instance in a process of its own; resolves when it says it is online. */
const spawnMember = (name: string, url: string) =>
  Effect.acquireRelease(
    Effect.callback<ReturnType<typeof spawn>>((resume) => {
      const child = spawn(process.execPath, [...process.execArgv, import.meta.filename, "member", name, url], {
        stdio: ["ignore", "pipe", "inherit"]
      })
      child.stdout?.once("data", () => resume(Effect.succeed(child)))
    }),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  )

const watch = Effect.gen(function* () {
  const server = yield* RedisServer.RedisServer
  const lobby = (yield* StreamAdapter.StreamAdapter).stream(Presence)
  const { position } = yield* lobby.snapshot("lobby")
  const events = lobby.subscribe({ groupId: "lobby", after: position })
  const ann = yield* spawnMember("ann", server.url)
  const bob = yield* spawnMember("bob", server.url)
  const online = yield* lobby.getGroup("lobby")
  yield* Console.log(
    `online: ${online
      .map((item) => item.id)
      .sort()
      .join(", ")}`
  )

  const killedAt = Date.now()
  bob.kill("SIGKILL") // a crash: bob's instance never says goodbye
  yield* Console.log("bob's instance killed")
  yield* events.pipe(
    Stream.filter((event) => event.type !== "update"), // heartbeats
    Stream.takeUntil((event) => event.type === "expired"),
    Stream.runForEach((event) =>
      Console.log(
        event.type === "expired"
          ? `${describe(event)} ${Date.now() - killedAt} ms after the kill, ` +
              `${Date.now() - event.previous.beat - Duration.toMillis(ttl)} ms after its deadline ` +
              `(its last heartbeat + ttl ${Duration.format(ttl)}; heartbeat ${Duration.format(heartbeat)}, sweep every 1s)`
          : describe(event)
      )
    )
  )
  const before = yield* lobby.snapshot("lobby")
  ann.kill("SIGTERM") // a clean stop: ann's instance deletes its entry
  const [left] = yield* lobby.subscribe({ groupId: "lobby", after: before.position }).pipe(
    Stream.filter((event) => event.type === "delete"),
    Stream.take(1),
    Stream.runCollect
  )
  yield* Console.log(left === undefined ? "ann did not leave" : describe(left))
  const rest = yield* lobby.getGroup("lobby")
  yield* Console.log(`online: ${rest.length === 0 ? "nobody" : rest.map((item) => item.id).join(", ")}`)
}).pipe(
  Effect.scoped,
  Effect.provide(
    StreamAdapter.layer({ keyPrefix: "example:" }).pipe(
      Layer.provideMerge(RedisServer.layerClient()),
      Layer.provideMerge(RedisServer.layer({ url: process.env.REDIS_URL }))
    )
  )
)

const [mode, name, url] = process.argv.slice(2)
NodeRuntime.runMain(mode === "member" ? member(name ?? "", url ?? "") : watch)
