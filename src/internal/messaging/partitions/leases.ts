/**
 * The Redis side of partition ownership within a group: the group's live members, and one lease per partition with
 * a fencing token.
 *
 * - Members: the sorted set `{prefix}{T}:members:<group>`, each member scored by when its membership expires (server
 *   time); a heartbeat renews its own and drops the expired ones.
 * - A partition's lease: the string `{prefix}{T#i…}:lease:<group>` = `<member>|<token>`, with an expiry; the token
 *   comes from the counter `…:fence:<group>` beside it, so every new owner of a partition gets a larger one. Both keys
 *   are in the partition's slot.
 *
 * @internal
 */
import { make as script } from "../../../RedisScript.js"
import { keyOf } from "../wire.js"

/** The members set of a group of a partitioned topic. */
export const membersKeyOf = (prefix: string, topic: string, group: string): string =>
  `${keyOf(prefix, topic)}:members:${group}`

/** The channel on which a group's members announce a change (one joined, left, or released a partition). */
export const changesChannelOf = (membersKey: string): string => `${membersKey}:changes`

/** The lease of a partition's group, by the partition's stream key. */
export const leaseKeyOf = (streamKey: string, group: string): string => `${streamKey}:lease:${group}`

/** The lease of a partition (given as its topic) in a group, and its fencing counter. */
export const leaseKeysOf = (prefix: string, partition: string, group: string): [lease: string, fence: string] => {
  const key = keyOf(prefix, partition)
  return [leaseKeyOf(key, group), `${key}:fence:${group}`]
}

/** A lease's holder and fencing token from its value (`<member>|<token>`); undefined for none. */
export const holderOf = (value: unknown): { readonly member: string; readonly fence: number } | undefined => {
  if (typeof value !== "string" && !Buffer.isBuffer(value)) return undefined
  const text = value.toString()
  const split = text.lastIndexOf("|")
  return split === -1 ? undefined : { member: text.slice(0, split), fence: Number(text.slice(split + 1)) }
}

/**
 * Renews a membership and lists the live members. KEYS[1] the members set; ARGV[1] the member, ARGV[2] for how long
 * (ms; 0 leaves). Reply: the live members, sorted by name.
 */
export const heartbeat = script<[members: string], [member: string, ttl: number], Array<string>>()(
  "PartitionedTopics.heartbeat",
  `local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if tonumber(ARGV[2]) > 0 then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[2]), 1000) * 10)
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
table.sort(members)
return members`
)

/**
 * Takes a partition's lease when nobody holds it. KEYS[1] the lease, KEYS[2] its fencing counter; ARGV[1] the member,
 * ARGV[2] the lease time (ms). Reply: the new fencing token, or 0 when someone holds it.
 */
export const acquire = script<[lease: string, fence: string], [member: string, ttl: number], number>()(
  "PartitionedTopics.acquire",
  `if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
return token`
)

/**
 * Renews a lease while it is still the caller's (ARGV[1] `<member>|<token>`, ARGV[2] the lease time in ms), or
 * releases it (ARGV[2] 0). KEYS[1] the lease. Reply: 1 when it was the caller's, else 0.
 */
export const renew = script<[lease: string], [holder: string, ttl: number], number>()(
  "PartitionedTopics.renew",
  `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) else redis.call('DEL', KEYS[1]) end
return 1`
)

/** The partitions of `count` that go to `member` among the live `members` (sorted): every M-th, from its place. */
export const assigned = (member: string, members: ReadonlyArray<string>, count: number): ReadonlyArray<number> => {
  const place = members.indexOf(member)
  if (place === -1) return []
  const result: Array<number> = []
  for (let i = place; i < count; i += members.length) result.push(i)
  return result
}
