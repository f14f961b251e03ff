/**
 * Bounded key discovery: `SCAN … MATCH … COUNT … TYPE …` on every master (each master of a Cluster in turn, sorted by
 * address so that a cursor means the same node from one request to the next), one page per call. A page stops when
 * it holds `limit` keys or after `maxCalls` SCAN calls, whichever first, and hands back a cursor
 * (`<node index>:<scan cursor>`) to continue from; `null` once every master has been scanned. Never `KEYS`.
 *
 * SCAN's guarantees hold per node: a key present during the whole scan is returned at least once (maybe twice), a key
 * added or removed meanwhile may or may not be. A failover between two pages may skip or repeat part of a node.
 *
 * @internal
 */
import { Effect } from "effect"
import { Cluster, type Redis } from "ioredis"
import type * as RedisClient from "../../RedisClient.js"
import type { RedisError } from "../../RedisError.js"

/** What to scan for and how much one page may cost. */
export interface ScanOptions {
  /** The `MATCH` glob pattern. */
  readonly match: string
  /** The `TYPE` of the keys (`stream`, `hash`, `set`…). */
  readonly type: string
  /** The `COUNT` hint of each call. */
  readonly count: number
  /** Keys after which the page ends. */
  readonly limit: number
  /** SCAN calls after which the page ends, found keys or not. */
  readonly maxCalls: number
}

/** One page of keys and where the next one starts (`null`: the scan is complete). */
export interface ScanPage {
  readonly keys: ReadonlyArray<string>
  readonly cursor: string | null
}

/** True for a cursor this module hands out (or none). */
export const isCursor = (cursor: string): boolean => /^\d{1,4}:\d{1,20}$/.test(cursor)

/** The masters to scan: the one node, or a Cluster's masters sorted by address. */
export const mastersOf = (client: RedisClient.Client): ReadonlyArray<Redis> =>
  client instanceof Cluster
    ? client
        .nodes("master")
        .toSorted((a, b) => `${a.options.host}:${a.options.port}`.localeCompare(`${b.options.host}:${b.options.port}`))
    : [client]

/** One page of the keys matching `options`, from `cursor` (the start when undefined). */
export const scanPage = (
  redis: RedisClient.Service,
  options: ScanOptions,
  cursor: string | undefined
): Effect.Effect<ScanPage, RedisError> =>
  Effect.gen(function* () {
    const masters = mastersOf(redis.client)
    const [nodePart, cursorPart] = (cursor ?? "0:0").split(":")
    let node = Number(nodePart)
    let position = cursorPart ?? "0"
    const keys: Array<string> = []
    const seen = new Set<string>()
    for (let calls = 0; calls < options.maxCalls && keys.length < options.limit; calls++) {
      const master = masters[node]
      if (master === undefined) return { keys, cursor: null }
      const [next, found] = yield* redis.use("Inspector.scan", () =>
        master.scan(position, "MATCH", options.match, "COUNT", options.count, "TYPE", options.type)
      )
      for (const key of found) {
        if (!seen.has(key)) {
          seen.add(key)
          keys.push(key)
        }
      }
      position = next
      if (next === "0") {
        node += 1
        if (node >= masters.length) return { keys, cursor: null }
      }
    }
    return { keys, cursor: `${node}:${position}` }
  })
