/**
 * Mutual exclusion per key within this process, for work on Redis keys that could only conflict with itself (WATCH
 * transactions over the same subjects): while a fiber holds the locks of its keys, this process's other fibers wait
 * for those keys instead of racing to a certain conflict. Several keys are locked in sorted order, so two fibers never
 * wait for each other; a key's entry lives only while a fiber holds or waits for it (memory stays bounded).
 *
 * @internal
 */
import { Effect, Semaphore } from "effect"

interface Entry {
  readonly semaphore: Semaphore.Semaphore
  users: number
}

/** Runs an effect while holding the locks of some keys. */
export type WithLocks = <A, E, R>(keys: ReadonlyArray<string>, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/** A set of per-key locks. */
export const make = (): WithLocks => {
  const entries = new Map<string, Entry>()

  const withLock = <A, E, R>(key: string, effect: Effect.Effect<A, E, R>) =>
    Effect.suspend(() => {
      let entry = entries.get(key)
      if (entry === undefined) {
        entry = { semaphore: Semaphore.makeUnsafe(1), users: 0 }
        entries.set(key, entry)
      }
      const held = entry
      held.users++
      return Semaphore.withPermit(held.semaphore)(effect).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            if (--held.users === 0) entries.delete(key)
          })
        )
      )
    })

  return (keys, effect) =>
    Array.from(new Set(keys))
      .sort()
      .reduceRight((inner, key) => withLock(key, inner), effect)
}
