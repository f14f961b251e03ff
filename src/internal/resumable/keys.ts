/**
 * Key layout of a resumable run, following River's `{keyPrefix}{storageId}:{runId}` with the run id as a hash tag,
 * so that a run's stream, its meta hash and its channel share one cluster slot:
 *
 * - `{prefix}{storageId}:{runId}`       the Redis Stream of chunks and the terminal marker
 * - `{prefix}{storageId}:{runId}:meta`  hash: status, generation, producer, heartbeat, chunks, createdAt
 * - `{prefix}{storageId}:{runId}:live`  pub/sub channel on which every append is announced
 *
 * @internal
 */

/** The keys of one run. */
export interface RunKeys {
  readonly stream: string
  readonly meta: string
  readonly channel: string
}

/** The keys of run `runId` of stream `storageId` under `prefix`. */
export const runKeys = (prefix: string, storageId: string, runId: string): RunKeys => {
  const stream = `${prefix}${storageId}:{${runId}}`
  return { stream, meta: `${stream}:meta`, channel: `${stream}:live` }
}

/**
 * The key naming the active run of `key` (a chat id, say) of stream `storageId`: `{prefix}{storageId}:active:{key}`,
 * holding the run id while it runs (`key` percent-encoded, in braces: a slot of its own, whatever it contains).
 */
export const activeKey = (prefix: string, storageId: string, key: string): string =>
  `${prefix}${storageId}:active:{${encodeURIComponent(key)}}`
