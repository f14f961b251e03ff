import { createServer } from "node:net"
import { assert, describe, layer } from "@effect/vitest"
import { Cause, ConfigProvider, Duration, Effect, Exit, Fiber, Layer, Logger, Queue, Redacted, Schedule } from "effect"
import * as RateLimiter from "effect/persistence/RateLimiter"
import * as RedisClient from "../src/RedisClient.js"
import * as RedisScript from "../src/RedisScript.js"
import { slotOf } from "../src/internal/slot.js"
import * as RedisServer from "../src/testing/RedisServer.js"
import { commandCalls, forEachTarget, onEveryNode, TestTopology } from "./support/targets.js"

const prefix = () => RedisServer.uniquePrefix("client")

/** Retries `effect` every 100 ms until it succeeds, for at most `attempts` tries. */
const eventually = <A, E, R>(effect: Effect.Effect<A, E, R>, attempts = 100) =>
  Effect.retry(effect, { schedule: Schedule.spaced("100 millis"), times: attempts })

/** Runs `f` with a client built from `clientLayer`, closed afterwards. */
const withClient = <A, E, LE>(
  clientLayer: Layer.Layer<RedisClient.RedisClient, LE>,
  f: (redis: RedisClient.Service) => Effect.Effect<A, E>
) => Effect.provide(Effect.flatMap(RedisClient.RedisClient, f), clientLayer)

const connect = <LE>(clientLayer: Layer.Layer<RedisClient.RedisClient, LE>) => withClient(clientLayer, Effect.succeed)

forEachTarget("RedisClient", (it) => {
  it.effect("runs commands on the shared connection", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const key = `${prefix()}k`
      yield* redis.use("set", (c) => c.set(key, "v"))
      assert.strictEqual(yield* redis.use("get", (c) => c.get(key)), "v")
    })
  )

  it.effect(
    "a script the servers do not know: 200 concurrent calls compile it once per node, all get their reply",
    () =>
      Effect.gen(function* () {
        const redis = yield* RedisClient.RedisClient
        const topology = yield* TestTopology
        const key = `${prefix()}{one-slot}counter`
        const increment = RedisScript.make<[string], [number], number>()(
          `test.incr.${prefix()}`,
          "return redis.call('INCRBY', KEYS[1], ARGV[1])"
        )
        yield* onEveryNode(topology, (node) => node.script("FLUSH"))
        const evalsBefore = yield* commandCalls(topology, "eval")
        const replies = yield* Effect.forEach(
          Array.from({ length: 200 }, () => 1),
          (by) => redis.eval(increment, [key], [by]),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(
          [...replies].sort((a, b) => a - b),
          Array.from({ length: 200 }, (_, i) => i + 1)
        )
        assert.strictEqual((yield* commandCalls(topology, "eval")) - evalsBefore, 1)
      })
  )

  it.effect("20 concurrent blocking reads on dedicated connections do not delay the shared connection", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const base = prefix()
      const reads = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => `${base}{s${i}}`),
        (key) =>
          Effect.scoped(
            Effect.flatMap(redis.dedicated, (conn) =>
              Effect.tryPromise(() => conn.xread("BLOCK", 3000, "STREAMS", key, "$"))
            )
          ).pipe(Effect.forkChild)
      )
      yield* Effect.sleep("300 millis")
      const started = performance.now()
      yield* redis.use("ping", (c) => c.ping())
      const elapsed = performance.now() - started
      assert.isBelow(elapsed, 100, `PING took ${elapsed} ms while 20 reads block`)
      assert.isTrue(
        reads.every((fiber) => fiber.pollUnsafe() === undefined),
        "the reads really block"
      )
      yield* Effect.forEach(reads, Fiber.interrupt)
    })
  )

  it.effect("a dedicated connection whose command was interrupted is closed, not reused", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const key = `${prefix()}{blocked}`
      let used: RedisClient.Client | undefined
      const fiber = yield* Effect.scoped(
        Effect.flatMap(redis.dedicated, (conn) => {
          used = conn
          return Effect.tryPromise(() => conn.xread("BLOCK", 5000, "STREAMS", key, "$"))
        })
      ).pipe(Effect.forkChild)
      yield* Effect.sleep("200 millis")
      yield* Fiber.interrupt(fiber)
      const closed = () => used?.status === "end" || used?.status === "close"
      yield* eventually(
        Effect.suspend(() => (closed() ? Effect.void : Effect.fail("still open"))),
        30
      )
      const next = yield* Effect.scoped(redis.dedicated)
      assert.notStrictEqual(next, used)
      assert.isTrue(closed())
    })
  )

  it.effect("a subscription receives what is published after subscribe returns", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const channel = `${prefix()}channel`
      const events = yield* redis.subscribe(channel)
      yield* redis.use("publish", (c) => c.publish(channel, "hello"))
      yield* redis.use("publish", (c) => c.publish(channel, "world"))
      const received = [yield* Queue.take(events), yield* Queue.take(events)]
      // on a Cluster each PUBLISH may enter at another node: their order across nodes is not kept
      assert.sameDeepMembers(received, [
        { _tag: "Message", channel, message: "hello" },
        { _tag: "Message", channel, message: "world" }
      ])
    })
  )

  it.effect("effect/persistence's RateLimiter runs on this connection", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.RateLimiter
      const consume = limiter.consume({ key: "k", limit: 2, window: "1 minute", onExceeded: "fail" })
      yield* consume
      yield* consume
      const exceeded = yield* Effect.flip(consume)
      assert.strictEqual(exceeded.reason._tag, "RateLimitExceeded")
    }).pipe(
      Effect.provide(RateLimiter.layer.pipe(Layer.provide(RateLimiter.layerStoreRedis({ prefix: `${prefix()}{rl}` }))))
    )
  )

  it.effect("a subscription is told of a reconnect and receives messages again after a server restart", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const topology = yield* TestTopology
      const channel = `${prefix()}restart`
      const events = yield* redis.subscribe(channel)
      yield* topology.killAll
      yield* topology.startAll
      const reconnected = yield* Queue.take(events).pipe(Effect.timeout("10 seconds"))
      assert.deepStrictEqual(reconnected, { _tag: "Reconnected" })
      // the resubscription is confirmed asynchronously: publish until the subscriber hears it
      const heard = yield* eventually(
        redis
          .use("publish", (c) => c.publish(channel, "after restart"))
          .pipe(Effect.andThen(Queue.take(events).pipe(Effect.timeout("200 millis"))))
      )
      assert.deepStrictEqual(heard, { _tag: "Message", channel, message: "after restart" })
    })
  )

  it.effect("server killed during commands: typed errors; restarted: the client serves again", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const topology = yield* TestTopology
      const key = `${prefix()}{fault}`
      const sleeping = yield* redis.use("debug sleep", (c) => c.call("DEBUG", "SLEEP", "3")).pipe(Effect.forkChild)
      const blocked = yield* Effect.scoped(
        Effect.flatMap(redis.dedicated, (conn) =>
          Effect.tryPromise({
            try: () => conn.xread("BLOCK", 10_000, "STREAMS", key, "$"),
            catch: (cause) => redis.classify(cause, "xread")
          })
        )
      ).pipe(Effect.forkChild)
      yield* Effect.sleep("300 millis")
      yield* topology.killAll
      const sleepExit = yield* Fiber.await(sleeping)
      const blockedExit = yield* Fiber.await(blocked)
      for (const exit of [sleepExit, blockedExit]) {
        assert.isTrue(Exit.isFailure(exit))
        const error = Exit.findErrorOption(exit)
        assert.isTrue(error._tag === "Some" && error.value.isRetryable, `typed retryable: ${String(exit)}`)
      }
      const down = yield* Effect.flip(redis.use("set", (c) => c.set(key, "v")))
      assert.include(["Connection", "ClusterDown", "Timeout"], down.reason._tag)
      yield* topology.startAll
      yield* eventually(redis.use("set", (c) => c.set(key, "v")))
      assert.strictEqual(yield* redis.use("get", (c) => c.get(key)), "v")
    })
  )
})

describe("RedisClient on a single node", () => {
  layer(RedisServer.layer({ args: ["--requirepass", "s3cret-pw"] }), { excludeTestServices: true })(
    "authentication",
    (it) => {
      it.effect("a wrong password fails with a typed Auth error that does not contain the password", () =>
        Effect.gen(function* () {
          const node = yield* RedisServer.RedisServer
          const password = "hunter2-wrong"
          for (const options of [
            { url: node.url, password: Redacted.make(password) },
            { url: `redis://default:${password}@127.0.0.1:${node.port}` }
          ]) {
            const exit = yield* Effect.exit(connect(RedisClient.layer(options)))
            const error = Exit.findErrorOption(exit)
            assert.isTrue(error._tag === "Some")
            if (error._tag !== "Some") return
            assert.strictEqual(error.value.reason._tag, "Auth")
            assert.include(error.value.message, "the credentials are set by the username and password options")
            assert.isFalse(error.value.isRetryable)
            for (const text of [
              error.value.message,
              JSON.stringify(error.value),
              String(error.value),
              Cause.pretty(Exit.isFailure(exit) ? exit.cause : Cause.empty)
            ]) {
              assert.notInclude(text, password)
            }
          }
        })
      )

      it.effect("connects with an ACL user and password", () =>
        Effect.gen(function* () {
          const node = yield* RedisServer.RedisServer
          const admin = RedisClient.layer({ url: node.url, password: Redacted.make("s3cret-pw") })
          yield* withClient(admin, (r) =>
            r.use("acl", (c) => c.call("ACL", "SETUSER", "alice", "on", ">alice-pw", "~*", "+@all"))
          )
          const pong = yield* withClient(
            RedisClient.layer({ url: node.url, username: "alice", password: Redacted.make("alice-pw") }),
            (r) => r.use("ping", (c) => c.ping())
          )
          assert.strictEqual(pong, "PONG")
        })
      )
    }
  )

  layer(RedisServer.layer({ args: [] }), { excludeTestServices: true })("connection lifecycle", (it) => {
    it.effect("closing the layer quits and waits until the socket has ended", () =>
      Effect.gen(function* () {
        const node = yield* RedisServer.RedisServer
        const client = yield* withClient(RedisClient.layer({ url: node.url }), (r) => Effect.succeed(r.client))
        assert.strictEqual(client.status, "end")
        yield* Effect.sleep("700 millis") // longer than any reconnect delay: a closed client stays closed
        assert.strictEqual(client.status, "end")
      })
    )

    it.effect("the shared ioredis client quit by its user stays closed", () =>
      Effect.gen(function* () {
        const node = yield* RedisServer.RedisServer
        const status = yield* withClient(RedisClient.layer({ url: node.url }), (redis) =>
          Effect.gen(function* () {
            yield* Effect.promise(() => redis.client.quit())
            yield* Effect.sleep("700 millis") // longer than any reconnect delay
            return redis.client.status
          })
        )
        assert.strictEqual(status, "end")
      })
    )

    it.effect("when the reconnect schedule ends the client stays down, and its calls fail Connection", () =>
      Effect.gen(function* () {
        const node = yield* RedisServer.RedisServer
        const reconnectSchedule = Schedule.max([Schedule.spaced("50 millis"), Schedule.recurs(2)])
        const reason = yield* withClient(RedisClient.layer({ url: node.url, reconnectSchedule }), (redis) =>
          Effect.gen(function* () {
            yield* node.kill
            yield* Effect.sleep("500 millis") // three attempts, all refused: the schedule is over
            yield* node.start
            yield* Effect.sleep("700 millis")
            return (yield* Effect.flip(redis.use("ping", (c) => c.ping()))).reason._tag
          })
        )
        assert.strictEqual(reason, "Connection")
      })
    )

    it.effect("an unreachable server fails with a typed Connection error, fast", () =>
      Effect.gen(function* () {
        const port = yield* Effect.promise(() => freeUnusedPort())
        const started = Date.now()
        const error = yield* Effect.flip(connect(RedisClient.layer({ port, connectTimeout: "2 seconds" })))
        assert.strictEqual(error.reason._tag, "Connection")
        assert.isTrue(error.isRetryable)
        assert.isBelow(Date.now() - started, 2000)
        // the message says which setting gave the address: an option, or the variable
        assert.match(
          error.message,
          new RegExp(`ECONNREFUSED 127\\.0\\.0\\.1:${port} \\(the address is set by the host and port options\\)`)
        )
        const fromEnv = yield* Effect.flip(
          connect(
            RedisClient.layerConfig().pipe(
              Layer.provide(
                ConfigProvider.layer(ConfigProvider.fromEnv({ env: { REDIS_URL: `redis://127.0.0.1:${port}` } }))
              )
            )
          )
        )
        assert.include(fromEnv.message, "(the address is set by REDIS_URL)")
      })
    )

    it.effect("a server that never answers fails with a typed Timeout error within the connect timeout", () =>
      Effect.gen(function* () {
        const silent = createServer(() => {})
        const port = yield* Effect.promise(
          () => new Promise<number>((resolve) => silent.listen(0, "127.0.0.1", () => resolve(portOf(silent.address()))))
        )
        yield* Effect.addFinalizer(() => Effect.sync(() => silent.close()))
        const started = Date.now()
        const error = yield* Effect.flip(connect(RedisClient.layer({ port, connectTimeout: "400 millis" })))
        const elapsed = Date.now() - started
        assert.strictEqual(error.reason._tag, "Timeout")
        assert.isAtLeast(elapsed, 350)
        assert.isBelow(elapsed, 1500)
        assert.include(error.message, "the wait by the connectTimeout option")
        const fromEnv = yield* Effect.flip(
          connect(
            RedisClient.layerConfig().pipe(
              Layer.provide(
                ConfigProvider.layer(
                  ConfigProvider.fromEnv({
                    env: { REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_CONNECT_TIMEOUT: "300" }
                  })
                )
              )
            )
          )
        )
        assert.strictEqual(
          fromEnv.message,
          "connect: no ready connection within 300ms (the address is set by REDIS_URL; the wait by REDIS_CONNECT_TIMEOUT)"
        )
      })
    )

    it.effect("layerConfig reads REDIS_URL and friends from a ConfigProvider", () =>
      Effect.gen(function* () {
        const node = yield* RedisServer.RedisServer
        const info = yield* withClient(
          RedisClient.layerConfig().pipe(
            Layer.provide(
              ConfigProvider.layer(
                ConfigProvider.fromEnv({
                  env: { REDIS_URL: `${node.url}/3`, REDIS_CONNECT_TIMEOUT: "2 seconds", REDIS_PROTOCOL: "3" }
                })
              )
            )
          ),
          (r) =>
            Effect.map(
              r.use("client info", (c) => c.call("CLIENT", "INFO")),
              (text) => ({ mode: r.mode, text })
            )
        )
        assert.strictEqual(info.mode, "single")
        assert.include(String(info.text), "db=3")
        assert.include(String(info.text), "resp=3")
      })
    )

    it.effect("config reads Sentinel mode: the sentinels, the master's name, its password and timeout", () =>
      Effect.gen(function* () {
        const env = {
          REDIS_SENTINELS: "10.0.0.5:26379,10.0.0.6:26379",
          REDIS_SENTINEL_NAME: "orders",
          REDIS_SENTINEL_PASSWORD: "sentinel-pw",
          REDIS_SENTINEL_TIMEOUT: "250"
        }
        const read = yield* Effect.provide(
          Effect.gen(function* () {
            return yield* RedisClient.config
          }),
          ConfigProvider.layer(ConfigProvider.fromEnv({ env }))
        )
        assert.strictEqual(read._tag, "Sentinel")
        const options = read.options as RedisClient.SentinelOptions
        assert.deepStrictEqual(options.sentinels, ["10.0.0.5:26379", "10.0.0.6:26379"])
        assert.strictEqual(options.name, "orders")
        assert.strictEqual(Redacted.value(options.sentinelPassword as Redacted.Redacted<string>), "sentinel-pw")
        assert.strictEqual(Duration.toMillis(Duration.fromInputUnsafe(options.sentinelTimeout ?? 0)), 250)
      })
    )

    it.effect("an invalid setting fails with a ConfigError", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          connect(
            RedisClient.layerConfig().pipe(
              Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: { REDIS_DB: "three" } })))
            )
          )
        )
        assert.strictEqual(error._tag, "ConfigError")
      })
    )

    it.effect("replies parse the same under RESP2 and RESP3", () =>
      Effect.gen(function* () {
        const node = yield* RedisServer.RedisServer
        const read = (protocol: 2 | 3) =>
          withClient(RedisClient.layer({ url: node.url, protocol }), (r) =>
            r.use("read", async (c) => {
              const key = `${prefix()}{resp}`
              await c.xadd(key, "1-1", "f", "v")
              await c.hset(`${key}:h`, "a", "1")
              return [
                await c.xrange(key, "-", "+"),
                await c.xread("COUNT", 10, "STREAMS", key, "0"),
                await c.hgetall(`${key}:h`)
              ].map((reply) => JSON.stringify(reply).replaceAll(key, "KEY"))
            })
          )
        assert.deepStrictEqual(yield* read(3), yield* read(2))
      })
    )
  })
})

describe("RedisClient behind Sentinel", () => {
  layer(RedisServer.layerSentinel(), { excludeTestServices: true })("sentinel", (it) => {
    it.effect("finds the master through the sentinel and runs commands on it", () =>
      Effect.gen(function* () {
        const { master, sentinel, name } = yield* RedisServer.RedisSentinel
        const port = yield* withClient(
          RedisClient.layerSentinel({ sentinels: [`${sentinel.host}:${sentinel.port}`], name }),
          (redis) =>
            Effect.gen(function* () {
              assert.strictEqual(redis.mode, "sentinel")
              yield* redis.use("set", (c) => c.set("via-sentinel", "yes"))
              const info = yield* redis.use("info", (c) => c.info("server"))
              return Number(/tcp_port:(\d+)/.exec(info)?.[1])
            })
        )
        assert.strictEqual(port, master.port)
        const direct = yield* withClient(RedisClient.layer({ url: master.url }), (r) =>
          r.use("get", (c) => c.get("via-sentinel"))
        )
        assert.strictEqual(direct, "yes")
      })
    )
  })

  layer(RedisServer.layerSentinel({ replicas: 1, sentinels: 3, downAfter: "1 second" }), {
    excludeTestServices: true,
    timeout: 60_000
  })("a failover while the first sentinel hangs", (it) => {
    it.effect(
      "the client skips the silent sentinel, serves from the new master, and its subscription hears again",
      () =>
        Effect.gen(function* () {
          const { sentinels, name, currentMaster, awaitFailover } = yield* RedisServer.RedisSentinel
          const channel = `${prefix()}failover`
          const silent = sentinels[0] as RedisServer.Node
          const clientLayer = RedisClient.layerSentinel({
            sentinels: sentinels.map(({ host, port }) => ({ host, port })),
            name,
            // long enough that the sentinels announce the new master while the client still waits for the silent one
            sentinelTimeout: "3 seconds"
          })
          const warned: Array<string> = []
          const warnings = Logger.make((options) => {
            if (options.logLevel === "Warn") warned.push((options.message as Array<unknown>).map(String).join(" "))
          })
          const { seen, outage, afterFailover } = yield* Effect.gen(function* () {
            const redis = yield* RedisClient.RedisClient
            const events = yield* redis.subscribe(channel)
            const master = yield* currentMaster
            yield* Effect.acquireRelease(silent.freeze, () => Effect.ignore(silent.thaw))
            yield* master.kill
            const killedAt = Date.now()
            yield* awaitFailover(master)
            const failedOverAt = Date.now()
            const seen: Array<string> = []
            // publish through the client until its own subscription hears it: both connections found the new master
            yield* eventually(
              Effect.gen(function* () {
                yield* redis.use("publish", (c) => c.publish(channel, "after failover"))
                seen.push((yield* Queue.take(events).pipe(Effect.timeout("200 millis")))._tag)
                for (const event of yield* Queue.clear(events)) seen.push(event._tag)
                if (!seen.includes("Message")) return yield* Effect.fail("not heard yet")
              }),
              150
            )
            return { seen, outage: Date.now() - killedAt, afterFailover: Date.now() - failedOverAt }
          }).pipe(Effect.scoped, Effect.provide(clientLayer), Effect.provide(Logger.layer([warnings])))
          process.stdout.write(
            `sentinel failover with a silent sentinel: heard again ${outage} ms after the kill, ${afterFailover} ms after the failover\n`
          )
          // ioredis ended a connection when the announcement cancelled its reconnect: said, and connected again
          assert.isTrue(
            warned.some((line) => line.includes("ioredis ended the")),
            warned.join("\n")
          )
          assert.strictEqual(seen[0], "Reconnected")
          assert.include(seen, "Message")
          // the silent sentinel costs one sentinelTimeout (3 s) at most, on top of the failover
          assert.isBelow(afterFailover, 5_000)
        })
    )
  })
})

describe("RedisClient on a cluster", () => {
  layer(RedisServer.layerCluster(), { excludeTestServices: true })("cluster routing", (it) => {
    it.effect("the client's slot of a key is the one Redis computes (hash tags, empty tags, multi-byte text)", () =>
      Effect.gen(function* () {
        const cluster = yield* RedisServer.RedisCluster
        const node = cluster.nodes[0] as RedisServer.Node
        const keys = [
          "foo",
          "{user1000}.following",
          "foo{}{bar}",
          "foo{{bar}}zap",
          "foo{bar}{zap}",
          "{",
          "}{",
          "ключ{тег}",
          "😀{x}",
          ...Array.from({ length: 100 }, (_, i) => `k${i}-${Math.random().toString(36).slice(2)}`)
        ]
        const slots = yield* withClient(RedisClient.layer({ url: node.url }), (redis) =>
          Effect.forEach(keys, (key) => redis.use("keyslot", (c) => c.cluster("KEYSLOT", key)))
        )
        assert.deepStrictEqual(keys.map(slotOf), slots.map(Number))
      })
    )

    const clusterClient = (env: Record<string, string>) =>
      RedisClient.layerConfig().pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))

    it.effect("keys spread over the 3 masters; a cross-slot command fails with a typed CrossSlot error", () =>
      Effect.gen(function* () {
        const cluster = yield* RedisServer.RedisCluster
        const nodes = cluster.nodes.map((n) => `${n.host}:${n.port}`).join(",")
        yield* withClient(clusterClient({ REDIS_CLUSTER_NODES: nodes }), (redis) =>
          Effect.gen(function* () {
            assert.strictEqual(redis.mode, "cluster")
            const base = prefix()
            yield* Effect.forEach(
              Array.from({ length: 60 }, (_, i) => i),
              (i) => redis.use("set", (c) => c.set(`${base}${i}`, "v")),
              { concurrency: 10 }
            )
            const error = yield* Effect.flip(redis.use("mget", (c) => c.mget(`${base}1`, `${base}2`, `${base}3`)))
            assert.strictEqual(error.reason._tag, "CrossSlot")
            assert.isFalse(error.isRetryable)
            const tagged = yield* redis.use("mget", (c) => c.mget(`${base}{t}1`, `${base}{t}2`))
            assert.deepStrictEqual(tagged, [null, null])
          })
        )
        const sizes = yield* Effect.forEach(cluster.nodes, (node) =>
          withClient(RedisClient.layer({ url: node.url }), (r) => r.use("dbsize", (c) => c.dbsize()))
        )
        assert.strictEqual(
          sizes.reduce((a, b) => a + b, 0),
          60
        )
        assert.isTrue(
          sizes.every((size) => size > 0),
          `every master holds keys: ${sizes}`
        )
      })
    )
  })
})

const portOf = (address: ReturnType<ReturnType<typeof createServer>["address"]>): number =>
  typeof address === "object" && address !== null ? address.port : 0

/** A port that nothing listens on. */
const freeUnusedPort = () =>
  new Promise<number>((resolve) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const port = portOf(server.address())
      server.close(() => resolve(port))
    })
  })
