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
import { Cluster, type Redis } from "ioredis"
import type { ScanOptions, ScanPage } from "../../RedisClient.js"
import type { Client } from "./connection.js"

/** True for a cursor this module hands out. */
export const isCursor = (cursor: string): boolean => /^\d{1,4}:\d{1,20}$/.test(cursor)

/** The masters to scan: the one node, or a Cluster's masters sorted by address. */
const mastersOf = (client: Client): ReadonlyArray<Redis> =>
  client instanceof Cluster
    ? client
        .nodes("master")
        .toSorted((a, b) => `${a.options.host}:${a.options.port}`.localeCompare(`${b.options.host}:${b.options.port}`))
    : [client]

/** One page of the keys matching `options`, from `cursor` (the start when undefined). */
export const scanPage = async (client: Client, options: ScanOptions, cursor: string | undefined): Promise<ScanPage> => {
  const masters = mastersOf(client)
  const [nodePart, cursorPart] = (cursor ?? "0:0").split(":")
  let node = Number(nodePart)
  let position = cursorPart ?? "0"
  const keys: Array<string> = []
  const seen = new Set<string>()
  for (let calls = 0; calls < options.maxCalls && keys.length < options.limit; calls++) {
    const master = masters[node]
    if (master === undefined) return { keys, cursor: null }
    const [next, found] = await master.scan(
      position,
      "MATCH",
      options.match,
      "COUNT",
      options.count,
      "TYPE",
      options.type
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
}
