/**
 * Transactions across subjects, KRules' WATCH/MULTI/EXEC algorithm with a `Schedule` in place of its tight loop: on
 * a dedicated connection, WATCH the subjects' hashes and read them (fields and expiry); the caller's function reads
 * that snapshot and stages writes; MULTI/EXEC commits the staged writes, their change events and expiries at once.
 * Redis refuses the EXEC (nil reply) when a watched hash changed after the WATCH: the attempt then runs again from a
 * fresh snapshot, after the schedule's delay. So nothing is written, nor announced, for an attempt that lost.
 *
 * The connection goes back to the pool clean: an attempt ends with EXEC (which drops the watches) or UNWATCH (the
 * function failed, or staged nothing); a failed Redis call, or an interruption, closes it instead.
 *
 * @internal
 */
import { Duration, Effect, Exit, Option, Result, Schedule, Scope } from "effect"
import * as RedisClient from "../../RedisClient.js"
import type { Transacted } from "../../SubjectStorage.js"
import { OutcomeUnknown, type RedisError } from "../../RedisError.js"
import { redisError } from "../reasons.js"
import * as KeyedLocks from "../keyedLocks.js"
import * as Outage from "../outage.js"
import { fail, fromRedis } from "./error.js"
import { type SubjectStorageError } from "../../SubjectStorageError.js"
import { decodeStoredOption, encodeStored, type PropertyRef } from "./property.js"
import { recordOf } from "./record.js"
import * as Reasons from "../../SubjectStorageError.js"

/** Reads and staged writes of one attempt, on property references. */
export interface Staging {
  /** The property's value: the staged one if this attempt wrote it, else the snapshot's. */
  readonly get: <A>(subject: string, ref: PropertyRef<A>) => Effect.Effect<Option.Option<A>, SubjectStorageError>
  /** Stages a value (encoded now: one that cannot be stored fails here). */
  readonly set: <A>(subject: string, ref: PropertyRef<A>, value: A) => Effect.Effect<void, SubjectStorageError>
  /** Stages a deletion; false when the property is not set. */
  readonly delete: (subject: string, ref: PropertyRef<any>) => Effect.Effect<boolean, SubjectStorageError>
  /** Stages the deletion of the whole subject; false when it has no property. */
  readonly flush: (subject: string) => Effect.Effect<boolean, SubjectStorageError>
}

/** What transactions need. */
export interface TransactionOptions {
  readonly redis: RedisClient.Service
  /** Change channel; empty for no change events. */
  readonly channel: string
  readonly keyOf: (subject: string) => string
  /** The key of a subject's property deadlines (in its slot): a deletion drops the property's, a flush all. */
  readonly deadlinesOf: (subject: string) => string
  /** Expiry in milliseconds and whether every write sets it anew. */
  readonly expiry: { readonly ms: number; readonly refresh: boolean } | undefined
  /** How long the transaction is retried through an outage before its commit was sent. */
  readonly outageTimeout: Duration.Duration
  /** Called for each attempt that lost to another writer. */
  readonly onConflict: () => void
}

/** One subject as an attempt sees it: the snapshot read after WATCH and what the attempt staged. */
interface SubjectState {
  readonly key: string
  readonly stored: Readonly<Record<string, string>>
  /** PTTL at the snapshot: -1 no expiry, -2 no such key. */
  readonly ttl: number
  /** The whole subject is deleted before the staged fields are written. */
  flushed: boolean
  /** Staged fields: JSON to write, or null to delete. */
  readonly staged: Map<string, string | null>
}

/** A failed Redis call of the transaction itself (as opposed to a failure of the caller's function). */
class CallFailed {
  readonly _tag = "CallFailed"
  constructor(readonly cause: RedisError | OutcomeUnknown) {}
}

/** Runs `f` in a transaction over `subjects` (see the module). */
export type Run = <A, E, R>(
  subjects: ReadonlyArray<string>,
  f: (staging: Staging) => Effect.Effect<A, E, R>,
  retry: Schedule.Schedule<unknown, SubjectStorageError>
) => Effect.Effect<Transacted<A>, E | SubjectStorageError, R>

/** The current JSON of `field` in an attempt: staged, else stored unless the subject was flushed. */
const currentOf = (state: SubjectState, field: string): string | undefined =>
  state.staged.has(field) ? (state.staged.get(field) ?? undefined) : state.flushed ? undefined : state.stored[field]

/** What an attempt reads and stages, on its snapshot of `states`. */
const staging = (states: ReadonlyMap<string, SubjectState>): Staging => {
  const stateOf = (subject: string) => {
    const state = states.get(subject)
    return state !== undefined
      ? Effect.succeed(state)
      : Effect.fail(
          fail(
            Reasons.NotWatched,
            `subject ${subject} is not one of the transaction's subjects (${Array.from(states.keys()).join(", ")})`,
            subject
          )
        )
  }
  return {
    get: (subject, ref) =>
      Effect.flatMap(stateOf(subject), (state) =>
        Effect.fromResult(decodeStoredOption(subject, ref, currentOf(state, ref.field)))
      ),
    set: (subject, ref, value) =>
      Effect.flatMap(stateOf(subject), (state) =>
        Effect.map(Effect.fromResult(encodeStored(subject, ref, value)), (json) => {
          state.staged.set(ref.field, json)
        })
      ),
    delete: (subject, ref) =>
      Effect.map(stateOf(subject), (state) => {
        const existed = currentOf(state, ref.field) !== undefined
        state.staged.set(ref.field, null)
        return existed
      }),
    flush: (subject) =>
      Effect.map(stateOf(subject), (state) => {
        const existed =
          Array.from(state.staged.values()).some((json) => json !== null) ||
          (!state.flushed && Object.keys(state.stored).length > 0)
        state.flushed = true
        state.staged.clear()
        return existed
      })
  }
}

/** One subject's staged writes, events and expiry as commands (appended to `commands`); how many properties. */
const writesOf = (
  options: TransactionOptions,
  commands: Array<RedisClient.Command>,
  subject: string,
  state: SubjectState
) => {
  const existed = Object.keys(state.stored).length > 0
  const deletesSubject = state.flushed && existed
  const old = (field: string) => (state.flushed ? undefined : state.stored[field])
  const sets: Array<string> = []
  const deletes: Array<string> = []
  const changes: Array<{ field: string; value?: string | undefined; old?: string | undefined }> = []
  for (const [field, json] of state.staged) {
    if (json !== null) {
      sets.push(field, json)
      changes.push({ field, value: json, old: old(field) })
    } else if (old(field) !== undefined) {
      deletes.push(field)
      changes.push({ field, old: old(field) })
    }
  }
  const key = state.key
  const deadlines = options.deadlinesOf(subject)
  const command = (name: string, ...args: ReadonlyArray<string | number>) => commands.push({ name, args, key })
  if (deletesSubject) command("DEL", key, deadlines)
  if (sets.length > 0) command("HSET", key, ...sets)
  if (deletes.length > 0) {
    command("HDEL", key, ...deletes)
    command("ZREM", deadlines, ...deletes)
  }
  if (options.channel !== "") {
    if (deletesSubject) command("PUBLISH", options.channel, JSON.stringify({ subject, deleted: true }))
    if (changes.length > 0) command("PUBLISH", options.channel, JSON.stringify({ subject, changes }))
  }
  const { expiry } = options
  if (expiry !== undefined && sets.length > 0 && (expiry.refresh || state.ttl < 0 || state.flushed)) {
    command("PEXPIRE", key, expiry.ms)
  }
  return changes.length
}

/** Makes the transaction runner. */
export const make = (options: TransactionOptions): Run => {
  const { redis, keyOf } = options
  const withLocks = KeyedLocks.make()

  return (subjects, f, retry) =>
    Effect.suspend(() => {
      const distinct = Array.from(new Set(subjects))
      const label = distinct.join(", ")
      const keys = distinct.map(keyOf)
      if (keys.length === 0) {
        return Effect.fail(fail(Reasons.NotWatched, "a transaction needs at least one subject", label))
      }
      let attempts = 0
      /** An EXEC was sent and its reply is awaited: a transaction given up now may have been applied. */
      let execPending = false
      /** The error of the last attempt that lost to another writer: retried, and the failure once retries ran out. */
      let conflict: SubjectStorageError | undefined

      /** One transaction in a watch session: attempts until one commits, or the schedule gives up. */
      const onSession = (session: RedisClient.WatchSession) => {
        /** WATCH and the read of every subject, in one round trip. */
        const snapshot = Effect.gen(function* () {
          const replies = yield* session
            .read(
              keys.flatMap((key) => [
                { name: "HGETALL", args: [key], key },
                { name: "PTTL", args: [key], key }
              ])
            )
            .pipe(Effect.mapError((error) => new CallFailed(error)))
          const states = new Map<string, SubjectState>()
          for (const [index, subject] of distinct.entries()) {
            states.set(subject, {
              key: keys[index] as string,
              stored: recordOf(replies[2 * index] as ReadonlyArray<string>),
              ttl: replies[2 * index + 1] as number,
              flushed: false,
              staged: new Map()
            })
          }
          return states
        })

        const commit = (states: ReadonlyMap<string, SubjectState>) =>
          Effect.gen(function* () {
            const commands: Array<RedisClient.Command> = []
            let written = 0
            for (const [subject, state] of states) written += writesOf(options, commands, subject, state)
            execPending = true
            const replies = yield* session.commit(commands).pipe(
              Effect.mapError((error) => new CallFailed(error)),
              Effect.ensuring(Effect.sync(() => (execPending = false)))
            )
            if (Option.isNone(replies)) {
              options.onConflict()
              conflict = fail(
                Reasons.Conflict,
                `subjects ${label} kept changing under concurrent writers (${attempts} attempts)`,
                label
              )
              return yield* Effect.fail(conflict)
            }
            // a command refused inside EXEC (the others were applied: Redis does not roll back)
            const failed = replies.value.find(Result.isFailure)
            if (failed !== undefined) return yield* Effect.fail(new CallFailed(failed.failure))
            return written
          })

        const attempt = Effect.gen(function* () {
          attempts++
          const states = yield* snapshot
          const outcome = yield* Effect.exit(f(staging(states)))
          if (Exit.isFailure(outcome)) {
            yield* session.unwatch
            return yield* Effect.failCause(outcome.cause)
          }
          const writes = Array.from(states.values()).some((state) => state.flushed || state.staged.size > 0)
          if (!writes) {
            yield* session.unwatch
            return { value: outcome.value, attempts, written: 0 }
          }
          const written = yield* commit(states)
          return { value: outcome.value, attempts, written }
        })

        // only a lost attempt is retried: any other failure is settled as the outcome
        const settled = attempt.pipe(
          Effect.map(Exit.succeed),
          Effect.catch((error) =>
            error === conflict && conflict !== undefined ? Effect.fail(conflict) : Effect.succeed(Exit.fail(error))
          )
        )
        return Effect.flatten(Effect.retry(settled, retry))
      }

      // the connection goes back to the pool after any exit of `onSession` (it ends each attempt clean; a failed
      // call has closed it), except an interruption, which ends the pool's scope with a failure, so the pool closes it
      // (the attempt may be between WATCH and EXEC). A failed call is retried on a new connection through an outage,
      // unless its outcome is unknown. Subjects of several Cluster slots fail before anything is sent.
      const transaction = Effect.scopedWith((scope) =>
        Effect.flatMap(
          Scope.provide(scope)(redis.watching(keys)).pipe(
            Effect.mapError((error) =>
              error.reason._tag === "CrossSlot"
                ? fail(
                    Reasons.CrossSlot,
                    `subjects ${label} live in different Cluster slots, and a transaction needs one: name them with a shared hash tag (SubjectStorage.tagged)`,
                    label
                  )
                : new CallFailed(error)
            )
          ),
          (session) => Effect.exit(onSession(session))
        )
      ).pipe(
        Effect.flatten,
        Effect.retry({
          schedule: Schedule.upTo(Outage.backoff, { duration: options.outageTimeout }),
          while: (error) => error instanceof CallFailed && error.cause.isRetryable
        }),
        // the whole transaction, connection included, ends within outageTimeout
        Effect.timeoutOrElse({
          duration: options.outageTimeout,
          orElse: () => {
            const timedOut = redisError(
              "transaction",
              "Timeout",
              `no commit within ${Duration.format(options.outageTimeout)} (outageTimeout)`
            )
            return Effect.fail(new CallFailed(execPending ? new OutcomeUnknown({ cause: timedOut }) : timedOut))
          }
        }),
        Effect.mapError((error) => (error instanceof CallFailed ? fromRedis(label)(error.cause) : error))
      )
      // this process's transactions over the same subjects wait for each other rather than conflict in Redis
      return withLocks(keys, transaction)
    })
}
