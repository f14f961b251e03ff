/**
 * The dead letters of a topic: a page of them (`XRANGE` after a cursor, with the stream's length), and the actions
 * on them: replay to the topic or delete, a list of ids or all of them (up to the newest one at the time of the
 * request, so that letters dead-lettered again meanwhile are not replayed in a loop), in scripts of at most
 * `batchSize` entries (see move.ts: atomic per message).
 *
 * @internal
 */
import { Effect } from "effect"
import type { InspectedDeadLetter } from "../../Inspector.js"
import type * as RedisClient from "../../RedisClient.js"
import type { RedisError } from "../../RedisError.js"
import { deadTopicOf, keyOf, wakeChannelOf } from "../messaging/wire.js"
import { type Move, mover } from "./move.js"
import type * as Scripts from "./scripts.js"
import { pipelined, replyOf } from "./topics.js"

/** Bytes of a payload shown. */
const previewBytes = 256

/** Entries per script call of an "all" action. */
const batchSize = 100

/** Moves listed in an action's reply, at most. */
const listedMoves = 1000

/** A replay or a delete: of the dead letters with `ids`, or of all of them up to `upTo` (default: the newest now). */
export interface DeadLetterAction {
  readonly mode: Scripts.Mode
  readonly ids?: ReadonlyArray<string> | undefined
  readonly upTo?: string | undefined
}

/** A dead-letter entry as the inspector shows it. */
const deadLetterOf = (id: string, raw: ReadonlyArray<Buffer>): InspectedDeadLetter => {
  const fields = new Map<string, Buffer>()
  for (let i = 0; i + 1 < raw.length; i += 2) fields.set((raw[i] as Buffer).toString(), raw[i + 1] as Buffer)
  const text = (name: string) => {
    const value = fields.get(name)
    return value === undefined ? null : value.toString()
  }
  const payload = fields.get("payload")
  let metadata: Record<string, unknown> | null = null
  try {
    const parsed: unknown = JSON.parse(text("metadata") ?? "null")
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
      metadata = parsed as Record<string, unknown>
    }
  } catch {
    // not a message's metadata: shown as null
  }
  return {
    id,
    uuid: text("uuid"),
    reason: text("dead_reason") ?? "",
    origin: { topic: text("dead_topic") ?? "", id: text("dead_id") ?? "" },
    group: text("dead_group") ?? "",
    consumer: text("dead_consumer") ?? "",
    deliveries: Number(text("dead_deliveries") ?? 0),
    at: text("dead_at") ?? "",
    payload:
      payload === undefined
        ? null
        : {
            bytes: payload.byteLength,
            preview: payload.subarray(0, previewBytes).toString("utf8"),
            truncated: payload.byteLength > previewBytes
          },
    metadata
  }
}

/** A page of the dead letters of `topic`, oldest first, after `cursor` (an entry id). */
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
  Effect.gen(function* () {
    const op = "Inspector.deadLetters"
    const key = keyOf(prefix, deadTopicOf(topic))
    const start = cursor === undefined ? "-" : `(${cursor}`
    const outcomes = yield* pipelined<unknown>(redis, op, [key, key], (pipeline, k, index) => {
      if (index === 0) pipeline.xlen(k)
      else pipeline.xrangeBuffer(k, start, "+", "COUNT", limit)
    })
    const total = yield* replyOf(redis, outcomes[0], op)
    const entries = ((yield* replyOf(redis, outcomes[1], op)) ?? []) as ReadonlyArray<
      readonly [Buffer, ReadonlyArray<Buffer>]
    >
    const deadLetters = entries.map(([id, fields]) => deadLetterOf(id.toString(), fields ?? []))
    const last = deadLetters.at(-1)
    return {
      topic,
      total: Number(total ?? 0),
      deadLetters,
      cursor: entries.length < limit || last === undefined ? null : last.id
    }
  })

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
      const newest = yield* redis.use("Inspector.deadLetters", (client) => client.xrevrange(dead, "+", "-", "COUNT", 1))
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
    const left = yield* redis.use("Inspector.deadLetters", (client) => client.xrange(dead, start, upTo, "COUNT", 1))
    return { count, more: left.length > 0, moved }
  })
