/**
 * `npm run demo`: connects to Redis (REDIS_URL, or a redis-server started for the demo when it is unset) and shows
 * what the library does, printing each step.
 */
import { Console, Effect, Layer, Queue } from "effect"
import * as RateLimiter from "effect/persistence/RateLimiter"
import * as RedisClient from "../src/RedisClient.js"
import * as RedisServer from "../src/testing/RedisServer.js"

const connection = Effect.gen(function* () {
  const redis = yield* RedisClient.RedisClient
  const server = yield* RedisServer.RedisServer
  yield* Console.log(`connected to ${server.url} (${server.controllable ? "started for this demo" : "REDIS_URL"})`)

  yield* redis.use("set", (c) => c.set("demo:greeting", "hello from effect-redis-streams", "EX", 60))
  yield* Console.log(`GET demo:greeting → ${yield* redis.use("get", (c) => c.get("demo:greeting"))}`)

  const events = yield* redis.subscribe("demo:channel")
  yield* redis.use("publish", (c) => c.publish("demo:channel", "a pub/sub message"))
  const event = yield* Queue.take(events)
  if (event._tag === "Message") yield* Console.log(`pub/sub: received "${event.message}" on ${event.channel}`)

  const started = Date.now()
  yield* Effect.scoped(
    Effect.flatMap(redis.dedicated, (conn) =>
      redis.use("xread", () => conn.xread("BLOCK", 200, "STREAMS", "demo:empty", "$"))
    )
  )
  yield* Console.log(`blocking XREAD on a dedicated connection returned after ${Date.now() - started} ms`)

  const error = yield* Effect.flip(redis.use("lpush", (c) => c.lpush("demo:greeting", "x")))
  yield* Console.log(`typed error: reason=${error.reason} code=${error.code} retryable=${error.isRetryable}`)
})

const rateLimiting = Effect.gen(function* () {
  const limiter = yield* RateLimiter.RateLimiter
  const results = yield* Effect.forEach([1, 2, 3], () =>
    limiter.consume({ key: "demo", limit: 2, window: "10 seconds", onExceeded: "fail" }).pipe(
      Effect.as("allowed"),
      Effect.catchReason("RateLimiterError", "RateLimitExceeded", () => Effect.succeed("limited"))
    )
  )
  yield* Console.log(`effect/persistence RateLimiter on our connection: ${results.join(", ")}`)
}).pipe(Effect.provide(RateLimiter.layer.pipe(Layer.provide(RateLimiter.layerStoreRedis({ prefix: "demo:rl:" })))))

const program = Effect.gen(function* () {
  yield* Effect.scoped(connection)
  yield* rateLimiting
  yield* Console.log("done: every connection closed")
})

const Live = RedisServer.layerClient().pipe(Layer.provideMerge(RedisServer.layer()))

Effect.runPromise(program.pipe(Effect.provide(Live))).catch((error) => {
  console.error(error)
  process.exit(1)
})
