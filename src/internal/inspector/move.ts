/**
 * Moving dead letters: back to their topic (replay) or nowhere (delete), by ids or a range of the dead-letter stream.
 *
 * - Atomic (the rule): the dead-letter stream and its topic are in one slot (`{prefix}{T}:dead` and `{prefix}{T}`
 *   share the hash tag `{T}`), or on one node: one script adds each entry to the topic and deletes it from the dead
 *   letters (scripts.ts). Never in both, never in neither; a replay sent twice moves the entry once.
 * - Apart (the exception): on a Cluster, the keys of a topic whose own name ends in `:dead` (the dead letters of a
 *   dead-letter topic: `{prefix}{T:dead}:dead` and `{prefix}{T}:dead`) are in different slots. Each entry is then
 *   added to the topic first and deleted from the dead letters after, so a failure in between leaves the message in
 *   both (a duplicate the consumers' uuid check catches), never in neither; two replays of one entry at the same
 *   moment may both add it.
 *
 * @internal
 */
import { Effect } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import type { RedisError } from "../../RedisError.js"
import { slotOf } from "../slot.js"
import { textOf } from "./reply.js"
import * as Scripts from "./scripts.js"

/** One entry moved: its id in the dead letters, and its new id in the topic (`null` for a delete). */
export interface Move {
  readonly deadLetterId: string
  readonly topicId: string | null
}

/** What a range move saw: how many entries, the last one's id (`""` when none), and what it moved. */
export interface RangeMoved {
  readonly seen: number
  readonly last: string
  readonly moves: ReadonlyArray<Move>
}

/** Moves of one dead-letter stream to its topic. */
export interface Mover {
  /** Moves the entries with these ids that are still there. */
  readonly ids: (ids: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Move>, RedisError>
  /** Moves the first `count` entries from `start` (inclusive; `(id` after an id) to `end`. */
  readonly range: (start: string, end: string, count: number) => Effect.Effect<RangeMoved, RedisError>
}

const pairsOf = (flat: ReadonlyArray<string | number>): Array<Move> => {
  const moves: Array<Move> = []
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const topicId = textOf(flat[i + 1])
    moves.push({ deadLetterId: textOf(flat[i]), topicId: topicId === "" ? null : topicId })
  }
  return moves
}

/** The mover of `deadKey` to `topicKey` (wake channel `wake`), atomic whenever the keys allow it. */
export const mover = (
  redis: RedisClient.Service,
  keys: { readonly dead: string; readonly topic: string; readonly wake: string },
  mode: Scripts.Mode
): Mover =>
  redis.mode !== "cluster" || slotOf(keys.dead) === slotOf(keys.topic)
    ? atomic(redis, keys, mode)
    : apart(redis, keys, mode)

const atomic = (
  redis: RedisClient.Service,
  keys: { readonly dead: string; readonly topic: string; readonly wake: string },
  mode: Scripts.Mode
): Mover => ({
  ids: (ids) => Effect.map(redis.eval(Scripts.moveIds, [keys.dead, keys.topic], [mode, keys.wake, ...ids]), pairsOf),
  range: (start, end, count) =>
    Effect.map(
      redis.eval(Scripts.moveRange, [keys.dead, keys.topic], [mode, keys.wake, start, end, count]),
      (reply) => ({ seen: Number(reply[0] ?? 0), last: textOf(reply[1]), moves: pairsOf(reply.slice(2)) })
    )
})

type Entry = readonly [id: Buffer, fields: ReadonlyArray<Buffer>]

const apart = (
  redis: RedisClient.Service,
  keys: { readonly dead: string; readonly topic: string; readonly wake: string },
  mode: Scripts.Mode
): Mover => {
  const op = "Inspector.moveDeadLetters"
  /** Adds the entry to the topic (a replay), then deletes it from the dead letters. */
  const moveOne = ([rawId, fields]: Entry): Effect.Effect<Move | undefined, RedisError> =>
    Effect.gen(function* () {
      const id = rawId.toString()
      let topicId: string | null = null
      if (mode === "replay") {
        const kept: Array<Buffer> = []
        for (let i = 0; i + 1 < fields.length; i += 2) {
          const name = fields[i] as Buffer
          if (!name.toString().startsWith("dead_")) kept.push(name, fields[i + 1] as Buffer)
        }
        if (kept.length === 0) return undefined
        topicId = yield* redis.use(op, (client) => client.xadd(keys.topic, "*", ...kept))
      }
      yield* redis.use(op, (client) => client.xdel(keys.dead, id))
      return { deadLetterId: id, topicId }
    })
  const moveAll = (entries: ReadonlyArray<Entry>) =>
    Effect.gen(function* () {
      const moves: Array<Move> = []
      for (const entry of entries) {
        const moved = yield* moveOne(entry)
        if (moved !== undefined) moves.push(moved)
      }
      if (mode === "replay" && moves.length > 0) {
        yield* redis.use(op, (client) => client.publish(keys.wake, String(moves.length)))
      }
      return moves
    })
  return {
    ids: (ids) =>
      Effect.flatMap(
        Effect.forEach(ids, (id) => redis.use(op, (client) => client.xrangeBuffer(keys.dead, id, id))),
        (found) => moveAll(found.flat())
      ),
    range: (start, end, count) =>
      Effect.flatMap(
        redis.use(op, (client) => client.xrangeBuffer(keys.dead, start, end, "COUNT", count)),
        (entries) =>
          Effect.map(moveAll(entries), (moves) => ({
            seen: entries.length,
            last: entries.at(-1)?.[0].toString() ?? "",
            moves
          }))
      )
  }
}
