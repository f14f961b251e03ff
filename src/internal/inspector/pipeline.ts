/**
 * Commands on many keys in few round trips, for the inspector's figures: `RedisClient.pipeline` (pipelined per node),
 * each outcome read as its reply, `undefined` for a key that is not there (`XINFO` on a missing stream, a group
 * deleted meanwhile), or the failure.
 *
 * @internal
 */
import { Effect, Result } from "effect"
import type { RedisError } from "../../RedisError.js"

/** The reply of a pipelined command, `undefined` when the key does not exist, or its failure. */
export const replyOf = (
  outcome: Result.Result<unknown, RedisError> | undefined
): Effect.Effect<unknown, RedisError> => {
  if (outcome === undefined) return Effect.succeed(undefined)
  if (Result.isSuccess(outcome)) return Effect.succeed(outcome.success)
  // XINFO on a missing stream; a group deleted between the two round trips
  if (/no such key|NOGROUP/i.test(outcome.failure.reason.message)) return Effect.succeed(undefined)
  return Effect.fail(outcome.failure)
}
