/**
 * Commands on many keys in few round trips, for the inspector's figures: one command per key, pipelined per node
 * (internal/pipelined.ts), and each outcome read as its reply, `undefined` for a key that is not there (`XINFO` on a
 * missing stream, a group deleted meanwhile), or the classified failure.
 *
 * @internal
 */
import { Effect } from "effect"
import type { ChainableCommander } from "ioredis"
import type * as RedisClient from "../../RedisClient.js"
import type { RedisError } from "../../RedisError.js"
import * as Pipelined from "../redis/pipelined.js"

/** The reply of a pipelined command, `undefined` when the key does not exist, or the classified failure. */
export const replyOf = <A>(
  redis: RedisClient.Service,
  outcome: Pipelined.Outcome<A> | undefined,
  op: string
): Effect.Effect<A | undefined, RedisError> => {
  if (outcome === undefined) return Effect.succeed(undefined)
  const [error, reply] = outcome
  if (error === undefined || error === null) return Effect.succeed(reply)
  // XINFO on a missing stream; a group deleted between the two round trips
  if (error instanceof Error && /no such key|NOGROUP/i.test(error.message)) return Effect.succeed(undefined)
  return Effect.fail(redis.classify(error, op))
}

/** Runs one command per key, pipelined per node; the outcomes in the order of the keys. */
export const pipelined = <A>(
  redis: RedisClient.Service,
  op: string,
  keys: ReadonlyArray<string>,
  add: (pipeline: ChainableCommander, key: string, index: number) => void
): Effect.Effect<ReadonlyArray<Pipelined.Outcome<A>>, RedisError> =>
  keys.length === 0
    ? Effect.succeed([])
    : redis.use(op, (client) =>
        Pipelined.pipelined<A>(client, keys, (pipeline, key, index) => add(pipeline, key as string, index))
      )
