/**
 * What the SubjectStorage suites share: storage options with a key prefix of their own, a storage on the suite's
 * client, and raw access to the same servers.
 */
import { Effect } from "effect"
import * as RedisClient from "../../src/RedisClient.js"
import * as SubjectStorage from "../../src/SubjectStorage.js"
import * as RedisServer from "../../src/testing/RedisServer.js"

/** Storage options under a fresh key prefix, plus `overrides`. */
export const options = (overrides: SubjectStorage.Options = {}): SubjectStorage.Options => ({
  keyPrefix: RedisServer.uniquePrefix("subjects"),
  ...overrides
})

/** Runs `f` with a storage built from `opts` on the suite's client. */
export const withStorage = <A, E, R>(
  opts: SubjectStorage.Options,
  f: (storage: SubjectStorage.Service) => Effect.Effect<A, E, R>
) => Effect.flatMap(SubjectStorage.make(opts), f)

/** Runs `f` on the suite's shared connection, bypassing the storage. */
export const raw = <A>(f: (client: RedisClient.Client) => Promise<A>) =>
  Effect.flatMap(RedisClient.RedisClient, (redis) => redis.use("raw", f))
