/**
 * Effect's own Redis-backed modules on this library's connection: RateLimiter, the CircuitBreaker store,
 * PersistedQueue and Persistence (behind PersistedCache), each on its normal path, on a single node and a Cluster.
 * On a Cluster every key one operation uses needs a shared hash tag: the stores get a prefix (or a store id) with one,
 * and without it the failure is a typed `CrossSlot` that says so, never a silent hang.
 */
import { assert } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Ref, Schedule, Schema } from "effect"
import * as CircuitBreaker from "effect/persistence/CircuitBreaker"
import * as Persistable from "effect/persistence/Persistable"
import * as PersistedCache from "effect/persistence/PersistedCache"
import * as PersistedQueue from "effect/persistence/PersistedQueue"
import * as Persistence from "effect/persistence/Persistence"
import * as RateLimiter from "effect/persistence/RateLimiter"
import * as Redis from "effect/persistence/Redis"
import * as RedisServer from "../src/testing/RedisServer.js"
import { anotherClient, forEachTarget, TestTopology } from "./support/targets.js"

/** A prefix of the test's own that is one hash tag: every key of the store in one slot. */
const taggedPrefix = (label: string) => `{${RedisServer.uniquePrefix(label).slice(0, -1)}}:`

class Boom extends Schema.TaggedError<Boom>()("Boom", {}) {}

class GetUser extends Persistable.Class<{ payload: { readonly id: string } }>()("GetUser", {
  primaryKey: (payload) => payload.id,
  success: Schema.Struct({ name: Schema.String })
}) {}

forEachTarget("effect/persistence on RedisClient", (it) => {
  it.effect("RateLimiter: fixed window and token bucket enforce their limits", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.RateLimiter
      for (const algorithm of ["fixed-window", "token-bucket"] as const) {
        const consume = limiter.consume({ key: `user-${algorithm}`, limit: 3, window: "1 minute", algorithm })
        yield* Effect.forEach([1, 2, 3], () => consume, { discard: true })
        const exceeded = yield* Effect.flip(consume)
        assert.strictEqual(exceeded.reason._tag, "RateLimitExceeded", algorithm)
      }
    }).pipe(
      Effect.provide(RateLimiter.layer.pipe(Layer.provide(RateLimiter.layerStoreRedis({ prefix: taggedPrefix("rl") }))))
    )
  )

  it.effect("CircuitBreaker: a circuit opened through one client is open for another", () =>
    Effect.gen(function* () {
      const topology = yield* TestTopology
      const prefix = taggedPrefix("cb")
      const breakerOn = (client: Layer.Layer<Redis.Redis, unknown>) =>
        CircuitBreaker.layer({ tripPolicy: CircuitBreaker.consecutive(2), openDuration: "1 minute" }).pipe(
          Layer.provide(CircuitBreaker.layerStoreRedis({ prefix })),
          Layer.provide(client)
        )
      yield* Effect.gen(function* () {
        const breaker = yield* CircuitBreaker.CircuitBreaker
        const failing = Effect.fail(new Boom()).pipe(breaker.execute({ key: "payments" }))
        yield* Effect.exit(failing)
        yield* Effect.exit(failing)
        assert.strictEqual((yield* breaker.state("payments"))._tag, "Open")
      }).pipe(Effect.provide(breakerOn(Layer.succeedContext(yield* Effect.context<Redis.Redis>()))))
      const elsewhere = yield* Effect.gen(function* () {
        const breaker = yield* CircuitBreaker.CircuitBreaker
        return yield* Effect.flip(Effect.void.pipe(breaker.execute({ key: "payments" })))
      }).pipe(Effect.provide(breakerOn(anotherClient(topology))))
      assert.strictEqual(elsewhere.reason._tag, "CircuitOpen")
    })
  )

  it.effect("PersistedQueue: offer 5, take 5; a job that fails is taken again", () =>
    Effect.gen(function* () {
      const queue = yield* PersistedQueue.make({
        name: "jobs",
        schema: Schema.Struct({ n: Schema.Number }),
        maxAttempts: 3,
        retrySchedule: Schedule.spaced("10 millis")
      })
      yield* Effect.forEach([1, 2, 3, 4, 5], (n) => queue.offer({ n }), { discard: true })
      const taken = yield* Ref.make<Array<string>>([])
      const take = queue.take((job, meta) =>
        Effect.gen(function* () {
          yield* Ref.update(taken, (all) => [...all, `${job.n}#${meta.attempts}`])
          if (job.n === 3 && meta.attempts === 1) return yield* new Boom()
        })
      )
      yield* Effect.forEach([1, 2, 3, 4, 5, 6], () => Effect.exit(take), { discard: true }).pipe(
        Effect.timeout("20 seconds")
      )
      assert.sameMembers(yield* Ref.get(taken), ["1#1", "2#1", "3#1", "3#2", "4#1", "5#1"])
    }).pipe(
      Effect.provide(
        PersistedQueue.layer.pipe(
          Layer.provide(PersistedQueue.layerStoreRedis({ prefix: taggedPrefix("pq"), pollInterval: "50 millis" }))
        )
      )
    )
  )

  it.effect("PersistedCache: a value looked up once is served from Redis by a new layer (another process)", () =>
    Effect.gen(function* () {
      const lookups = yield* Ref.make(0)
      const storeId = taggedPrefix("users").slice(0, -1)
      const getOnce = Effect.gen(function* () {
        const cache = yield* PersistedCache.make(
          (request: GetUser) =>
            Effect.as(
              Ref.update(lookups, (n) => n + 1),
              { name: `user ${request.id}` }
            ),
          { storeId, timeToLive: () => "1 minute" }
        )
        return yield* cache.get(new GetUser({ id: "42" }))
      }).pipe(Effect.scoped, Effect.provide(Persistence.layerRedis))
      const first = yield* getOnce
      const second = yield* getOnce // a new in-memory cache: only Redis can answer without the lookup
      assert.deepStrictEqual([first, second], [{ name: "user 42" }, { name: "user 42" }])
      assert.strictEqual(yield* Ref.get(lookups), 1)
    })
  )

  it.effect("keys of one operation in several slots: CrossSlot naming the fix on a Cluster, never a hang", () =>
    Effect.gen(function* () {
      const topology = yield* TestTopology
      const redis = yield* Redis.Redis
      const prefix = RedisServer.uniquePrefix("untagged")
      const result = yield* Effect.exit(redis.send("MGET", `${prefix}a`, `${prefix}b`, `${prefix}c`))
      if (topology.kind === "cluster") {
        const error = Option.getOrUndefined(Exit.findErrorOption(result))
        const cause = error?.cause as { readonly reason?: { readonly _tag: string }; readonly message?: string }
        assert.strictEqual(cause.reason?._tag, "CrossSlot")
        assert.include(cause.message, "hash tag")
      } else {
        assert.isTrue(Exit.isSuccess(result))
      }
      // KEYS, as Persistence's clear uses it, asks the node of the pattern's hash tag (not a random one)
      const tag = taggedPrefix("keys")
      yield* Effect.forEach(["a", "b", "c"], (k) => redis.send("SET", `${tag}${k}`, "1"), { discard: true })
      const keys = yield* redis.send<Array<string>>("KEYS", `${tag}*`)
      assert.sameMembers(keys, [`${tag}a`, `${tag}b`, `${tag}c`])
    })
  )
})
