/**
 * SubjectStorage against raw ioredis doing the same work:
 * (a) 50 concurrent writers × 200 increments of one property through `set` with a function (atomic read-modify-write);
 *     raw baseline: the classic WATCH/HGET/MULTI/HSET/EXEC loop, one connection per writer (WATCH needs its own).
 * (b) the same through `increment`; raw baseline: EVALSHA of an HGET+HSET script, 50 writers on one connection.
 * (c) load, one at a time and 100 in flight: HGETALL of a 20-property subject, each value JSON-parsed, split into
 *     default and extended, on both sides.
 * (d) store, the same way: 20 properties written at once; raw baseline: HSET of the same JSON-encoded fields.
 *     With a time to live (every property expires 5 minutes after the write), 100 in flight: raw baseline HSET and a
 *     ZADD of the fields' deadlines, pipelined.
 * (e) transfers between two subjects, 50 concurrent writers × 100, through `transaction`; raw baseline: KRules'
 *     algorithm, WATCH both hashes, HGET both balances, MULTI/HSET/HSET/EXEC, retried at once on a nil EXEC, one
 *     connection per writer. Retries per committed transfer are reported for both.
 * No peer package: KRules, whose algorithms the raw baselines follow, is a Python library (no npm package does this).
 */
import { Effect, Layer, ManagedRuntime, Option } from "effect"
import { Redis } from "ioredis"
import * as RedisClient from "../dist/RedisClient.js"
import * as SubjectStorage from "../dist/SubjectStorage.js"
import { allocatedPerOp, latencyMicros, type Meter, type Scenario, type Suite, throughput } from "./harness.js"

const writers = 50
const perWriter = 200
const transfersPerWriter = 100
const transfers = writers * transfersPerWriter
const total = writers * perWriter
const subjects = 5_000
const sequential = 5_000
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
    // separate instances of the application: their transactions do not wait for each other in-process
    const instanceRuntimes = Array.from({ length: writers }, () =>
      ManagedRuntime.make(SubjectStorage.layer({ keyPrefix: "bench:" }).pipe(Layer.provide(RedisClient.layer({ url }))))
    )
    const instances = await Promise.all(
      instanceRuntimes.map((instance) => instance.runPromise(SubjectStorage.SubjectStorage))
    )

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

    /**
     * Transfers of 1 between two subjects by `writers` concurrent writers, writer i on `storages[i]` (modulo), against
     * KRules' algorithm: WATCH both, read both, MULTI/EXEC the two new balances, a nil EXEC retried at once.
     */
    const transferScenario = (label: string, storages: ReadonlyArray<SubjectStorage.Service>): Scenario => {
      const retries = { ours: 0, raw: 0 }
      const commits = { ours: 0, raw: 0 }
      const conflicts = () =>
        run(
          Effect.map(
            Effect.forEach(storages, (s) => s.conflicts),
            (all) => all.reduce((a, b) => a + b, 0)
          )
        )
      const rawTransfer = async (client: Redis, from: string, to: string) => {
        for (;;) {
          await client.watch(from, to)
          const [a, b] = await Promise.all([client.hget(from, "pbalance"), client.hget(to, "pbalance")])
          const result = await client
            .multi()
            .hset(from, "pbalance", String(Number(a ?? 0) - 1))
            .hset(to, "pbalance", String(Number(b ?? 0) + 1))
            .exec()
          if (result !== null) return
          retries.raw++
        }
      }
      const perSuccess = (side: "ours" | "raw") => (retries[side] / Math.max(1, commits[side])).toFixed(2)
      return {
        name: `two-subject transfers, ${writers}-way contended ×${transfersPerWriter}, ${label}, vs WATCH/MULTI/EXEC loop`,
        unit: "transfers/s",
        higherIsBetter: true,
        ours: async () => {
          const tag = `t${++round}`
          const [from, to] = [SubjectStorage.tagged(tag, "a"), SubjectStorage.tagged(tag, "b")]
          const transfer = (storage: SubjectStorage.Service) =>
            storage.transaction([from, to], (tx) =>
              Effect.gen(function* () {
                const a = Option.getOrElse(yield* tx.get(from, "balance"), () => 0) as number
                const b = Option.getOrElse(yield* tx.get(to, "balance"), () => 0) as number
                yield* tx.set(from, "balance", a - 1)
                yield* tx.set(to, "balance", b + 1)
              })
            )
          const before = await conflicts()
          const measured = await throughput(transfers, () =>
            run(
              Effect.forEach(
                Array.from({ length: writers }, (_, i) => storages[i % storages.length] as SubjectStorage.Service),
                (storage) =>
                  Effect.forEach(Array.from({ length: transfersPerWriter }), () => transfer(storage), {
                    discard: true
                  }),
                { concurrency: "unbounded", discard: true }
              )
            )
          )
          retries.ours += (await conflicts()) - before
          commits.ours += transfers
          return measured
        },
        raw: () => {
          const tag = `bench:transfer${++round}`
          commits.raw += transfers
          return throughput(transfers, () =>
            Promise.all(
              watchers.map(async (client) => {
                for (let i = 0; i < transfersPerWriter; i++) await rawTransfer(client, `${tag}:a`, `${tag}:b`)
              })
            )
          )
        },
        notes: () => [`retries per committed transfer: ours ${perSuccess("ours")}, raw ${perSuccess("raw")}`]
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

    /**
     * What raw code does to store the properties: JSON-encode them into their fields (on each store, as ours encodes
     * what it is given: encoded once for every store, raw did less work than ours), one HSET.
     */
    const encodedFields = () => properties.flatMap(([name, value]) => [`p${name}`, JSON.stringify(value)])
    const rawStore = (key: string) => raw.hset(`s:${key}`, ...encodedFields())

    /** Stores of 20 properties on `subjects` fresh subjects, `inFlight` at once: ours, and raw HSETs. */
    const oursStore = (meter: Meter = throughput) => {
      const prefix = `store${++round}:`
      return meter(subjects, () =>
        run(
          Effect.forEach(loadIds, (id) => storage.store(`${prefix}${id}`, { inserts: properties }), {
            concurrency: inFlight
          })
        )
      )
    }
    const rawStoreInFlight = (meter: Meter = throughput) => {
      const prefix = `bench:rawstore${++round}:`
      return meter(subjects, async () => {
        for (let start = 0; start < subjects; start += inFlight) {
          await Promise.all(Array.from({ length: inFlight }, (_, j) => rawStore(`${prefix}${start + j}`)))
        }
      })
    }

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
        transferScenario("one instance", [storage]),
        transferScenario(`${writers} instances`, instances),
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
          name: `store with a time to live, ${inFlight} in flight, vs HSET + ZADD of the deadlines`,
          unit: "stores/s",
          higherIsBetter: true,
          ours: () => {
            const prefix = `ttl${++round}:`
            return throughput(subjects, () =>
              run(
                Effect.forEach(
                  loadIds,
                  (id) => storage.store(`${prefix}${id}`, { inserts: properties }, { ttl: "5 minutes" }),
                  { concurrency: inFlight }
                )
              )
            )
          },
          raw: () => {
            const prefix = `bench:rawttl${++round}:`
            return throughput(subjects, async () => {
              for (let start = 0; start < subjects; start += inFlight) {
                const deadline = Date.now() + 300_000
                await Promise.all(
                  Array.from({ length: inFlight }, (_, j) => {
                    const key = `${prefix}${start + j}`
                    return raw
                      .pipeline()
                      .hset(key, ...encodedFields())
                      .zadd(`${key}:ttl`, ...properties.flatMap(([name]) => [deadline, `p${name}`]))
                      .exec()
                  })
                )
              }
            })
          }
        },
        {
          name: `store, ${inFlight} in flight, vs HSET of the JSON fields`,
          unit: "stores/s",
          higherIsBetter: true,
          ours: oursStore,
          raw: rawStoreInFlight
        },
        {
          name: `bytes allocated per store, ${inFlight} in flight`,
          unit: "B/op",
          higherIsBetter: false,
          ours: () => oursStore(allocatedPerOp),
          raw: () => rawStoreInFlight(allocatedPerOp)
        }
      ],
      close: async () => {
        raw.disconnect()
        for (const client of watchers) client.disconnect()
        await Promise.all([runtime, ...instanceRuntimes].map((each) => each.dispose()))
      }
    }
  }
}

export default suite
