/**
 * The raw ioredis consumer the messaging benches compare with: the usual hand-written loop over a consumer group.
 */
import type { Cluster, Redis } from "ioredis"

/**
 * A raw consumer: `XREADGROUP … BLOCK 100` and one `XACK` per read on its own connection, until the readers sharing
 * `progress` handled `expected` entries.
 */
export const rawReader = async (
  reader: Redis | Cluster,
  key: string,
  consumer: string,
  expected: number,
  progress: { handled: number },
  onFields: (fields: Array<string>) => void
) => {
  while (progress.handled < expected) {
    const reply = (await reader.xreadgroup(
      "GROUP",
      "g",
      consumer,
      "COUNT",
      100,
      "BLOCK",
      100,
      "STREAMS",
      key,
      ">"
    )) as Array<[string, Array<[string, Array<string>]>]> | null
    const entries = reply?.[0]?.[1] ?? []
    if (entries.length === 0) continue
    for (const [, fields] of entries) onFields(fields)
    await reader.xack(key, "g", ...entries.map(([id]) => id))
    progress.handled += entries.length
  }
}
