/**
 * The active run of a key (a chat id, say): at most one running run per key and stream. Starting a run for a key
 * claims it atomically (SET unless another run holds it); a holder found finished, lost or gone is replaced; the
 * run's end clears it (only if it still holds it). The key also expires after the longest a run can live, so a
 * producer that died leaves nothing behind for long, and `current` never answers with a run that is not running.
 *
 * @internal
 */
import { Duration, Effect } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import type { ResumableStreamError } from "../../ResumableStreamError.js"
import { fail, fromRedis } from "./error.js"
import { activeKey } from "./keys.js"
import * as Scripts from "./scripts.js"

/** What the index needs: the client, the key prefix, how long a claim lasts, and a run's liveness. */
export interface ActiveIndexOptions {
  readonly redis: RedisClient.Service
  readonly prefix: string
  /** How long a claim lasts at most (a run's longest life). */
  readonly hold: Duration.Duration
  /** Whether run `runId` of stream `name` is running with a live producer. */
  readonly isRunning: (name: string, runId: string) => Effect.Effect<boolean, ResumableStreamError>
}

/** The index of active runs. */
export interface ActiveIndex {
  /** Makes `runId` the active run of `key`; fails `AlreadyRunning` (naming the holder) when a running run holds it. */
  readonly claim: (name: string, key: string, runId: string) => Effect.Effect<void, ResumableStreamError>
  /** Clears the key if `runId` still holds it. */
  readonly release: (name: string, key: string, runId: string) => Effect.Effect<void, ResumableStreamError>
  /** The run id of the key's running run, if any. */
  readonly current: (name: string, key: string) => Effect.Effect<string | undefined, ResumableStreamError>
}

/** Makes the index. */
export const make = (options: ActiveIndexOptions): ActiveIndex => {
  const { redis, prefix } = options
  const holdMs = Math.max(1, Math.round(Duration.toMillis(options.hold)))

  const claim = (name: string, key: string, runId: string) =>
    Effect.gen(function* () {
      const active = activeKey(prefix, name, key)
      let replaces = ""
      // a finished holder is replaced; a new holder that won a race meanwhile is judged again (twice at most)
      for (let attempt = 0; attempt < 3; attempt++) {
        const holder = yield* redis
          .eval(Scripts.claimActive, [active], [runId, holdMs, replaces])
          .pipe(Effect.mapError(fromRedis(runId)))
        if (holder === null) return
        if (yield* options.isRunning(name, holder)) {
          return yield* fail("AlreadyRunning", `run ${holder} is still running for key "${key}"`, holder)
        }
        replaces = holder
      }
      return yield* fail("AlreadyRunning", `runs for key "${key}" keep starting concurrently`, runId)
    })

  const release = (name: string, key: string, runId: string) =>
    redis
      .eval(Scripts.releaseActive, [activeKey(prefix, name, key)], [runId])
      .pipe(Effect.mapError(fromRedis(runId)), Effect.asVoid)

  const current = (name: string, key: string) =>
    Effect.gen(function* () {
      const holder = yield* redis
        .use("get", (client) => client.get(activeKey(prefix, name, key)))
        .pipe(Effect.mapError(fromRedis()))
      if (holder === null) return undefined
      return (yield* options.isRunning(name, holder)) ? holder : undefined
    })

  return { claim, release, current }
}
