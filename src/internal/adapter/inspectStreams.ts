/**
 * The live-state streams of `StreamAdapter` under a key prefix: found by SCAN (each stream's set of groups,
 * `{prefix}{S}:groups`, type set), then, per stream, its group count (`SCARD`) and its first groups (one `SSCAN`
 * call); per group shown, its item count (`HLEN` of the items hash) and version (from its meta hash). Two pipelined
 * round trips per node.
 *
 * @internal
 */
import { Effect } from "effect"
import type { InspectedAdapterGroup, InspectedAdapterStream } from "../../Inspector.js"
import type * as RedisClient from "../../RedisClient.js"
import type { RedisError } from "../../RedisError.js"
import { groupKeys } from "./keys.js"
import { globLiteral, numberOf, regexLiteral, replyOf, textOf } from "../replies.js"

/** The `SCAN MATCH` pattern of the streams' group sets under `prefix`. */
export const adapterPattern = (prefix: string): string => `${globLiteral(prefix)}{*}:groups`

/** The stream name of a scanned group-set key; undefined for other keys. */
export const streamOfKey = (prefix: string) => {
  const pattern = new RegExp(`^${regexLiteral(prefix)}\\{([A-Za-z0-9_.:-]+)\\}:groups$`)
  return (key: string): string | undefined => pattern.exec(key)?.[1]
}

/** One page of live-state streams, each with at most about `maxGroups` of its groups described. */
export const listAdapterStreams = (
  redis: RedisClient.Service,
  prefix: string,
  scan: Omit<RedisClient.ScanOptions, "match" | "type">,
  cursor: string | undefined,
  maxGroups: number
): Effect.Effect<
  { readonly streams: ReadonlyArray<InspectedAdapterStream>; readonly cursor: string | null },
  RedisError
> =>
  Effect.gen(function* () {
    const page = yield* redis.scan({ ...scan, match: adapterPattern(prefix), type: "set" }, cursor)
    const parse = streamOfKey(prefix)
    const found = page.keys.flatMap((key) => {
      const stream = parse(key)
      return stream === undefined ? [] : [{ stream, key }]
    })
    found.sort((a, b) => a.stream.localeCompare(b.stream))
    const first = yield* redis.pipeline(
      found.flatMap(({ key }) => [
        { name: "SCARD", args: [key], key },
        { name: "SSCAN", args: [key, 0, "COUNT", maxGroups], key }
      ])
    )
    const streams = yield* Effect.forEach(found, ({ stream }, i) =>
      Effect.gen(function* () {
        const count = numberOf(yield* replyOf(first[2 * i]))
        const scanned = (yield* replyOf(first[2 * i + 1])) as [unknown, ReadonlyArray<unknown>] | undefined
        const groupIds = (scanned?.[1] ?? [])
          .map((id) => textOf(id))
          .sort()
          .slice(0, maxGroups)
        return { stream, count, groupIds }
      })
    )
    const keysOfGroups = streams.flatMap(({ stream, groupIds }) => groupIds.map((id) => groupKeys(prefix, stream, id)))
    const second = yield* redis.pipeline(
      keysOfGroups.flatMap((keys) => [
        { name: "HLEN", args: [keys.items], key: keys.items },
        { name: "HGET", args: [keys.meta, "version"], key: keys.meta }
      ])
    )
    let g = 0
    const described = yield* Effect.forEach(streams, ({ stream, count, groupIds }) =>
      Effect.map(
        Effect.forEach(groupIds, (groupId) =>
          Effect.gen(function* () {
            const index = g++
            const items = yield* replyOf(second[2 * index])
            const version = yield* replyOf(second[2 * index + 1])
            return { groupId, items: numberOf(items), version: numberOf(version) } satisfies InspectedAdapterGroup
          })
        ),
        (groups): InspectedAdapterStream => ({ stream, groupCount: count, groups })
      )
    )
    return { streams: described, cursor: page.cursor }
  })
