/**
 * The operations of subject storage on property references (field + codec), shared by the plain-JSON and the
 * Schema-typed APIs. Reads are single commands, except whole-subject reads, which arriving together go as one pipeline
 * (per node); writes are one command or one Lua script (see `scripts.ts`).
 *
 * Atomic read-modify-writes (`update`) and increments are combined per field within this process (group commit):
 * while one write of a field is in flight, later requests for that field queue up; the next write applies them in
 * order, each function seeing the value the previous one produced, and commits the result with one compare-and-set
 * (increments: one atomic add of their sum). Every caller gets its own new and previous value, exactly as if the
 * requests had been committed one by one. Only writers in other processes can make a compare-and-set fail; it is then
 * retried on the `Schedule` from the value the failure returned.
 *
 * @internal
 */
import { Clock, Duration, Effect, Exit, Option, Result, Schedule, type Scope } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import * as Batcher from "../batcher.js"
import * as Combiner from "../combiner.js"
import * as Expiring from "../expiry.js"
import * as Outage from "../outage.js"
import { slotOf, slotTag } from "../slot.js"
import type * as RedisScript from "../../RedisScript.js"
import { fail, fromRedis } from "./error.js"
import { type SubjectStorageError } from "../../SubjectStorageError.js"
import { decodeStored, decodeStoredOption, encodeStored, type PropertyRef } from "./property.js"
import { recordOf } from "./record.js"
import * as Scripts from "./scripts.js"
import * as Transaction from "./transaction.js"
import type { Written } from "../../SubjectStorage.js"
import * as Reasons from "../../SubjectStorageError.js"

/** The fields one `store` writes: `sets` as field/JSON pairs, and the fields to delete. */
export interface FieldChanges {
  readonly sets: ReadonlyArray<string>
  readonly deletes: ReadonlyArray<string>
}

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
const expiryMillis = (expiry: Expiry): number => Math.max(1, Math.round(Duration.toMillis(expiry.ttl)))

/** The expiry argument of the scripts: empty for none, else `<ms>:1|0`. */
const expirySpec = (expiry: Expiry | undefined): string =>
  expiry === undefined ? "" : `${expiryMillis(expiry)}:${expiry.refresh ? 1 : 0}`

interface UpdateRequest {
  readonly subject: string
  readonly ref: PropertyRef<any>
  readonly f: (previous: Option.Option<any>) => unknown
  readonly ttl: Expiring.TtlChange
}

interface IncrementRequest {
  readonly subject: string
  readonly ref: PropertyRef<any>
  readonly by: number
}

/** The core operations. */
export type Core = ReturnType<typeof make>

/** Makes the core operations. */
export const make = (options: CoreOptions) => {
  const { redis, channel } = options
  const expiry = expirySpec(options.expiry)
  /** Counts compare-and-set attempts that another writer won. */
  let conflicts = 0

  const keyOf = (subject: string) => `s:${options.keyPrefix}${subject}`
  /**
   * The deadlines of a subject's properties that expire: a sorted set in the slot of the subject's hash (whose key
   * may have no hash tag of its own), `s-ttl:{<a tag of that slot>}<the subject's key>`.
   */
  const deadlinesOf = (subject: string) => {
    const key = keyOf(subject)
    return `s-ttl:{${slotTag(slotOf(key))}}${key}`
  }
  /** The index of subjects with properties that expire (subject → a hint of its earliest deadline). */
  const expiringIndex = `s-expiring:${options.keyPrefix}`

  /**
   * Tells the index of expiring subjects of the deadline a write sets (before the write: a crash in between leaves an
   * early hint, never a missed expiry), retried through an outage like the write.
   */
  const hint = (subject: string, deadline: number | undefined) =>
    deadline === undefined
      ? Effect.void
      : Outage.retryAfterFailure(Expiring.hint(redis, expiringIndex, subject, deadline), {
          schedule: () => Schedule.upTo(Outage.backoff, { duration: options.outageTimeout }),
          while: (error) => error.isRetryable
        }).pipe(Effect.mapError(fromRedis(subject)))

  /** Removes the subject's properties due at `now`, announcing each; its next deadline, if any. */
  const sweep = (subject: string, now: number) =>
    redis
      .eval(Scripts.expireFields, [keyOf(subject), deadlinesOf(subject)], [channel, subject, expiry, now, 1_000])
      .pipe(Effect.map((next) => (next === null ? undefined : Number(next))))

  const decode = <A>(subject: string, ref: PropertyRef<A>, json: string) =>
    Effect.fromResult(decodeStored(subject, ref, json))

  const encode = <A>(subject: string, ref: PropertyRef<A>, value: A) =>
    Effect.fromResult(encodeStored(subject, ref, value))

  /**
   * Runs a subject script: KEYS = the subject's hash and deadlines, ARGV = channel, subject, expiry, then `args`;
   * applied once however often a lost reply makes it be sent (retried for up to `outageTimeout`).
   */
  const runScript = <Args extends ReadonlyArray<string | number>, Reply>(
    subject: string,
    property: string | undefined,
    self: RedisScript.RedisScript<[hash: string, deadlines: string], readonly [string, string, string, ...Args], Reply>,
    args: Args
  ) =>
    redis
      .evalIdempotent(self, [keyOf(subject), deadlinesOf(subject)], [channel, subject, expiry, ...args] as const, {
        retryWithin: options.outageTimeout
      })
      .pipe(Effect.mapError(fromRedis(subject, property)))

  // reads of whole subjects arriving together go to Redis together: one pipeline (per node) of HGETALLs per batch
  const reads = Batcher.make<string, Record<string, string>, SubjectStorageError>({
    scope: options.scope,
    run: (subjects) =>
      redis
        .pipeline(
          subjects.map((subject) => {
            const key = keyOf(subject)
            return { name: "HGETALL", args: [key], key }
          })
        )
        .pipe(
          Effect.map((outcomes) =>
            outcomes.map((outcome, index) =>
              Result.isSuccess(outcome)
                ? Exit.succeed(recordOf(outcome.success as ReadonlyArray<string>))
                : Exit.fail(fromRedis(subjects[index] as string)(outcome.failure))
            )
          )
        )
  })

  /** Every field of the subject's hash with its stored JSON. */
  const fields = (subject: string) => reads.submit(subject)

  const getRaw = (subject: string, field: string) =>
    redis.send<string | null>("HGET", keyOf(subject), field).pipe(Effect.mapError(fromRedis(subject)))

  const get = <A>(subject: string, ref: PropertyRef<A>) =>
    Effect.flatMap(getRaw(subject, ref.field), (json) => Effect.fromResult(decodeStoredOption(subject, ref, json)))

  const exists = (subject: string, ref?: PropertyRef<any>) =>
    (ref === undefined
      ? redis.send<number>("EXISTS", keyOf(subject))
      : redis.send<number>("HEXISTS", keyOf(subject), ref.field)
    ).pipe(
      Effect.map((count) => count > 0),
      Effect.mapError(fromRedis(subject))
    )

  /** Encodes the values of a `store` into field changes, or fails with the first that cannot be encoded. */
  const encodeChanges = (
    subject: string,
    sets: Iterable<readonly [PropertyRef<any>, unknown]>,
    deletes: Iterable<PropertyRef<any>>
  ): Result.Result<FieldChanges, SubjectStorageError> => {
    const fields: Array<string> = []
    for (const [ref, value] of sets) {
      const json = encodeStored(subject, ref, value)
      if (Result.isFailure(json)) return Result.fail(json.failure)
      fields.push(ref.field, json.success)
    }
    return Result.succeed({ sets: fields, deletes: Array.from(deletes, (ref) => ref.field) })
  }

  /**
   * Writes field changes atomically (a no-op when there are none); the fields set get the deadline `ttl` asks for.
   * Returns how many properties it wrote.
   */
  const store = (subject: string, { sets, deletes }: FieldChanges, ttl: Expiring.TtlChange = "keep") => {
    if (sets.length === 0 && deletes.length === 0) return Effect.succeed(0)
    // without events, deletions, deadlines or expiry, one HSET is the atomic write
    if (channel === "" && deletes.length === 0 && expiry === "" && ttl === "keep") {
      return redis
        .send("HSET", keyOf(subject), ...sets)
        .pipe(Effect.as(sets.length / 2), Effect.mapError(fromRedis(subject)))
    }
    return Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      if (sets.length > 0) yield* hint(subject, Expiring.earliestDeadline([ttl], now))
      const deadline = sets.length > 0 ? Expiring.deadlineArg(ttl, now) : ""
      return yield* runScript(subject, undefined, Scripts.store, [sets.length / 2, deadline, ...sets, ...deletes])
    })
  }

  const set = <A>(subject: string, ref: PropertyRef<A>, value: A, ttl: Expiring.TtlChange = "keep") =>
    Effect.gen(function* () {
      const json = yield* encode(subject, ref, value)
      const now = yield* Clock.currentTimeMillis
      yield* hint(subject, Expiring.earliestDeadline([ttl], now))
      const old = yield* runScript(subject, ref.name, Scripts.set, [ref.field, json, Expiring.deadlineArg(ttl, now)])
      const previous = yield* Effect.fromResult(decodeStoredOption(subject, ref, old))
      return { value, previous, attempts: 1 } satisfies Written<A>
    })

  /**
   * Applies a batch of update functions, in order, to `current`: each one's outcome, and the JSON each successful one
   * produced (the last is the one to commit).
   */
  const applyUpdates = (batch: ReadonlyArray<UpdateRequest>, current: string | null) => {
    let json = current
    const values: Array<string> = []
    const outcomes = batch.map(({ subject, ref, f }) => {
      const previous = decodeStoredOption(subject, ref, json)
      if (Result.isFailure(previous)) return Exit.fail(previous.failure)
      let value: unknown
      try {
        value = f(previous.success)
      } catch (defect) {
        return Exit.die(defect)
      }
      const encoded = encodeStored(subject, ref, value)
      if (Result.isFailure(encoded)) return Exit.fail(encoded.failure)
      json = encoded.success
      values.push(json)
      return Exit.succeed({ value, previous: previous.success })
    })
    return { outcomes, json, values }
  }

  const updates = Combiner.make<
    UpdateRequest,
    Written<unknown>,
    SubjectStorageError,
    { memo: string | null | undefined }
  >({
    scope: options.scope,
    // the value the previous batch of this field committed: the best guess of the current one
    state: () => ({ memo: undefined }),
    write: (_key, batch, state) =>
      Effect.gen(function* () {
        const { subject, ref } = batch[0] as UpdateRequest
        let current = state.memo !== undefined ? state.memo : yield* getRaw(subject, ref.field)
        let attempts = 0
        // the last request that says anything about the property's deadline decides it
        const ttl = batch.reduce<Expiring.TtlChange>(
          (last, request) => (request.ttl === "keep" ? last : request.ttl),
          "keep"
        )
        const now = yield* Clock.currentTimeMillis
        yield* hint(subject, Expiring.earliestDeadline([ttl], now))
        const attempt = Effect.gen(function* () {
          attempts++
          const { outcomes, json, values } = applyUpdates(batch, current)
          if (values.length > 0) {
            const reply = yield* runScript(subject, ref.name, Scripts.compareAndSet, [
              ref.field,
              current === null ? "0" : "1",
              current ?? "",
              Expiring.deadlineArg(ttl, now),
              ...values
            ])
            if (reply[0] === 0) {
              conflicts++
              current = reply[1]
              return yield* fail(
                Reasons.Conflict,
                `property ${ref.name} of subject ${subject} kept changing under concurrent writers`,
                subject,
                ref.name
              )
            }
          }
          state.memo = json
          return outcomes.map((outcome) => Exit.map(outcome, (written) => ({ ...written, attempts })))
        })
        return yield* attempt.pipe(
          Effect.retry({ schedule: options.retry, while: (error) => error.reason._tag === "Conflict" })
        )
      }).pipe(
        Effect.catch((error) =>
          Effect.sync(() => {
            state.memo = undefined
            return batch.map(() => Exit.fail(error))
          })
        )
      )
  })

  const update = <A>(
    subject: string,
    ref: PropertyRef<A>,
    f: (previous: Option.Option<A>) => A,
    ttl: Expiring.TtlChange = "keep"
  ) =>
    updates.submit(`${keyOf(subject)}\u0000${ref.field}`, { subject, ref, f, ttl }) as Effect.Effect<
      Written<A>,
      SubjectStorageError
    >

  const increments = Combiner.make<IncrementRequest, number, SubjectStorageError, undefined>({
    scope: options.scope,
    state: () => undefined,
    write: (_key, batch) =>
      Effect.gen(function* () {
        const { subject, ref } = batch[0] as IncrementRequest
        const reply = yield* runScript(subject, ref.name, Scripts.increment, [
          ref.field,
          ...batch.map((request) => request.by)
        ])
        if (reply[0] === "NAN") {
          return yield* fail(
            Reasons.NotANumber,
            `property ${ref.name} of subject ${subject} holds ${reply[1]}`,
            subject,
            ref.name
          )
        }
        // each request's value is what it would have read back had the adds been committed one by one
        let value = reply[2] == null ? 0 : Number(reply[2])
        return batch.map((request, index) => {
          value = index === batch.length - 1 ? Number(reply[1]) : value + request.by
          return Exit.succeed(value)
        })
      }).pipe(Effect.catch((error) => Effect.succeed(batch.map(() => Exit.fail(error)))))
  })

  const increment = (subject: string, ref: PropertyRef<any>, by: number) =>
    increments.submit(`${keyOf(subject)}\u0000${ref.field}`, { subject, ref, by })

  const remove = (subject: string, ref: PropertyRef<any>) =>
    Effect.map(runScript(subject, ref.name, Scripts.remove, [ref.field]), (old) => old !== null)

  const run = Transaction.make({
    redis,
    channel,
    keyOf,
    deadlinesOf,
    expiry:
      options.expiry === undefined ? undefined : { ms: expiryMillis(options.expiry), refresh: options.expiry.refresh },
    outageTimeout: options.outageTimeout,
    onConflict: () => {
      conflicts++
    }
  })

  /** Runs `f` in a transaction over `subjects`, retried on `retry` (default: the storage's schedule). */
  const transaction = <A, E, R>(
    subjects: ReadonlyArray<string>,
    f: (staging: Transaction.Staging) => Effect.Effect<A, E, R>,
    retry: Schedule.Schedule<unknown, SubjectStorageError> = options.retry
  ) => run(subjects, f, retry)

  const flush = (subject: string) =>
    Effect.map(runScript(subject, undefined, Scripts.flush, []), (existed) => existed === 1)

  return {
    keyOf,
    expiringIndex,
    sweep,
    fields,
    decode,
    decodeStored,
    encode,
    encodeChanges,
    get,
    exists,
    store,
    set,
    update,
    increment,
    remove,
    flush,
    transaction,
    conflicts: () => conflicts
  }
}
