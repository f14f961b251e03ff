/**
 * The layout of a partitioned topic: how many partitions it has, which topic (stream) each one is, and which
 * partition a message key goes to.
 *
 * - Partition `i` of topic `T` is the ordinary topic `T#i` (or `T#i.<k>`): its own stream `{prefix}{T#i…}` under its
 *   own hash tag, with its own dead letters and retries beside it. The tag is chosen so that its slot lies just past
 *   `slot(T) + reverse14(i)` (the index's 14 bits reversed: 0, 8192, 4096, 12288, 2048…), so any power-of-two count of
 *   partitions is spread evenly over the 16,384 slots and every master owning one contiguous, even share of the slots
 *   gets some once that count is at least the number of masters. `<k>` is the first base-36 number that puts the tag
 *   in that window (none when `T#i` already lands there).
 * - The count and the partitions' topics are stored with the topic, in the hash `{prefix}{T}:partitions` (`count`,
 *   and one field per index holding that partition's topic), so every process (in any language) agrees on them.
 * - A message key goes to partition `crc16(key's UTF-8 bytes) mod count`: the CRC16 every Cluster client already has
 *   for key slots (for a power-of-two count, `CLUSTER KEYSLOT` of a key without braces, mod count).
 *
 * @internal
 */
import { crc16, slotOf } from "../../slot.js"
import { make as script } from "../../../RedisScript.js"
import { keyOf } from "../wire.js"
import type { Layout } from "../../../PartitionedTopics.js"

/** The hash that stores a partitioned topic's layout. */
export const layoutKeyOf = (prefix: string, topic: string): string => `${keyOf(prefix, topic)}:partitions`

/** Slots a partition's tag may land past its target slot. */
const window = 64

/** `i`'s lowest 14 bits in reverse order: evenly spread targets for any power-of-two count. */
const reverse14 = (i: number): number => {
  let reversed = 0
  for (let bit = 0; bit < 14; bit++) reversed |= ((i >> bit) & 1) << (13 - bit)
  return reversed
}

/** The topic of partition `index` of `topic` (see the module). */
export const partitionTopic = (topic: string, index: number): string => {
  const target = (slotOf(`{${topic}}`) + reverse14(index)) % 16384
  const base = `${topic}#${index}`
  const fits = (tag: string) => (slotOf(`{${tag}}`) - target + 16384) % 16384 < window
  if (fits(base)) return base
  for (let k = 1; ; k++) {
    const tag = `${base}.${k.toString(36)}`
    if (fits(tag)) return tag
  }
}

/** The partition of a message key among `count`. */
export const partitionOf = (key: string, count: number): number => crc16(Buffer.from(key, "utf8")) % count

/** The metadata entry that carries a message's key (read by ordered consumers to keep each key's order). */
export const keyMetadata = "partition_key"

/** A layout from the stored hash's fields (`HGETALL` as name, value, …); undefined when there is none. */
export const layoutOf = (topic: string, fields: ReadonlyArray<string>): Layout | undefined => {
  const stored = new Map<string, string>()
  for (let i = 0; i + 1 < fields.length; i += 2) stored.set(fields[i] as string, fields[i + 1] as string)
  const count = Number(stored.get("count") ?? 0)
  if (!(count > 0)) return undefined
  return {
    topic,
    partitions: Array.from({ length: count }, (_, i) => stored.get(String(i)) ?? partitionTopic(topic, i))
  }
}

/**
 * Stores a layout of `ARGV[1]` partitions (their topics in `ARGV[2…]`) unless one is stored; with `ARGV[1]` above the
 * stored count and "grow" as the last argument, adds the partitions from the stored count on. KEYS[1] the layout hash.
 * Reply: the stored fields after the call (`HGETALL`).
 */
export const store = script<[layout: string], ReadonlyArray<string | number>, Array<string>>()(
  "PartitionedTopics.store",
  `local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
local wanted = tonumber(ARGV[1])
local grow = ARGV[#ARGV] == 'grow'
if count == 0 or (grow and wanted > count) then
  for i = count, wanted - 1 do redis.call('HSET', KEYS[1], tostring(i), ARGV[i + 2]) end
  redis.call('HSET', KEYS[1], 'count', wanted)
end
return redis.call('HGETALL', KEYS[1])`
)
