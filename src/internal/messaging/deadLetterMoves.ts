/**
 * Moving dead letters: back to their topic (replay) or nowhere (delete), by ids or a range of the dead-letter stream.
 *
 * Atomic: the dead-letter stream and its topic are in one slot (`{prefix}{T}:dead` and `{prefix}{T}` share the hash
 * tag `{T}`, and so do `{prefix}{T}:dead:dead` and `{prefix}{T}:dead`): one script adds each entry to the topic and
 * deletes it from the dead letters (deadLetterScripts.ts). Never in both, never in neither; a replay sent twice moves the entry
 * once.
 *
 * @internal
 */
import { Effect } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import type { RedisError } from "../../RedisError.js"
import { textOf } from "../replies.js"
import * as Scripts from "./deadLetterScripts.js"

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

/** The mover of `deadKey` to `topicKey` (wake channel `wake`): one script per batch of entries. */
export const mover = (
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
