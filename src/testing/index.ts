/**
 * `effect-redis-streams/testing`: real Redis servers (single node and cluster) for tests, examples and benchmarks.
 *
 * @since 0.1.0
 */

export * as RedisServer from "./RedisServer.js"
