/**
 * StreamAdapter against raw ioredis doing the same work, over a group of 10,000 items (~110 bytes each):
 * (a) getGroup, against the seed's layout (one string key per item: SCAN MATCH + MGET), each item JSON-parsed; the
 *     database holds 9 other groups of the same size in that layout, as an application with several groups would;
 * (b) getGroup, against HGETALL of one hash, each item JSON-parsed;
 * (c) a filtered, ordered query (priority ≥ 5, by title, first 50), against HGETALL + parse + filter + sort;
 * (d) set with its event, 100 in flight, against pipelined HSET + PUBLISH of the same items.
 * Ours also decodes every item with its Schema, and every set also bumps the version and appends to the change log.
 */
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { Redis } from "ioredis"
import * as RedisClient from "../dist/RedisClient.js"
import * as StreamAdapter from "../dist/StreamAdapter.js"
import { type Suite, throughput } from "./harness.js"

const size = 10_000
const inFlight = 100

const Task = Schema.Struct({
  title: Schema.String,
  priority: Schema.Number,
  done: Schema.Boolean,
  owner: Schema.String
})
type Task = typeof Task.Type
const Tasks = StreamAdapter.define({ name: "tasks", item: Task })

const item = (i: number): Task => ({
  title: `task number ${i}`,
  priority: i % 10,
  done: i % 3 === 0,
  owner: `user-${i % 50}`
})
const items = Array.from({ length: size }, (_, i) => item(i))

const suite: Suite = {
  name: "StreamAdapter",
  setup: async (url) => {
    const runtime = ManagedRuntime.make(
      StreamAdapter.layer({ keyPrefix: "bench:sa:" }).pipe(Layer.provide(RedisClient.layer({ url })))
    )
    const tasks = (await runtime.runPromise(StreamAdapter.StreamAdapter)).stream(Tasks)
    const run = <A>(effect: Effect.Effect<A, unknown>) => runtime.runPromise(effect)
    const raw = new Redis(url, { protocol: 2 })
    let round = 0

    // the group, as ours stores it, and the same items in the seed's layout and in one plain hash
    await run(
      Effect.forEach(items, (data, i) => tasks.set("big", `t${i}`, data), { concurrency: inFlight, discard: true })
    )
    for (let start = 0; start < size; start += 1000) {
      const pipeline = raw.pipeline()
      for (let i = start; i < start + 1000; i++) {
        pipeline.hset("bench:hash:big", `t${i}`, JSON.stringify(items[i]))
        // the seed's layout, with 9 other groups of the same size beside this one: its SCAN walks them all
        for (let group = 0; group < 10; group++) {
          pipeline.set(`bench:seed:${group === 0 ? "big" : `other${group}`}:t${i}`, JSON.stringify(items[i]))
        }
      }
      await pipeline.exec()
    }

    const seedGroup = async () => {
      const found: Array<unknown> = []
      let cursor = "0"
      do {
        const [next, keys] = await raw.scan(cursor, "MATCH", "bench:seed:big:*", "COUNT", 1000)
        cursor = next
        if (keys.length > 0) for (const text of await raw.mget(...keys)) found.push(JSON.parse(text ?? "null"))
      } while (cursor !== "0")
      if (found.length !== size) throw new Error(`seed layout read ${found.length}`)
    }
    const hashGroup = async () => {
      const fields = await raw.hgetall("bench:hash:big")
      return Object.entries(fields).map(([id, text]) => ({ id, data: JSON.parse(text) as Task }))
    }
    const oursGroup = () =>
      run(tasks.getGroup("big")).then((group) => {
        if (group.length !== size) throw new Error(`getGroup read ${group.length}`)
      })

    return {
      scenarios: [
        {
          name: `getGroup of ${size / 1000}k items, vs the seed document's SCAN + MGET layout (not the published package)`,
          unit: "items/s",
          higherIsBetter: true,
          ours: () => throughput(size, oursGroup),
          raw: () => throughput(size, seedGroup)
        },
        {
          name: `getGroup of ${size / 1000}k items, vs HGETALL of one hash`,
          unit: "items/s",
          higherIsBetter: true,
          ours: () => throughput(size, oursGroup),
          raw: () => throughput(size, hashGroup)
        },
        {
          name: `filtered, ordered query over ${size / 1000}k items, vs HGETALL + filter + sort`,
          unit: "queries/s",
          higherIsBetter: true,
          ours: () =>
            throughput(20, () =>
              run(
                Effect.forEach(Array.from({ length: 20 }), () =>
                  tasks.query("big", { where: { priority: { gte: 5 } }, orderBy: "title", limit: 50 })
                )
              )
            ),
          raw: () =>
            throughput(20, async () => {
              for (let i = 0; i < 20; i++) {
                const all = await hashGroup()
                all
                  .filter((entry) => entry.data.priority >= 5)
                  .sort((a, b) => (a.data.title < b.data.title ? -1 : a.data.title > b.data.title ? 1 : 0))
                  .slice(0, 50)
              }
            })
        },
        {
          name: `set with its event, ${inFlight} in flight, vs pipelined HSET + PUBLISH`,
          unit: "sets/s",
          higherIsBetter: true,
          ours: () => {
            const group = `w${++round}`
            return throughput(size, () =>
              run(
                Effect.forEach(items, (data, i) => tasks.set(group, `t${i}`, data), {
                  concurrency: inFlight,
                  discard: true
                })
              )
            )
          },
          raw: () => {
            const key = `bench:raw:w${++round}`
            return throughput(size, async () => {
              for (let start = 0; start < size; start += inFlight) {
                const pipeline = raw.pipeline()
                for (let i = start; i < start + inFlight; i++) {
                  const text = JSON.stringify(items[i])
                  pipeline.hset(key, `t${i}`, text)
                  pipeline.publish(`${key}:events`, JSON.stringify({ type: "update", id: `t${i}`, data: items[i] }))
                }
                await pipeline.exec()
              }
            })
          }
        }
      ],
      close: async () => {
        raw.disconnect()
        await runtime.dispose()
      }
    }
  }
}

export default suite
