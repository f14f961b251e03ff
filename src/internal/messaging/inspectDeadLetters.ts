/**
 * The dead letters of a topic: a page of them (`XRANGE` after a cursor, with the stream's length; every value cut
 * short by the script, so a page of heavy messages stays cheap), and the actions on them: replay to the topic or
 * delete, a list of ids or all of them (up to the newest one at the time of the request, so that letters dead-lettered
 * again meanwhile are not replayed in a loop), in batches of at most `batchSize` entries (see deadLetterMoves.ts: atomic per
 * message).
 *
 * @internal
 */
import { Effect } from "effect"
import type { InspectedDeadLetter } from "../../Inspector.js"
import type * as RedisClient from "../../RedisClient.js"
import type { RedisError } from "../../RedisError.js"
import { deadTopicOf, errorOf, keyOf, wakeChannelOf } from "./wire.js"
import { isEntryId } from "../entryIds.js"
import { type Move, mover } from "./deadLetterMoves.js"
import * as Scripts from "./deadLetterScripts.js"

/** Bytes of a payload shown. */
const previewBytes = 256

/** Bytes of any other value shown (a reason, metadata). */
const longestValue = 4096

/** Entries per script call of an "all" action. */
const batchSize = 100

/** Moves listed in an action's reply, at most. */
const listedMoves = 1000

/** True for a cursor of `listDeadLetters` (a dead letter's entry id). */
export const isCursor = (cursor: string): boolean => isEntryId(cursor)

/** A replay or a delete: of the dead letters with `ids`, or of all of them up to `upTo` (default: the newest now). */
export interface DeadLetterAction {
  readonly mode: Scripts.Mode
  readonly ids?: ReadonlyArray<string> | undefined
  readonly upTo?: string | undefined
}

/** A dead-letter entry as the inspector shows it, from the fields of the page script. */
const deadLetterOf = (id: string, raw: ReadonlyArray<string>): InspectedDeadLetter => {
  const fields = new Map<string, string>()
  for (let i = 0; i + 1 < raw.length; i += 2) fields.set(raw[i] as string, raw[i + 1] as string)
  const payload = fields.get("payload")
  const payloadBytes = Number(fields.get("~payload_bytes") ?? 0)
  let metadata: Record<string, unknown> | null = null
  try {
    const parsed: unknown = JSON.parse(fields.get("metadata") ?? "null")
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
      metadata = parsed as Record<string, unknown>
    }
  } catch {
    // not a message's metadata (or cut short): shown as null
  }
  return {
    id,
    uuid: fields.get("uuid") ?? null,
    reason: fields.get("dead_reason") ?? "",
    origin: { topic: fields.get("dead_topic") ?? "", id: fields.get("dead_id") ?? "" },
    group: fields.get("dead_group") ?? "",
    consumer: fields.get("dead_consumer") ?? "",
    deliveries: Number(fields.get("dead_deliveries") ?? 0),
    at: fields.get("dead_at") ?? "",
    payload:
      payload === undefined ? null : { bytes: payloadBytes, preview: payload, truncated: payloadBytes > previewBytes },
    metadata,
    error: errorOf(fields.get("dead_error")) ?? null
  }
}

/** A page of the dead letters of `topic`, oldest first, after `cursor` (an entry id): one script call. */
export const listDeadLetters = (
  redis: RedisClient.Service,
  prefix: string,
  topic: string,
  cursor: string | undefined,
  limit: number
): Effect.Effect<
  {
    readonly topic: string
    readonly total: number
    readonly deadLetters: ReadonlyArray<InspectedDeadLetter>
    readonly cursor: string | null
  },
  RedisError
> =>
  Effect.map(
    redis.eval(
      Scripts.deadLetterPage,
      [keyOf(prefix, deadTopicOf(topic))],
      [cursor === undefined ? "-" : `(${cursor}`, limit, previewBytes, longestValue]
    ),
    ([total, ...entries]) => {
      const deadLetters = entries.map(([id, fields]) => deadLetterOf(id, fields))
      const last = deadLetters.at(-1)
      return {
        topic,
        total: Number(total),
        deadLetters,
        cursor: entries.length < limit || last === undefined ? null : last.id
      }
    }
  )

/** What a replay or delete did: how many entries it moved, whether some are left (a bound), the first moves. */
export interface Moved {
  readonly count: number
  readonly more: boolean
  readonly moved: ReadonlyArray<Move>
}

/**
 * Replays or deletes dead letters of `topic`: those of `action.ids`, or all of them up to `action.upTo` (default: the
 * newest now), at most `maxAll` in one request (`more` then says some are left).
 */
export const moveDeadLetters = (
  redis: RedisClient.Service,
  prefix: string,
  topic: string,
  action: DeadLetterAction,
  maxAll: number
): Effect.Effect<Moved, RedisError> =>
  Effect.gen(function* () {
    const dead = keyOf(prefix, deadTopicOf(topic))
    const topicKey = keyOf(prefix, topic)
    const move = mover(redis, { dead, topic: topicKey, wake: wakeChannelOf(topicKey) }, action.mode)
    if (action.ids !== undefined) {
      const moved = action.ids.length === 0 ? [] : yield* move.ids(action.ids)
      return { count: moved.length, more: false, moved }
    }
    let upTo = action.upTo
    if (upTo === undefined) {
      const newest = yield* redis.send<ReadonlyArray<readonly [string, unknown]>>(
        "XREVRANGE",
        dead,
        "+",
        "-",
        "COUNT",
        1
      )
      const first = newest[0]
      if (first === undefined) return { count: 0, more: false, moved: [] }
      upTo = first[0]
    }
    const moved: Array<Move> = []
    let count = 0
    let start = "-"
    while (count < maxAll) {
      const size = Math.min(batchSize, maxAll - count)
      const batch = yield* move.range(start, upTo, size)
      count += batch.moves.length
      if (moved.length < listedMoves) moved.push(...batch.moves.slice(0, listedMoves - moved.length))
      if (batch.seen < size || batch.last === "") return { count, more: false, moved }
      // entries left in place (nothing to replay) are passed over
      start = `(${batch.last}`
    }
    // the bound reached: are there any left up to `upTo`?
    const left = yield* redis.send<ReadonlyArray<unknown>>("XRANGE", dead, start, upTo, "COUNT", 1)
    return { count, more: left.length > 0, moved }
  })
