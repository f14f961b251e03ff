/**
 * Whole hashes as flat `[field, value, …]` lists. ioredis turns an `hgetall` reply into an object, one property per
 * field: for a hash of thousands of fields that object (in V8's dictionary mode) costs about as much as decoding the
 * reply. The command sent by its upper-case name gets no reply transform, so it arrives as the flat list it is on the
 * wire (under RESP2 and RESP3 alike).
 *
 * @internal
 */
import type { ChainableCommander } from "ioredis"
import type { Client } from "./connection.js"

/** A hash's fields and values, alternating. */
export type FlatHash = ReadonlyArray<string>

/** The name under which ioredis applies no reply transform to HGETALL. */
const command = "HGETALL"

/** Reads the hash at `key` as a flat list. */
export const readAll = (client: Client, key: string): Promise<FlatHash> => client.call(command, key).then(flatten)

/** Queues a read of the hash at `key` in `pipeline` (its reply: pass it to `flatten`). */
export const queueReadAll = (pipeline: ChainableCommander, key: string): ChainableCommander =>
  pipeline.call(command, key)

/** A reply of HGETALL as a flat list, whatever shape the connection decoded it into. */
export const flatten = (reply: unknown): FlatHash => {
  if (Array.isArray(reply)) return reply as FlatHash
  if (reply instanceof Map) return [...reply].flat() as FlatHash
  if (reply === null || reply === undefined) return []
  return Object.entries(reply as Record<string, string>).flat()
}
