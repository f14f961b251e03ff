import { assert } from "@effect/vitest"
import { Effect, Exit, Option, Result } from "effect"
import * as RedisClient from "../src/RedisClient.js"
import { slotOf } from "../src/internal/slot.js"
import * as RedisServer from "../src/testing/RedisServer.js"
import { anotherClient, forEachTarget, TestTopology } from "./support/targets.js"

/** `count` keys under `base`, each in a slot of its own (on a Cluster they spread over the masters). */
const keysIn = (base: string, count: number) => {
  const keys: Array<string> = []
  const slots = new Set<number>()
  for (let i = 0; keys.length < count; i++) {
    const key = `${base}${i}`
    if (!slots.has(slotOf(key))) {
      slots.add(slotOf(key))
      keys.push(key)
    }
  }
  return keys
}

forEachTarget("RedisClient commands", (it) => {
  it.effect("send: replies as Redis sends them, HGETALL as a flat list, bytes kept, failures classified", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const base = RedisServer.uniquePrefix("send")
      yield* redis.send("HSET", `${base}h`, "a", "1", "b", "2")
      assert.deepStrictEqual(yield* redis.send("HGETALL", `${base}h`), ["a", "1", "b", "2"])
      assert.deepStrictEqual(yield* redis.send("HMGET", `${base}h`, "b", "none"), ["2", null])
      const binary = Buffer.from([0, 255, 10, 13, 128])
      yield* redis.send("SET", `${base}bin`, binary)
      const back = yield* redis.sendBytes<Buffer>("GET", `${base}bin`)
      assert.isTrue(Buffer.isBuffer(back) && back.equals(binary))
      const error = yield* Effect.flip(redis.send("LPUSH", `${base}h`, "x"))
      assert.strictEqual(error.reason._tag, "Command")
      assert.strictEqual(error.code, "WRONGTYPE")
      assert.strictEqual(error.op, "lpush")
    })
  )

  it.effect("the same replies under RESP3: maps come as RESP2's flat lists", () =>
    Effect.gen(function* () {
      const topology = yield* TestTopology
      const base = RedisServer.uniquePrefix("resp3")
      const replies = yield* Effect.gen(function* () {
        const redis = yield* RedisClient.RedisClient
        yield* redis.send("HSET", `${base}h`, "a", "1")
        yield* redis.send("XADD", `${base}s`, "*", "f", "v")
        yield* redis.send("XGROUP", "CREATE", `${base}s`, "g", "0")
        const [hash, groups] = yield* redis.pipeline([
          { name: "HGETALL", args: [`${base}h`], key: `${base}h` },
          { name: "XINFO", args: ["GROUPS", `${base}s`], key: `${base}s` }
        ])
        return { single: yield* redis.send("HGETALL", `${base}h`), hash, groups }
      }).pipe(Effect.provide(anotherClient(topology, { protocol: 3 })))
      assert.deepStrictEqual(replies.single, ["a", "1"])
      assert.deepStrictEqual(replies.hash, Result.succeed(["a", "1"]))
      const groups = replies.groups === undefined ? [] : Result.getOrThrow(replies.groups)
      assert.isTrue(Array.isArray(groups) && Array.isArray(groups[0]))
      assert.deepStrictEqual(((groups as Array<Array<unknown>>)[0] ?? []).slice(0, 2), ["name", "g"])
    })
  )

  it.effect("pipeline over keys of every node: one Result per command in order, a failing command alone", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const keys = keysIn(RedisServer.uniquePrefix("pipe"), 40)
      const set = yield* redis.pipeline(keys.map((key, i) => ({ name: "SET", args: [key, String(i)], key })))
      assert.isTrue(set.every(Result.isSuccess))
      const read = yield* redis.pipeline([
        ...keys.map((key) => ({ name: "GET", args: [key], key })),
        { name: "HGET", args: [keys[7] as string, "field"], key: keys[7] as string }
      ])
      assert.deepStrictEqual(
        read.slice(0, keys.length).map((result) => Result.getOrThrow(result)),
        keys.map((_, i) => String(i))
      )
      const failed = read[keys.length]
      assert.isTrue(failed !== undefined && Result.isFailure(failed))
      if (failed !== undefined && Result.isFailure(failed)) assert.strictEqual(failed.failure.code, "WRONGTYPE")
      assert.deepStrictEqual(yield* redis.pipeline([]), [])
    })
  )

  it.effect("atomic: MULTI/EXEC of one slot's commands, each command's Result", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const base = `${RedisServer.uniquePrefix("atomic")}{t}`
      const results = yield* redis.atomic([
        { name: "INCR", args: [`${base}n`], key: `${base}n` },
        { name: "HSET", args: [`${base}n`, "f", "v"], key: `${base}n` },
        { name: "INCR", args: [`${base}n`], key: `${base}n` },
        { name: "GET", args: [`${base}n`], key: `${base}n` }
      ])
      assert.deepStrictEqual(results[0], Result.succeed(1))
      assert.isTrue(results[1] !== undefined && Result.isFailure(results[1]))
      assert.deepStrictEqual(results.slice(2), [Result.succeed(2), Result.succeed("2")])
    })
  )

  it.effect("scan: every master, page by page, each key found; a cursor from outside is checked", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const base = RedisServer.uniquePrefix("scan")
      const keys = keysIn(`${base}:`, 60)
      yield* redis.pipeline(keys.map((key) => ({ name: "SADD", args: [key, "m"], key })))
      yield* redis.send("SET", `${base}:not-a-set`, "v")
      const found = new Set<string>()
      let cursor: string | undefined
      let pages = 0
      do {
        const page = yield* redis.scan({ match: `${base}:*`, type: "set", count: 100, limit: 7, maxCalls: 50 }, cursor)
        assert.isAtMost(page.keys.length, 7 + 100)
        for (const key of page.keys) found.add(key)
        if (page.cursor !== null) assert.isTrue(RedisClient.isScanCursor(page.cursor))
        cursor = page.cursor ?? undefined
        pages++
      } while (cursor !== undefined && pages < 1000)
      assert.deepStrictEqual([...found].sort(), [...keys].sort())
      assert.isFalse(RedisClient.isScanCursor("0; FLUSHALL"))
    })
  )

  it.effect("watching: a write of another client between read and commit is a conflict, nothing applied", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const topology = yield* TestTopology
      const key = `${RedisServer.uniquePrefix("watch")}{w}n`
      yield* redis.send("SET", key, "1")
      const outcome = yield* Effect.scoped(
        Effect.gen(function* () {
          const session = yield* redis.watching([key])
          const [before] = yield* session.read([{ name: "GET", args: [key], key }])
          yield* redis.send("SET", key, "changed")
          const lost = yield* session.commit([{ name: "SET", args: [key, `${String(before)}+1`], key }])
          const [again] = yield* session.read([{ name: "GET", args: [key], key }])
          const won = yield* session.commit([{ name: "SET", args: [key, `${String(again)}+1`], key }])
          return { lost, won }
        })
      )
      assert.isTrue(Option.isNone(outcome.lost))
      assert.deepStrictEqual(outcome.won, Option.some([Result.succeed("OK")]))
      assert.strictEqual(yield* redis.send("GET", key), "changed+1")
      const crossSlot = yield* Effect.exit(
        Effect.scoped(redis.watching([`${key}a`, `${RedisServer.uniquePrefix("other")}b`]))
      )
      if (topology.kind === "cluster") {
        assert.isTrue(Exit.isFailure(crossSlot))
        const error = Exit.isFailure(crossSlot) ? Exit.findErrorOption(crossSlot) : Option.none()
        assert.strictEqual(Option.getOrUndefined(error)?.reason._tag, "CrossSlot")
      } else {
        assert.isTrue(Exit.isSuccess(crossSlot))
      }
    })
  )
})
