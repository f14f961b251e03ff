/**
 * The command timeout (one timer per connection, see src/internal/redis/deadlines.ts) against hung servers: each
 * command fails `Timeout` at its own deadline, answered commands never do, and on a Cluster only the hung node's
 * commands wait.
 */
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { assert, layer } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as RedisClient from "../src/RedisClient.js"
import * as RedisServer from "../src/testing/RedisServer.js"

/** A GET of `key`'s failure reason and how long after `since` it came (ms); "answered" when it succeeded. */
const timedGet = (redis: RedisClient.Service, key: string, since: number) =>
  Effect.map(Effect.exit(redis.send("GET", key)), (exit) => ({
    outcome: exit._tag === "Success" ? "answered" : exit.cause.toString(),
    at: Date.now() - since
  }))

/** The reason of a failed GET of `key` and how long after `since` it failed (ms). */
const failedGet = (redis: RedisClient.Service, key: string, since: number) =>
  Effect.map(Effect.flip(redis.send("GET", key)), (error) => ({ reason: error.reason._tag, at: Date.now() - since }))

layer(RedisServer.layer(), { excludeTestServices: true, timeout: 60_000 })("command timeouts, one node", (it) => {
  it.effect(
    "each command waiting on a hung server fails Timeout at its own deadline; the client serves again after",
    () =>
      Effect.gen(function* () {
        const node = yield* RedisServer.RedisServer
        yield* Effect.gen(function* () {
          const redis = yield* RedisClient.RedisClient
          yield* redis.send("SET", "k", "v")
          yield* node.freeze
          const started = Date.now()
          const first = yield* Effect.forkChild(failedGet(redis, "k", started))
          yield* Effect.sleep("200 millis")
          const second = yield* Effect.forkChild(failedGet(redis, "k", started))
          const early = yield* Fiber.join(first)
          const late = yield* Fiber.join(second)
          assert.strictEqual(early.reason, "Timeout")
          assert.strictEqual(late.reason, "Timeout")
          // 400 ms after its send each: the second one 200 ms after the first, not with it
          assert.isAtLeast(early.at, 390)
          assert.isBelow(early.at, 700, `the first failed after ${early.at} ms`)
          assert.isAtLeast(late.at, 590)
          assert.isBelow(late.at, 900, `the second failed after ${late.at} ms`)
          yield* node.thaw
          assert.strictEqual(yield* redis.send("GET", "k"), "v")
        }).pipe(Effect.provide(RedisClient.layer({ url: node.url, commandTimeout: "400 millis" })))
      })
  )

  it.effect("an answered command is not kept: its reply can be collected at once, long before its deadline", () =>
    Effect.gen(function* () {
      const node = yield* RedisServer.RedisServer
      v8.setFlagsFromString("--expose-gc")
      const collect = vm.runInNewContext("gc") as () => void
      const heapAfterCollections = () => {
        for (let i = 0; i < 3; i++) collect()
        return process.memoryUsage().heapUsed
      }
      yield* Effect.gen(function* () {
        const redis = yield* RedisClient.RedisClient
        // list elements are heap strings (a big bulk string would be an external one, outside the heap measured)
        yield* redis.send("RPUSH", "list", ...Array.from({ length: 20_000 }, (_, i) => `element number ${i}`))
        const range = Effect.map(redis.send<ReadonlyArray<string>>("LRANGE", "list", 0, -1), (reply) => reply.length)
        yield* range
        const before = heapAfterCollections()
        // 20 replies of ~1 MB of heap each, then nothing more is sent: nothing but the list of deadlines could hold them
        const lengths = yield* Effect.forEach(Array.from({ length: 20 }), () => range, { concurrency: "unbounded" })
        assert.isTrue(lengths.every((length) => length === 20_000))
        const grown = (heapAfterCollections() - before) / 2 ** 20
        assert.isBelow(grown, 10, `the heap kept ${grown.toFixed(1)} MB after the replies were dropped`)
      }).pipe(Effect.provide(RedisClient.layer({ url: node.url, commandTimeout: "30 seconds" })))
    })
  )

  it.effect(
    "50k answered commands, 100 in flight, never time out; a command after them still does on a hung server",
    () =>
      Effect.gen(function* () {
        const node = yield* RedisServer.RedisServer
        yield* Effect.gen(function* () {
          const redis = yield* RedisClient.RedisClient
          const started = Date.now()
          const answers = yield* Effect.forEach(
            Array.from({ length: 50_000 }, (_, i) => i),
            (i) => timedGet(redis, `k${i % 10}`, started),
            { concurrency: 100 }
          )
          assert.deepStrictEqual(
            answers.filter((answer) => answer.outcome !== "answered"),
            []
          )
          yield* node.freeze
          const frozenAt = Date.now()
          const error = yield* failedGet(redis, "k1", frozenAt)
          yield* node.thaw
          assert.strictEqual(error.reason, "Timeout")
          assert.isAtLeast(error.at, 290)
          assert.isBelow(error.at, 700, `failed after ${error.at} ms`)
        }).pipe(Effect.provide(RedisClient.layer({ url: node.url, commandTimeout: "300 millis" })))
      })
  )
})

layer(RedisServer.layerCluster({ masters: 3 }), { excludeTestServices: true, timeout: 90_000 })(
  "command timeouts, a 3-master Cluster",
  (it) => {
    it.effect("a hung master's commands fail Timeout within the bound while the other masters keep answering", () =>
      Effect.gen(function* () {
        const cluster = yield* RedisServer.RedisCluster
        const hung = yield* cluster.masterOf("on-hung")
        // a key of each other master: the slot map's owners, found by trying names
        const others: Array<string> = []
        for (let i = 0; others.length < 20; i++) {
          const owner = yield* cluster.masterOf(`other-${i}`)
          if (owner.port !== hung.port) others.push(`other-${i}`)
        }
        yield* Effect.gen(function* () {
          const redis = yield* RedisClient.RedisClient
          yield* hung.freeze
          const started = Date.now()
          const waiting = yield* Effect.forkChild(failedGet(redis, "on-hung", started))
          const answers = yield* Effect.forEach(others, (key) => timedGet(redis, key, started), { concurrency: 5 })
          const error = yield* Fiber.join(waiting)
          yield* hung.thaw
          assert.deepStrictEqual(
            answers.filter((answer) => answer.outcome !== "answered"),
            []
          )
          assert.isTrue(
            answers.every((answer) => answer.at < 300),
            answers.map((answer) => answer.at).join(",")
          )
          assert.strictEqual(error.reason, "Timeout")
          assert.isAtLeast(error.at, 390)
          assert.isBelow(error.at, 900, `failed after ${error.at} ms`)
        }).pipe(
          Effect.provide(
            RedisClient.layerCluster({
              nodes: cluster.nodes.map(({ host, port }) => ({ host, port })),
              commandTimeout: "400 millis"
            })
          )
        )
      })
    )
  }
)
