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

const safeName = /^[A-Za-z0-9_.:-]{1,200}$/
const safeRunId = /^[A-Za-z0-9_-]{1,128}$/

/** True for a stream name (storage id) or prefix part that cannot break the key layout (no braces, no spaces). */
export const isSafeName = (name: string): boolean => safeName.test(name)

/** True for a run id that can be used in a key (UUIDs and other URL-safe ids up to 128 characters). */
export const isSafeRunId = (runId: string): boolean => safeRunId.test(runId)

/** The keys of run `runId` of stream `storageId` under `prefix`. */
export const runKeys = (prefix: string, storageId: string, runId: string): RunKeys => {
  const stream = `${prefix}${storageId}:{${runId}}`
  return { stream, meta: `${stream}:meta`, channel: `${stream}:live` }
}
