/**
 * Reading the replies the inspection modules get: a pipelined command's outcome (`replyOf`), `XINFO` rows as field maps (flat name/value arrays under RESP2, maps under
 * RESP3), numbers that may be missing, entry ids and the time in them, and the escaping of prefixes for `SCAN MATCH`
 * patterns and regular expressions.
 *
 * @internal
 */
import { Effect, Result } from "effect"
import type { RedisError } from "../RedisError.js"

/** The fields of an `XINFO` row or a hash reply: a flat `[name, value, …]` array, a `Map`, or an object. */
export const fieldsOf = (reply: unknown): Map<string, unknown> => {
  const fields = new Map<string, unknown>()
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) fields.set(String(reply[i]), reply[i + 1])
  } else if (reply instanceof Map) {
    for (const [name, value] of reply) fields.set(String(name), value)
  } else if (typeof reply === "object" && reply !== null) {
    for (const [name, value] of Object.entries(reply)) fields.set(name, value)
  }
  return fields
}

/** The rows of a list reply (`XINFO GROUPS`, `XINFO CONSUMERS`); none for anything else. */
export const rowsOf = (reply: unknown): ReadonlyArray<Map<string, unknown>> =>
  Array.isArray(reply) ? reply.map(fieldsOf) : []

/** A number field, or `fallback` when it is missing or not a number. */
export const numberOf = (value: unknown, fallback = 0): number => {
  if (value === null || value === undefined) return fallback
  const n = Number(value instanceof Buffer ? value.toString() : value)
  return Number.isFinite(n) ? n : fallback
}

/** A number field that Redis may report as nil (a group's `lag` after deletions): `null` then. */
export const nullableNumberOf = (value: unknown): number | null =>
  value === null || value === undefined ? null : numberOf(value, 0)

/** A text field. */
export const textOf = (value: unknown, fallback = ""): string =>
  value === null || value === undefined ? fallback : value instanceof Buffer ? value.toString() : String(value)

/** Text matched literally by a `SCAN MATCH` glob pattern (`*`, `?`, `[`, `]` and `\` escaped). */
export const globLiteral = (text: string): string => text.replace(/[*?[\]\\]/g, (c) => `\\${c}`)

/** Text matched literally by a regular expression. */
export const regexLiteral = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, (c) => `\\${c}`)

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
