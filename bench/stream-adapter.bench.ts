/**
 * StreamAdapter against raw ioredis and Motia's published adapter (`@motiadev/adapter-redis-streams`, on node-redis:
 * a group is one hash, read whole with HGETALL) doing the same work, over groups of 10,000 items (~110 bytes each),
 * with 9 other groups of 10,000 beside the one read, in each side's layout:
 * (a) set, 100 in flight (raw: pipelined HSET + PUBLISH of 100 items at a time);
 * (b) get, 100 in flight: 10,000 gets of existing items (raw: HGET + JSON.parse);
 * (c) getGroup of 10,000 items (raw: HGETALL of one hash, each item JSON-parsed);
 * (d) a query: open tasks (`where: { done: false }`), by title, first 50 (raw: HGETALL + parse + filter + sort);
 * (e) change events: sets of one item at 2,000 per second for 2 seconds, each received by a subscriber on another
 *     connection; p50 and p99 of set → event, in ms.
 * (f) set with a time to live (a presence heartbeat), 100 in flight (raw: pipelined HSET + ZADD of the deadline +
 *     PUBLISH); Motia's adapter has no expiry.
 * Ours also decodes every item with its Schema, and every set also bumps the version and appends to the change log.
 */
import { RedisStreamAdapterManager } from "@motiadev/adapter-redis-streams"
import { Effect, Fiber, Layer, ManagedRuntime, Schema, Stream } from "effect"
import { Redis } from "ioredis"
import { setTimeout as sleep } from "node:timers/promises"
import * as RedisClient from "../dist/RedisClient.js"
import * as StreamAdapter from "../dist/StreamAdapter.js"
import {
  allocatedPerOp,
  atFixedRate,
  deferred,
  inFlight,
  type Measure,
  type Meter,
  percentile,
  type Scenario,
  type Suite,
  throughput
} from "./harness.js"

const size = 10_000
const otherGroups = 9
const parallel = 100
const queries = 20
const eventsPerMs = 2
const eventSeconds = 2
const motiaName = "@motiadev/adapter-redis-streams 0.17.14-beta.196"

const Task = Schema.Struct({
  title: Schema.String,
  priority: Schema.Number,
  done: Schema.Boolean,
  owner: Schema.String
})
type Task = typeof Task.Type
const Tasks = StreamAdapter.define({ name: "tasks", item: Task })
const ExpiringTasks = StreamAdapter.define({ name: "expiring", item: Task, ttl: "5 minutes" })
/** The item of the event scenario: when its set was issued (`performance.now()`). */
const Ping = Schema.Struct({ sent: Schema.Number })
const Pings = StreamAdapter.define({ name: "pings", item: Ping })

const item = (i: number): Task => ({
  title: `task number ${i}`,
  priority: i % 10,
  done: i % 3 === 0,
  owner: `user-${i % 50}`
})
const items = Array.from({ length: size }, (_, i) => item(i))
const ids = items.map((_, i) => `t${i}`)
const groups = ["big", ...Array.from({ length: otherGroups }, (_, g) => `other${g + 1}`)]

/** Throws unless `found` items were read where `expected` were due (each side's work is checked). */
const expectCount = (side: string, found: number, expected: number) => {
  if (found !== expected) throw new Error(`${side} read ${found} of ${expected}`)
}

/** One side of the event scenario: `listen` calls `onSent` with each received event's send time; `set` writes one. */
interface EventSide {
  readonly listen: (group: string, onSent: (sent: number) => void) => Promise<() => Promise<void>>
  readonly set: (group: string, sent: number) => Promise<unknown>
}

/**
 * Latencies (ms) of set → event over `eventSeconds` at `eventsPerMs`. A handshake first: sets with `sent = -1` until
 * the listener sees one, so the subscription is live before the clock starts.
 */
const eventLatencies = async (side: EventSide, group: string) => {
  const expected = eventsPerMs * 1000 * eventSeconds
  const latencies: Array<number> = []
  let ready = false
  const done = deferred()
  const stop = await side.listen(group, (sent) => {
    if (sent < 0) {
      ready = true
    } else if (latencies.push(performance.now() - sent) === expected) {
      done.resolve()
    }
  })
  while (!ready) {
    await side.set(group, -1)
    await sleep(20)
  }
  await atFixedRate(eventsPerMs, eventSeconds, (count) =>
    Promise.all(Array.from({ length: count }, () => side.set(group, performance.now())))
  )
  const timeout = setTimeout(() => done.resolve(), 5_000)
  await done.promise
  clearTimeout(timeout)
  await stop()
  expectCount("event listener", latencies.length, expected)
  return latencies
}

const suite: Suite = {
  name: "StreamAdapter",
  setup: async (url) => {
    const runtime = ManagedRuntime.make(
      StreamAdapter.layer({ keyPrefix: "bench:sa:" }).pipe(Layer.provide(RedisClient.layer({ url })))
    )
    const adapter = await runtime.runPromise(StreamAdapter.StreamAdapter)
    const tasks = adapter.stream(Tasks)
    const pings = adapter.stream(Pings)
    const expiring = adapter.stream(ExpiringTasks)
    const run = <A>(effect: Effect.Effect<A, unknown>) => runtime.runPromise(effect)
    const raw = new Redis(url, { protocol: 2 })
    const rawSubscriber = new Redis(url, { protocol: 2 })
    // Motia's manager: its own node-redis connection; host and port given explicitly, since its subscriber connection
    // copies them from the shared client's socket options (with a URL only, it would subscribe on localhost:6379)
    const { hostname, port } = new URL(url)
    const manager = new RedisStreamAdapterManager(
      { socket: { host: hostname, port: Number(port) } },
      { keyPrefix: "bench:motia:" }
    )
    const socket = (manager.getClient() as { options?: { socket?: { port?: number } } }).options?.socket
    if (socket?.port !== Number(port)) throw new Error("Motia's client does not point at the bench server")
    const motia = manager.createStream<Task>("tasks")
    const motiaPings = manager.createStream<{ sent: number }>("pings")
    let round = 0

    // every side's groups: "big" and 9 others of 10k items each
    for (const group of groups) {
      await run(
        Effect.forEach(items, (data, i) => tasks.set(group, ids[i] as string, data), {
          concurrency: parallel,
          discard: true
        })
      )
      await inFlight(size, parallel, (i) => motia.set(group, ids[i] as string, items[i] as Task))
      for (let start = 0; start < size; start += 1000) {
        const pipeline = raw.pipeline()
        for (let i = start; i < start + 1000; i++)
          pipeline.hset(`bench:hash:${group}`, `t${i}`, JSON.stringify(items[i]))
        await pipeline.exec()
      }
    }

    const rawGroup = async () => {
      const fields = await raw.hgetall("bench:hash:big")
      return Object.entries(fields).map(([id, text]) => ({ id, data: JSON.parse(text) as Task }))
    }
    const byTitle = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

    // (a) set: a fresh group per round on every side
    const oursSet = (meter: Meter = throughput) => {
      const group = `w${++round}`
      return meter(size, () =>
        run(
          Effect.forEach(items, (data, i) => tasks.set(group, `t${i}`, data), { concurrency: parallel, discard: true })
        )
      )
    }
    const rawSet = (meter: Meter = throughput) => {
      const key = `bench:raw:w${++round}`
      return meter(size, async () => {
        for (let start = 0; start < size; start += parallel) {
          const pipeline = raw.pipeline()
          for (let i = start; i < start + parallel; i++) {
            pipeline.hset(key, `t${i}`, JSON.stringify(items[i]))
            pipeline.publish(`${key}:events`, JSON.stringify({ type: "update", id: `t${i}`, data: items[i] }))
          }
          await pipeline.exec()
        }
      })
    }
    // (f) set with a time to live: a fresh group per round
    const oursSetTtl = () => {
      const group = `e${++round}`
      return throughput(size, () =>
        run(
          Effect.forEach(items, (data, i) => expiring.set(group, `t${i}`, data), {
            concurrency: parallel,
            discard: true
          })
        )
      )
    }
    const rawSetTtl = () => {
      const key = `bench:raw:e${++round}`
      return throughput(size, async () => {
        for (let start = 0; start < size; start += parallel) {
          const pipeline = raw.pipeline()
          const deadline = Date.now() + 300_000
          for (let i = start; i < start + parallel; i++) {
            pipeline.hset(key, `t${i}`, JSON.stringify(items[i]))
            pipeline.zadd(`${key}:expiry`, deadline, `t${i}`)
            pipeline.publish(`${key}:events`, JSON.stringify({ type: "update", id: `t${i}`, data: items[i] }))
          }
          await pipeline.exec()
        }
      })
    }
    const motiaSet = (meter: Meter = throughput) => {
      const group = `w${++round}`
      return meter(size, () => inFlight(size, parallel, (i) => motia.set(group, `t${i}`, items[i] as Task)))
    }

    // (b) get: each side counts the items it found
    const counting =
      (side: string, get: (id: string) => Promise<unknown>) =>
      (meter: Meter = throughput) =>
        meter(size, async () => {
          let found = 0
          await inFlight(size, parallel, async (i) => {
            if ((await get(ids[i] as string)) !== null) found++
          })
          expectCount(side, found, size)
        })
    const oursGet = (meter: Meter = throughput) =>
      meter(size, async () => {
        const got = await run(Effect.forEach(ids, (id) => tasks.get("big", id), { concurrency: parallel }))
        expectCount("ours", got.filter((option) => option._tag === "Some").length, size)
      })
    const rawGet = counting("raw", async (id) => {
      const text = await raw.hget("bench:hash:big", id)
      return text === null ? null : (JSON.parse(text) as Task)
    })
    const motiaGet = counting("Motia", (id) => motia.get("big", id))

    // (d) the query, 20 times per figure
    const query = { where: { done: false }, orderBy: "title", limit: 50 } as const
    const repeated = (side: string, once: () => Promise<ReadonlyArray<unknown>>) => () =>
      throughput(queries, async () => {
        for (let i = 0; i < queries; i++) expectCount(side, (await once()).length, 50)
      })

    // (e) change events of one item ("p") of a fresh group per round
    const oursEvents: EventSide = {
      listen: async (group, onSent) => {
        const fiber = runtime.runFork(
          Stream.runForEach(pings.subscribe({ groupId: group, id: "p" }), (event) =>
            Effect.sync(() => {
              if (event.type === "create" || event.type === "update") onSent(event.data.sent)
            })
          )
        )
        return () => run(Fiber.interrupt(fiber)).then(() => undefined)
      },
      set: (group, sent) => run(pings.set(group, "p", { sent }))
    }
    const rawEvents: EventSide = {
      listen: async (group, onSent) => {
        const channel = `bench:raw:${group}:events`
        const listener = (from: string, message: string) => {
          if (from === channel) onSent((JSON.parse(message) as { data: { sent: number } }).data.sent)
        }
        rawSubscriber.on("message", listener)
        await rawSubscriber.subscribe(channel)
        return async () => {
          await rawSubscriber.unsubscribe(channel)
          rawSubscriber.off("message", listener)
        }
      },
      set: (group, sent) => {
        const data = JSON.stringify({ sent })
        return raw
          .pipeline()
          .hset(`bench:raw:${group}`, "p", data)
          .publish(`bench:raw:${group}:events`, JSON.stringify({ type: "update", id: "p", data: { sent } }))
          .exec()
      }
    }
    // Motia publishes a set's event on the item's channel only, so its subscriber listens to the item
    const motiaEvents: EventSide = {
      listen: async (group, onSent) => {
        await motiaPings.subscribe<{ sent: number }>({ groupId: group, id: "p" }, (event) => onSent(event.data.sent))
        return () => motiaPings.unsubscribe({ groupId: group, id: "p" })
      },
      set: (group, sent) => motiaPings.set(group, "p", { sent })
    }
    const eventScenario = (p: number): Scenario => {
      const figure = (side: EventSide) => async () => percentile(await eventLatencies(side, `live${++round}`), p)
      return {
        name: `set → change event on another connection, p${p} at ${eventsPerMs}k changes/s`,
        unit: "ms",
        higherIsBetter: false,
        ours: figure(oursEvents),
        raw: figure(rawEvents),
        peer: { name: motiaName, measure: figure(motiaEvents) }
      }
    }

    /** Bytes allocated per operation of each side (set, get, set → event), beside the speed rows. */
    const allocation = (name: string, measures: readonly [Measure, Measure, Measure]): Scenario => ({
      name: `bytes allocated per ${name}`,
      unit: "B/op",
      higherIsBetter: false,
      ours: measures[0],
      raw: measures[1],
      peer: { name: motiaName, measure: measures[2] }
    })
    const eventAllocation = (side: EventSide) => () =>
      allocatedPerOp(eventsPerMs * 1000 * eventSeconds, () => eventLatencies(side, `live${++round}`))

    return {
      scenarios: [
        {
          name: `set ${size / 1000}k items, ${parallel} in flight (raw: pipelined HSET + PUBLISH)`,
          unit: "sets/s",
          higherIsBetter: true,
          ours: oursSet,
          raw: rawSet,
          peer: { name: motiaName, measure: motiaSet },
          notes: () => [
            "Motia's set: HEXISTS, then HSET and PUBLISH (two round trips; create or update decided by the racy read), no version or change log; ours: one script call per batch of concurrent sets of a group, with version and change log"
          ]
        },
        {
          name: `set with a time to live, ${size / 1000}k items, ${parallel} in flight (raw: pipelined HSET + ZADD + PUBLISH)`,
          unit: "sets/s",
          higherIsBetter: true,
          ours: oursSetTtl,
          raw: rawSetTtl,
          notes: () => [
            "Motia's adapter has no expiry (iii-hq/iii#1222 asks for it); ours also hints the index of expiring groups once per batch"
          ]
        },
        {
          name: `get, ${parallel} in flight, ${size / 1000}k gets of existing items (raw: HGET + JSON.parse)`,
          unit: "gets/s",
          higherIsBetter: true,
          ours: oursGet,
          raw: rawGet,
          peer: { name: motiaName, measure: motiaGet }
        },
        {
          name: `getGroup of ${size / 1000}k items, beside ${otherGroups} groups of ${size / 1000}k (raw: HGETALL)`,
          unit: "items/s",
          higherIsBetter: true,
          ours: () =>
            throughput(size, async () => expectCount("ours", (await run(tasks.getGroup("big"))).length, size)),
          raw: () => throughput(size, async () => expectCount("raw", (await rawGroup()).length, size)),
          peer: {
            name: motiaName,
            measure: () =>
              throughput(size, async () => expectCount("Motia", (await motia.getGroup("big")).length, size))
          },
          notes: () => ["Motia's getGroup also sorts the items by their _createdAt"]
        },
        {
          name: `query (done = false, by title, first 50) over ${size / 1000}k items (raw: HGETALL + filter + sort)`,
          unit: "queries/s",
          higherIsBetter: true,
          ours: repeated("ours", () => run(tasks.query("big", query))),
          raw: repeated("raw", async () =>
            (await rawGroup())
              .filter((entry) => entry.data.done === false)
              .sort((a, b) => byTitle(a.data.title, b.data.title))
              .slice(0, 50)
          ),
          peer: { name: motiaName, measure: repeated("Motia", () => motia.query("big", query)) },
          notes: () => [
            "Motia's query is its getGroup (HGETALL, parse, sort by _createdAt), then where (equality only: item[key] === value, so no range conditions), orderBy, offset and limit in the process; the query uses an equality so that all three run it"
          ]
        },
        eventScenario(50),
        {
          ...eventScenario(99),
          notes: () => [
            "each side subscribes on a connection other than the one it writes on: ours through the client's subscriber connection (adapter subscribe of the item), raw on an ioredis subscriber, Motia through its own node-redis subscriber connection (it publishes a set's event on the item's channel only, so it subscribes to the item); every event is counted"
          ]
        },
        allocation(`set, ${parallel} in flight`, [
          () => oursSet(allocatedPerOp),
          () => rawSet(allocatedPerOp),
          () => motiaSet(allocatedPerOp)
        ]),
        allocation(`get, ${parallel} in flight`, [
          () => oursGet(allocatedPerOp),
          () => rawGet(allocatedPerOp),
          () => motiaGet(allocatedPerOp)
        ]),
        allocation(`set → change event at ${eventsPerMs}k changes/s (writer and subscriber)`, [
          eventAllocation(oursEvents),
          eventAllocation(rawEvents),
          eventAllocation(motiaEvents)
        ])
      ],
      close: async () => {
        raw.disconnect()
        rawSubscriber.disconnect()
        await manager.shutdown()
        await runtime.dispose()
      }
    }
  }
}

export default suite
