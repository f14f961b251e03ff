/**
 * The dead letters of a topic: a page of them (`XRANGE` after a cursor, with the stream's length), and the actions
 * on them: replay to the topic or delete, a list of ids or all of them (up to the newest one at the time of the
 * request, so that letters dead-lettered again meanwhile are not replayed in a loop), in scripts of at most
 * `batchSize` entries, each atomic per message (see scripts.ts).
 *
 * @internal
 */
import { Effect } from "effect"
import type { InspectedDeadLetter } from "../../Inspector.js"
import type * as RedisClient from "../../RedisClient.js"
import type { RedisError } from "../../RedisError.js"
import { deadTopicOf, keyOf, wakeChannelOf } from "../messaging/wire.js"
import { textOf } from "./reply.js"
import * as Scripts from "./scripts.js"
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
  readonly moved: ReadonlyArray<{ readonly deadLetterId: string; readonly topicId: string | null }>
}

const pairsOf = (flat: ReadonlyArray<string | number>) => {
  const moves: Array<{ readonly deadLetterId: string; readonly topicId: string | null }> = []
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const topicId = textOf(flat[i + 1])
    moves.push({ deadLetterId: textOf(flat[i]), topicId: topicId === "" ? null : topicId })
  }
  return moves
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
    const deadKey = keyOf(prefix, deadTopicOf(topic))
    const topicKey = keyOf(prefix, topic)
    const wake = wakeChannelOf(topicKey)
    const mode = action.mode
    if (action.ids !== undefined) {
      if (action.ids.length === 0) return { count: 0, more: false, moved: [] }
      const reply = yield* redis.eval(Scripts.moveIds, [deadKey, topicKey], [mode, wake, ...action.ids])
      const moved = pairsOf(reply)
      return { count: moved.length, more: false, moved }
    }
    let upTo = action.upTo
    if (upTo === undefined) {
      const newest = yield* redis.use("Inspector.deadLetters", (client) =>
        client.xrevrange(deadKey, "+", "-", "COUNT", 1)
      )
      const first = newest[0]
      if (first === undefined) return { count: 0, more: false, moved: [] }
      upTo = first[0]
    }
    const moved: Array<{ readonly deadLetterId: string; readonly topicId: string | null }> = []
    let count = 0
    let start = "-"
    while (count < maxAll) {
      const size = Math.min(batchSize, maxAll - count)
      const reply = yield* redis.eval(Scripts.moveRange, [deadKey, topicKey], [mode, wake, start, upTo, size])
      const seen = Number(reply[0] ?? 0)
      const last = textOf(reply[1])
      const pairs = pairsOf(reply.slice(2))
      count += pairs.length
      if (moved.length < listedMoves) moved.push(...pairs.slice(0, listedMoves - moved.length))
      if (seen < size || last === "") return { count, more: false, moved }
      // entries left in place (nothing to replay) are passed over
      start = `(${last}`
    }
    // the bound reached: are there any left up to `upTo`?
    const left = yield* redis.use("Inspector.deadLetters", (client) => client.xrange(deadKey, start, upTo, "COUNT", 1))
    return { count, more: left.length > 0, moved }
  })
