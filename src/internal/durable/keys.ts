/**
 * Key layout of a durable stream named `name` (its URL path under the routes' base), all under one hash tag so that
 * every script of a stream runs on one Cluster node:
 *
 * - `{prefix}{name}:meta`       hash: content type, TTL/expiry, tail, closure, `Stream-Seq`, fork links
 * - `{prefix}{name}:data`       the Redis stream of entries (entry `p-0` ends at position `p`)
 * - `{prefix}{name}:producers`  hash: producer id → `epoch seq`
 * - `{prefix}{name}:forks`      hash: name of each fork referencing it → when it took the reference (ms)
 * - `{prefix}{name}:wake`       pub/sub channel announcing each new tail (and deletion)
 *
 * @internal
 */

/** The keys of one stream, in the order the scripts take them, and its channel. */
export interface StreamKeys {
  readonly keys: [meta: string, data: string, producers: string, forks: string]
  readonly channel: string
}

/** The keys of stream `name` under `prefix`. */
export const streamKeys = (prefix: string, name: string): StreamKeys => {
  const base = `${prefix}{${name}}`
  return {
    keys: [`${base}:meta`, `${base}:data`, `${base}:producers`, `${base}:forks`],
    channel: `${base}:wake`
  }
}
