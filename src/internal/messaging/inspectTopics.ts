/**
 * The topics of `Publisher` / `Subscriber` under a key prefix: found by SCAN (`{prefix}{T}` and `{prefix}{T}:dead`,
 * type stream), then described in two pipelined round trips per node: the stream's length, its groups (`XINFO
 * GROUPS`) and its dead letters' count; then, per group, its consumers (`XINFO CONSUMERS`), its oldest pending
 * entry (`XPENDING … - + 1`: id, consumer, idle time, deliveries), its oldest unread entry (its lag in time) and its
 * messages waiting for a redelivery (the retry set's size and first score), and, for a partition of a partitioned
 * topic, the member holding the group's lease on it.
 *
 * A topic found only through its dead-letter stream is listed when the topic's own stream is gone; otherwise it is
 * listed once, from its own stream.
 *
 * @internal
 */
import { Effect } from "effect"
import type { InspectedConsumer, InspectedGroup, InspectedTopic, OldestPending } from "../../Inspector.js"
import type * as RedisClient from "../../RedisClient.js"
import type { RedisError } from "../../RedisError.js"
import { deadSuffix, deadTopicOf, idTime, keyOf, retryKeyOf } from "./wire.js"
import { holderOf, leaseKeyOf } from "./partitions/leases.js"
import { globLiteral, nullableNumberOf, numberOf, regexLiteral, replyOf, rowsOf, textOf } from "../replies.js"

/** The `SCAN MATCH` pattern of topic streams and their dead letters under `prefix`. */
export const topicPattern = (prefix: string): string => `${globLiteral(prefix)}{*}*`

/** The topic of a scanned key, and whether the key is the topic's dead-letter stream; undefined for other keys. */
export const topicOfKey = (prefix: string) => {
  const pattern = new RegExp(`^${regexLiteral(prefix)}\\{(.+)\\}((?:${deadSuffix})*)$`, "s")
  return (key: string): { readonly topic: string; readonly dead: boolean } | undefined => {
    const match = pattern.exec(key)
    if (match === null) return undefined
    // `{T}:dead…:dead`: the dead letters of the topic named by the key less its last `:dead`
    const suffix = match[2] as string
    const dead = suffix !== ""
    return { topic: `${match[1] as string}${dead ? suffix.slice(deadSuffix.length) : ""}`, dead }
  }
}

/** Describes `topics` (their streams need not exist): length, groups with consumers and oldest pending, dead letters. */
export const describeTopics = (
  redis: RedisClient.Service,
  prefix: string,
  topics: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<InspectedTopic>, RedisError> =>
  Effect.gen(function* () {
    const keys = topics.map((topic) => ({ key: keyOf(prefix, topic), deadKey: keyOf(prefix, deadTopicOf(topic)) }))
    // round trip 1: XLEN, XINFO GROUPS, XLEN of the dead letters, per topic
    const first = yield* redis.pipeline(
      keys.flatMap(({ key, deadKey }) => [
        { name: "XLEN", args: [key], key },
        { name: "XINFO", args: ["GROUPS", key], key },
        { name: "XLEN", args: [deadKey], key: deadKey }
      ])
    )
    const perTopic = yield* Effect.forEach(topics, (topic, i) =>
      Effect.gen(function* () {
        const { key, deadKey } = keys[i] as { key: string; deadKey: string }
        const length = yield* replyOf(first[3 * i])
        const groups = yield* replyOf(first[3 * i + 1])
        const dead = yield* replyOf(first[3 * i + 2])
        return {
          topic,
          key,
          deadKey,
          // XINFO GROUPS fails on a missing stream only (an existing one without groups answers [])
          exists: groups !== undefined,
          length: numberOf(length),
          groups: rowsOf(groups),
          deadLetters: numberOf(dead)
        }
      })
    )
    // round trip 2, per group: XINFO CONSUMERS, the oldest pending entry, the oldest unread one, the retries waiting
    const groupRows = perTopic.flatMap((t) => t.groups.map((row) => ({ key: t.key, row })))
    const perGroup = 6
    const second = yield* redis.pipeline(
      groupRows.flatMap(({ key, row }) => {
        const group = textOf(row.get("name"))
        const retries = retryKeyOf(key, group)
        const lease = leaseKeyOf(key, group)
        return [
          { name: "GET", args: [lease], key: lease },
          { name: "XINFO", args: ["CONSUMERS", key, group], key },
          { name: "XPENDING", args: [key, group, "-", "+", 1], key },
          { name: "XRANGE", args: [key, `(${textOf(row.get("last-delivered-id"), "0-0")}`, "+", "COUNT", 1], key },
          { name: "ZCARD", args: [retries], key: retries },
          { name: "ZRANGE", args: [retries, "0", "0", "WITHSCORES"], key: retries }
        ]
      })
    )
    const now = Date.now()
    let g = 0
    return yield* Effect.forEach(perTopic, (t) =>
      Effect.map(
        Effect.forEach(t.groups, (row) =>
          Effect.gen(function* () {
            const at = perGroup * g++
            const [lease, consumers, oldest, unread, retrying, nextRetry] = yield* Effect.forEach(
              second.slice(at, at + perGroup),
              replyOf
            )
            const firstUnread = Array.isArray(unread) && Array.isArray(unread[0]) ? textOf(unread[0][0]) : undefined
            const nextDue = Array.isArray(nextRetry) && nextRetry.length === 2 ? Number(textOf(nextRetry[1])) : null
            return {
              ...groupOf(row, rowsOf(consumers), oldestOf(oldest, now)),
              oldestUnreadAgeMs: firstUnread === undefined ? null : Math.max(0, now - idTime(firstUnread)),
              retrying: { count: numberOf(retrying), nextDueAt: nextDue },
              owner: holderOf(lease) ?? null
            }
          })
        ),
        (groups): InspectedTopic => ({
          topic: t.topic,
          key: t.key,
          exists: t.exists,
          length: t.length,
          groups,
          deadLetters: t.deadLetters,
          deadLetterKey: t.deadKey
        })
      )
    )
  })

const groupOf = (
  row: Map<string, unknown>,
  consumers: ReadonlyArray<Map<string, unknown>>,
  oldestPending: OldestPending | null
): Omit<InspectedGroup, "oldestUnreadAgeMs" | "retrying" | "owner"> => ({
  name: textOf(row.get("name")),
  pending: numberOf(row.get("pending")),
  lag: nullableNumberOf(row.get("lag")),
  lastDeliveredId: textOf(row.get("last-delivered-id"), "0-0"),
  entriesRead: nullableNumberOf(row.get("entries-read")),
  consumers: consumers.map((c): InspectedConsumer => ({
    name: textOf(c.get("name")),
    pending: numberOf(c.get("pending")),
    idleMs: numberOf(c.get("idle")),
    inactiveMs: nullableNumberOf(c.get("inactive"))
  })),
  oldestPending
})

/** The first row of `XPENDING key group - + 1`: `[id, consumer, idle ms, deliveries]`. */
const oldestOf = (reply: unknown, now: number): OldestPending | null => {
  const row = Array.isArray(reply) ? (reply[0] as unknown) : undefined
  if (!Array.isArray(row)) return null
  const id = textOf(row[0])
  return {
    id,
    consumer: textOf(row[1]),
    ageMs: Math.max(0, now - idTime(id)),
    idleMs: numberOf(row[2]),
    deliveries: numberOf(row[3])
  }
}

/** One page of topics: scanned, then described; sorted by name. */
export const listTopics = (
  redis: RedisClient.Service,
  prefix: string,
  scan: Omit<RedisClient.ScanOptions, "match" | "type">,
  cursor: string | undefined
): Effect.Effect<{ readonly topics: ReadonlyArray<InspectedTopic>; readonly cursor: string | null }, RedisError> =>
  Effect.gen(function* () {
    const page = yield* redis.scan({ ...scan, match: topicPattern(prefix), type: "stream" }, cursor)
    const parse = topicOfKey(prefix)
    const own = new Set<string>()
    const viaDead = new Set<string>()
    for (const key of page.keys) {
      const found = parse(key)
      if (found === undefined) continue
      if (found.dead) viaDead.add(found.topic)
      else own.add(found.topic)
    }
    const names = [...own, ...[...viaDead].filter((topic) => !own.has(topic))].sort()
    const described = yield* describeTopics(redis, prefix, names)
    // a topic seen through its dead letters whose own stream exists is listed from its own stream, except a topic
    // named `…:dead` (its own stream is another topic's dead letters, never scanned as a topic of its own)
    const topics = described.filter(
      (topic) => own.has(topic.topic) || !topic.exists || topic.topic.endsWith(deadSuffix)
    )
    return { topics, cursor: page.cursor }
  })
