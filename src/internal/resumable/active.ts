/**
 * The active run of a key (a chat id, say): at most one running run per key and stream. Starting a run for a key
 * claims it atomically (SET unless another run holds it); a holder found finished, lost or gone is replaced; the
 * run's end clears it (only if it still holds it). A producer that died leaves the key to its run (now `lost`), until
 * a new run replaces it or it expires (after the longest a run can live).
 *
 * @internal
 */
import { Duration, Effect } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import type { RunState } from "../../ResumableStream.js"
import type { ResumableStreamError } from "../../ResumableStreamError.js"
import { fail, fromRedis } from "./error.js"
import { activeKey } from "./keys.js"
import * as Scripts from "./scripts.js"
import * as Reasons from "../../ResumableStreamError.js"

/** What the index needs: the client, the key prefix, how long a claim lasts, and a run's liveness. */
export interface ActiveIndexOptions {
  readonly redis: RedisClient.Service
  readonly prefix: string
  /** How long a claim lasts at most (a run's longest life). */
  readonly hold: Duration.Duration
  /** Where run `runId` of stream `name` is (undefined: its data is gone). */
  readonly stateOf: (name: string, runId: string) => Effect.Effect<RunState | undefined, ResumableStreamError>
}

/** The index of active runs. */
export interface ActiveIndex {
  /** Makes `runId` the active run of `key`; fails `AlreadyRunning` (naming the holder) when a running run holds it. */
  readonly claim: (name: string, key: string, runId: string) => Effect.Effect<void, ResumableStreamError>
  /** Clears the key if `runId` still holds it. */
  readonly release: (name: string, key: string, runId: string) => Effect.Effect<void, ResumableStreamError>
  /** The run holding the key and where it is, if any (and its data is still there). */
  readonly current: (
    name: string,
    key: string
  ) => Effect.Effect<{ readonly runId: string; readonly state: RunState } | undefined, ResumableStreamError>
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
        if ((yield* options.stateOf(name, holder)) === "running") {
          return yield* fail(Reasons.AlreadyRunning, `run ${holder} is still running for key "${key}"`, holder)
        }
        replaces = holder
      }
      return yield* fail(Reasons.AlreadyRunning, `runs for key "${key}" keep starting concurrently`, runId)
    })

  const release = (name: string, key: string, runId: string) =>
    redis
      .eval(Scripts.releaseActive, [activeKey(prefix, name, key)], [runId])
      .pipe(Effect.mapError(fromRedis(runId)), Effect.asVoid)

  const current = (name: string, key: string) =>
    Effect.gen(function* () {
      const holder = yield* redis
        .send<string | null>("GET", activeKey(prefix, name, key))
        .pipe(Effect.mapError(fromRedis()))
      if (holder === null) return undefined
      const state = yield* options.stateOf(name, holder)
      return state === undefined ? undefined : { runId: holder, state }
    })

  return { claim, release, current }
}
