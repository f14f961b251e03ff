/**
 * Reading a stream the plain way, as an outside consumer would: XRANGE, each entry as a map of its fields.
 */
import { Effect } from "effect"
import * as RedisClient from "../../src/RedisClient.js"

/** Every entry of the stream `key`, oldest first: its `id` and fields. */
export const entriesOf = (key: string) =>
  Effect.flatMap(RedisClient.RedisClient, (redis) =>
    redis.use("xrange", (client) => client.xrange(key, "-", "+"))
  ).pipe(
    Effect.map((entries) =>
      entries.map(([id, fields]) => {
        const record: Record<string, string> = { id }
        for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i] as string] = fields[i + 1] as string
        return record
      })
    )
  )
