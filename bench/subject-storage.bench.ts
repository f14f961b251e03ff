/**
 * SubjectStorage against raw ioredis doing the same work:
 * (a) 50 concurrent writers × 200 increments of one property through `set` with a function (atomic read-modify-write);
 *     raw baseline: the classic WATCH/HGET/MULTI/HSET/EXEC loop, one connection per writer (WATCH needs its own).
 * (b) the same through `increment`; raw baseline: EVALSHA of an HGET+HSET script, 50 writers on one connection.
 * (c) load, one at a time and 100 in flight: HGETALL of a 20-property subject, each value JSON-parsed, split into
 *     default and extended, on both sides.
 * (d) store, the same way: 20 properties written at once; raw baseline: HSET of the same JSON-encoded fields.
 */
import { Effect, Layer, ManagedRuntime, Option } from "effect"
import { Redis } from "ioredis"
import * as RedisClient from "../dist/RedisClient.js"
import * as SubjectStorage from "../dist/SubjectStorage.js"
import { latencyMicros, type Suite, throughput } from "./harness.js"

const writers = 50
const perWriter = 200
const total = writers * perWriter
const subjects = 5_000
const sequential = 2_000
const inFlight = 100
const properties = Array.from({ length: 20 }, (_, i) => [`prop${i}`, { n: i, label: `value-${i}` }] as const)

const incrementLua = `local v = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') + 1
redis.call('HSET', KEYS[1], ARGV[1], v)
return v`

const suite: Suite = {
  name: "SubjectStorage",
  setup: async (url) => {
    const runtime = ManagedRuntime.make(
      SubjectStorage.layer({ keyPrefix: "bench:" }).pipe(Layer.provide(RedisClient.layer({ url })))
    )
    const storage = await runtime.runPromise(SubjectStorage.SubjectStorage)
    const run = <A>(effect: Effect.Effect<A, unknown>) => Effect.runPromise(effect)
    const raw = new Redis(url, { protocol: 2 })
    const watchers = Array.from({ length: writers }, () => new Redis(url, { protocol: 2 }))
    const sha = (await raw.script("LOAD", incrementLua)) as string
    let round = 0
    let watchRetries = 0
    let watchCommits = 0

    const plusOne = (previous: Option.Option<unknown>) => (Option.getOrElse(previous, () => 0) as number) + 1

    const concurrently = <A>(work: () => Effect.Effect<A, unknown>) =>
      run(
        Effect.forEach(
          Array.from({ length: writers }),
          () => Effect.forEach(Array.from({ length: perWriter }), work, { discard: true }),
          { concurrency: "unbounded", discard: true }
        )
      )

    const rawWatchIncrement = async (client: Redis, key: string) => {
      for (;;) {
        await client.watch(key)
        const current = Number((await client.hget(key, "pn")) ?? 0)
        const result = await client
          .multi()
          .hset(key, "pn", String(current + 1))
          .exec()
        if (result !== null) return
        watchRetries++
      }
    }

    const fillSubjects = async (prefix: string) => {
      const pipeline = raw.pipeline()
      for (let i = 0; i < subjects; i++) {
        pipeline.hset(
          `s:${prefix}${i}`,
          Object.fromEntries(properties.map(([name, value]) => [`p${name}`, JSON.stringify(value)]))
        )
      }
      await pipeline.exec()
    }
    await fillSubjects("bench:load:")
    const loadIds = Array.from({ length: subjects }, (_, i) => `load:${i}`)

    /** What raw code does to load a subject: HGETALL, each value JSON-parsed, split by kind. */
    const rawLoad = async (i: number) => {
      const fields = await raw.hgetall(`s:bench:load:${i}`)
      const out: { properties: Record<string, unknown>; extended: Record<string, unknown> } = {
        properties: {},
        extended: {}
      }
      for (const [field, text] of Object.entries(fields)) {
        const target = field.startsWith("e") ? out.extended : out.properties
        target[field.slice(1)] = JSON.parse(text)
      }
      return out
    }

    /** What raw code does to store the properties: JSON-encode them into their fields, one HSET. */
    const rawStore = (key: string) =>
      raw.hset(`s:${key}`, Object.fromEntries(properties.map(([name, value]) => [`p${name}`, JSON.stringify(value)])))

    return {
      scenarios: [
        {
          name: `set with a function, ${writers}-way contended ×${perWriter}, vs WATCH/MULTI/EXEC`,
          unit: "updates/s",
          higherIsBetter: true,
          ours: () => {
            const subject = `rmw${++round}`
            return throughput(total, () => concurrently(() => storage.set(subject, "n", plusOne)))
          },
          raw: () => {
            const key = `bench:watch:${++round}`
            watchCommits += total
            return throughput(total, () =>
              Promise.all(
                watchers.map(async (client) => {
                  for (let i = 0; i < perWriter; i++) await rawWatchIncrement(client, key)
                })
              )
            )
          },
          notes: () => [`raw WATCH: ${(watchRetries / Math.max(1, watchCommits)).toFixed(1)} retries per success`]
        },
        {
          name: `increment, ${writers}-way contended ×${perWriter}, vs EVALSHA HGET+HSET`,
          unit: "updates/s",
          higherIsBetter: true,
          ours: () => {
            const subject = `incr${++round}`
            return throughput(total, () => concurrently(() => storage.increment(subject, "n")))
          },
          raw: () => {
            const key = `bench:lua:${++round}`
            return throughput(total, () =>
              Promise.all(
                Array.from({ length: writers }, async () => {
                  for (let i = 0; i < perWriter; i++) await raw.evalsha(sha, 1, key, "pn")
                })
              )
            )
          }
        },
        {
          name: `load a 20-property subject, one at a time, vs HGETALL + JSON.parse`,
          unit: "µs/load",
          higherIsBetter: false,
          ours: () => latencyMicros(sequential, () => run(Effect.forEach(loadIds.slice(0, sequential), storage.load))),
          raw: () =>
            latencyMicros(sequential, async () => {
              for (let i = 0; i < sequential; i++) await rawLoad(i)
            })
        },
        {
          name: `store 20 properties, one at a time, vs HSET of the JSON fields`,
          unit: "µs/store",
          higherIsBetter: false,
          ours: () => {
            const prefix = `store${++round}:`
            return latencyMicros(sequential, () =>
              run(
                Effect.forEach(loadIds.slice(0, sequential), (id) =>
                  storage.store(`${prefix}${id}`, { inserts: properties })
                )
              )
            )
          },
          raw: () => {
            const prefix = `bench:rawstore${++round}:`
            return latencyMicros(sequential, async () => {
              for (let i = 0; i < sequential; i++) await rawStore(`${prefix}${i}`)
            })
          }
        },
        {
          name: `load, ${inFlight} in flight, vs HGETALL + JSON.parse`,
          unit: "loads/s",
          higherIsBetter: true,
          ours: () => throughput(subjects, () => run(Effect.forEach(loadIds, storage.load, { concurrency: inFlight }))),
          raw: () =>
            throughput(subjects, async () => {
              for (let start = 0; start < subjects; start += inFlight) {
                await Promise.all(Array.from({ length: inFlight }, (_, j) => rawLoad(start + j)))
              }
            })
        },
        {
          name: `store, ${inFlight} in flight, vs HSET of the JSON fields`,
          unit: "stores/s",
          higherIsBetter: true,
          ours: () => {
            const prefix = `store${++round}:`
            return throughput(subjects, () =>
              run(
                Effect.forEach(loadIds, (id) => storage.store(`${prefix}${id}`, { inserts: properties }), {
                  concurrency: inFlight
                })
              )
            )
          },
          raw: () => {
            const prefix = `bench:rawstore${++round}:`
            return throughput(subjects, async () => {
              for (let start = 0; start < subjects; start += inFlight) {
                await Promise.all(Array.from({ length: inFlight }, (_, j) => rawStore(`${prefix}${start + j}`)))
              }
            })
          }
        }
      ],
      close: async () => {
        raw.disconnect()
        for (const client of watchers) client.disconnect()
        await runtime.dispose()
      }
    }
  }
}

export default suite
