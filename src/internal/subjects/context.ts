/**
 * What every part of subject storage shares: its options, the keys of a subject (its hash, the deadlines of its
 * expiring properties in the same slot, the index of subjects with expiring properties), the idempotent run of a
 * subject script, the raw read of one field, and the count of compare-and-set attempts that lost to another writer.
 *
 * @internal
 */
import { Duration, Effect, Schedule, type Scope } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import type * as RedisScript from "../../RedisScript.js"
import type { SubjectStorageError } from "../../SubjectStorageError.js"
import * as Expiring from "../expiry.js"
import * as Outage from "../outage.js"
import { slotOf, slotTag } from "../slot.js"
import { fromRedis } from "./error.js"

/** What the core needs. */
export interface CoreOptions {
  readonly redis: RedisClient.Service
  readonly keyPrefix: string
  /** Change channel; empty for no change events. */
  readonly channel: string
  /** Retries of a compare-and-set that lost to another writer. */
  readonly retry: Schedule.Schedule<unknown, SubjectStorageError>
  /** How long a write is retried (idempotently) through an outage. */
  readonly outageTimeout: Duration.Duration
  /** Where the fibers that write combined requests live. */
  readonly scope: Scope.Scope
  /** Expiry of every subject written, if any, and whether each write sets it anew. */
  readonly expiry: Expiry | undefined
}

/** A subject's time to live: set by every write (`refresh`), or only when the subject has none yet. */
export interface Expiry {
  readonly ttl: Duration.Duration
  readonly refresh: boolean
}

/** An expiry's time to live in whole milliseconds (at least 1). */
export const expiryMillis = (expiry: Expiry): number => Math.max(1, Math.round(Duration.toMillis(expiry.ttl)))

/** The expiry argument of the scripts: empty for none, else `<ms>:1|0`. */
const expirySpec = (expiry: Expiry | undefined): string =>
  expiry === undefined ? "" : `${expiryMillis(expiry)}:${expiry.refresh ? 1 : 0}`

/** The shared parts of subject storage. */
export interface SubjectContext {
  readonly options: CoreOptions
  readonly redis: RedisClient.Service
  /** Change channel; empty for no change events. */
  readonly channel: string
  /** The expiry argument of the scripts. */
  readonly expiry: string
  /** The key of a subject's hash. */
  readonly keyOf: (subject: string) => string
  /**
   * The deadlines of a subject's properties that expire: a sorted set in the slot of the subject's hash (whose key
   * may have no hash tag of its own), `s-ttl:{<a tag of that slot>}<the subject's key>`.
   */
  readonly deadlinesOf: (subject: string) => string
  /** The index of subjects with properties that expire (subject → a hint of its earliest deadline). */
  readonly expiringIndex: string
  /**
   * Tells the index of expiring subjects of the deadline a write sets (before the write: a crash in between leaves an
   * early hint, never a missed expiry), retried through an outage like the write.
   */
  readonly hint: (subject: string, deadline: number | undefined) => Effect.Effect<void, SubjectStorageError>
  /**
   * Runs a subject script: KEYS = the subject's hash and deadlines, ARGV = channel, subject, expiry, then `args`;
   * applied once however often a lost reply makes it be sent (retried for up to `outageTimeout`).
   */
  readonly runScript: <Args extends ReadonlyArray<string | number>, Reply>(
    subject: string,
    property: string | undefined,
    script: RedisScript.RedisScript<
      [hash: string, deadlines: string],
      readonly [string, string, string, ...Args],
      Reply
    >,
    args: Args
  ) => Effect.Effect<Reply, SubjectStorageError>
  /** The stored JSON of one field of a subject, if any. */
  readonly getRaw: (subject: string, field: string) => Effect.Effect<string | null, SubjectStorageError>
  /** Counts a compare-and-set attempt that another writer won. */
  readonly conflicted: () => void
  /** How many compare-and-set attempts other writers won. */
  readonly conflicts: () => number
}

/** The shared parts of subject storage with `options`. */
export const make = (options: CoreOptions): SubjectContext => {
  const { redis, channel } = options
  const expiry = expirySpec(options.expiry)
  let conflicts = 0
  const keyOf = (subject: string) => `s:${options.keyPrefix}${subject}`
  const deadlinesOf = (subject: string) => {
    const key = keyOf(subject)
    return `s-ttl:{${slotTag(slotOf(key))}}${key}`
  }
  const expiringIndex = `s-expiring:${options.keyPrefix}`
  return {
    options,
    redis,
    channel,
    expiry,
    keyOf,
    deadlinesOf,
    expiringIndex,
    hint: (subject, deadline) =>
      deadline === undefined
        ? Effect.void
        : Outage.retryAfterFailure(Expiring.hint(redis, expiringIndex, subject, deadline), {
            schedule: () => Schedule.upTo(Outage.backoff, { duration: options.outageTimeout }),
            while: (error) => error.isRetryable
          }).pipe(Effect.mapError(fromRedis(subject))),
    runScript: (subject, property, script, args) =>
      redis
        .evalIdempotent(script, [keyOf(subject), deadlinesOf(subject)], [channel, subject, expiry, ...args] as const, {
          retryWithin: options.outageTimeout
        })
        .pipe(Effect.mapError(fromRedis(subject, property))),
    getRaw: (subject, field) =>
      redis.send<string | null>("HGET", keyOf(subject), field).pipe(Effect.mapError(fromRedis(subject))),
    conflicted: () => {
      conflicts++
    },
    conflicts: () => conflicts
  }
}
