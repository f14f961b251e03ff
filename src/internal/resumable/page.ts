/**
 * One page of a run as it is now: its chunk entries after an entry id (encoded, as stored), whether the run's end
 * marker follows them, and the id of its last chunk. A read that does not wait (where `resume` follows the run live):
 * for protocols that read in requests, such as Durable Streams catch-up reads.
 *
 * @internal
 */
import { Effect, Result } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import type { Entry, RunPage } from "../../ResumableStream.js"
import * as Reasons from "../../ResumableStreamError.js"
import type { Access } from "./access.js"
import { decodeFailure, fail, fromRedis } from "./error.js"
import { runKeys } from "./keys.js"
import type { Settings } from "./settings.js"
import { parseEntry } from "./wire.js"

/** The item of a stored chunk (`{"item": …}`), or undefined when it is not JSON. */
const itemOf = (data: string): Result.Result<unknown, undefined> => {
  try {
    return Result.succeed((JSON.parse(data) as { item?: unknown }).item)
  } catch {
    return Result.fail(undefined)
  }
}

/** Reads pages of runs on `redis`, by token. */
export const make =
  (redis: RedisClient.Service, settings: Settings, access: Access) =>
  (token: string, options: { readonly after?: string | undefined; readonly maxEntries?: number | undefined } = {}) =>
    Effect.gen(function* () {
      const payload = yield* access.verify(token)
      const keys = runKeys(settings.prefix, payload.name, payload.runId)
      const count = Math.max(1, options.maxEntries ?? settings.pageSize)
      const [exists, range, last] = yield* redis.pipeline([
        { name: "EXISTS", args: [keys.meta], key: keys.meta },
        {
          name: "XRANGE",
          args: [keys.stream, options.after === undefined ? "-" : `(${options.after}`, "+", "COUNT", count],
          key: keys.stream
        },
        { name: "XREVRANGE", args: [keys.stream, "+", "-", "COUNT", 2], key: keys.stream }
      ])
      const replies = [exists!, range!, last!]
      for (const reply of replies)
        if (Result.isFailure(reply)) return yield* Effect.fail(fromRedis(payload.runId)(reply.failure))
      const [found, entries, tailEntries] = replies.map(
        (reply) => (reply as Result.Success<unknown, never>).success
      ) as [number, RedisClient.StreamEntries, RedisClient.StreamEntries]
      if (found === 0 && tailEntries.length === 0) {
        const missing = settings.secrets.length > 0 ? Reasons.Expired : Reasons.NotFound
        return yield* fail(missing, "the run's data is gone", payload.runId)
      }
      const chunks: Array<Entry<unknown>> = []
      let ended = false
      for (const raw of entries.map(parseEntry)) {
        if (raw._tag === "End") {
          ended = true
          break
        }
        const item = itemOf(raw.data)
        if (Result.isFailure(item))
          return yield* Effect.fail(decodeFailure("a stored chunk is not JSON", payload.runId, raw.id))
        chunks.push({ id: raw.id, seq: raw.seq, chunk: item.success })
      }
      const lastChunk = tailEntries.map(parseEntry).find((entry) => entry._tag === "Chunk")
      return {
        entries: chunks,
        ended: ended || (chunks.length === 0 && tailEntries.map(parseEntry).some((entry) => entry._tag === "End")),
        tail: lastChunk?.id ?? "0-0"
      } satisfies RunPage
    })
