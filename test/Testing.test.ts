/**
 * The testing module as an application's tests meet it: it never touches the application's `REDIS_URL`, uses an
 * external server only when its own variable names one (and deletes the keys its tests wrote there), and its layers
 * and handles keep real time under `@effect/vitest`'s default `TestClock`.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as RedisClient from "../src/RedisClient.js"
import * as RedisServer from "../src/testing/RedisServer.js"

/** Runs `effect` with `process.env[name]` set to `value`, restoring it afterwards. */
const withEnv = <A, E, R>(name: string, value: string, effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const before = process.env[name]
      process.env[name] = value
      return before
    }),
    () => effect,
    (before) =>
      Effect.sync(() => {
        if (before === undefined) delete process.env[name]
        else process.env[name] = before
      })
  )

/** Runs `f` with the node a fresh `RedisServer.layer()` gives, closing that layer afterwards. */
const withFreshNode = <A, E, R>(f: (node: RedisServer.Node) => Effect.Effect<A, E, R>) =>
  Effect.flatMap(RedisServer.RedisServer, f).pipe(Effect.provide(RedisServer.layer()))

describe("the testing module", () => {
  // built under @effect/vitest's defaults: the test services, TestClock included
  layer(RedisServer.layerClient().pipe(Layer.provideMerge(RedisServer.layer())))("a single node", (it) => {
    it.effect("an application's REDIS_URL is never used: a server of the test's own is started", () =>
      Effect.gen(function* () {
        const application = yield* RedisServer.RedisServer
        const node = yield* withEnv("REDIS_URL", application.url, withFreshNode(Effect.succeed))
        assert.isTrue(node.controllable)
        assert.notStrictEqual(node.port, application.port)
      })
    )

    it.effect(
      `the server named by ${RedisServer.externalUrlVariable} is used, and the keys written under uniquePrefix are deleted when the last layer on it closes`,
      () =>
        Effect.gen(function* () {
          const external = yield* RedisServer.RedisServer
          const redis = yield* RedisClient.RedisClient
          const prefix = RedisServer.uniquePrefix("ext")
          // a key of the developer's own, and one that looks like a test key of this process but was never handed out
          const foreign = [`keep:${prefix.length}`, `ext:${process.pid}-999999-zzzzzz:x`]
          const written = [`${prefix}a`, `s:${prefix}{tag}b`, `{${prefix}}c`]
          yield* redis.use("mset", (c) => c.mset(...foreign.flatMap((key) => [key, "1"])))
          const exists = (keys: ReadonlyArray<string>) =>
            Effect.forEach(keys, (key) => redis.use("exists", (c) => c.exists(key)))
          yield* withEnv(
            RedisServer.externalUrlVariable,
            external.url,
            withFreshNode((node) =>
              Effect.gen(function* () {
                assert.isFalse(node.controllable)
                assert.strictEqual(node.port, external.port)
                yield* Effect.forEach(written, (key) => redis.use("set", (c) => c.set(key, "1")))
                // a second layer on the same server closes first: the keys stay, the first layer still uses them
                yield* withFreshNode((inner) => Effect.sync(() => assert.strictEqual(inner.port, external.port)))
                assert.deepStrictEqual(yield* exists(written), [1, 1, 1])
              })
            )
          )
          assert.deepStrictEqual(yield* exists(written), [0, 0, 0])
          assert.deepStrictEqual(yield* exists(foreign), [1, 1])
        })
    )
  })

  // layerCluster waits for the cluster (and for a failover) on a schedule: under a TestClock nobody advances, that
  // wait never ended unless the cluster was ready at the first look
  layer(RedisServer.layerCluster({ replicas: 1, nodeTimeout: "1 second" }), { timeout: 60_000 })(
    "a cluster with replicas, under the TestClock",
    (it) => {
      it.effect(
        "a master killed: its replica takes over and awaitHealthy sees it",
        () =>
          Effect.gen(function* () {
            const cluster = yield* RedisServer.RedisCluster
            const master = yield* cluster.masterOf("some-key")
            yield* master.kill
            yield* cluster.awaitHealthy
            const now = yield* cluster.masterOf("some-key")
            assert.notStrictEqual(now.port, master.port)
          }),
        { timeout: 60_000 }
      )
    }
  )

  layer(RedisServer.layerSentinel({ replicas: 1, sentinels: 1, downAfter: "1 second" }), { timeout: 60_000 })(
    "Sentinel, under the TestClock",
    (it) => {
      it.effect(
        "the master killed: awaitFailover names the replica",
        () =>
          Effect.gen(function* () {
            const sentinel = yield* RedisServer.RedisSentinel
            yield* sentinel.master.kill
            const next = yield* sentinel.awaitFailover(sentinel.master)
            assert.strictEqual(next.port, sentinel.replicas[0]?.port)
          }),
        { timeout: 60_000 }
      )
    }
  )
})
