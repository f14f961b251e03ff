/**
 * The operations of subject storage on property references (field + codec), shared by the plain-JSON and the
 * Schema-typed APIs. Reads are single commands, except whole-subject reads, which arriving together go as one pipeline
 * (per node); writes are one command or one Lua script (see `scripts.ts`).
 *
 * Atomic read-modify-writes and increments are combined per field (`updates.ts`); transactions over several
 * subjects are WATCH sessions (`transaction.ts`); what they share is `context.ts`.
 *
 * @internal
 */
import { Clock, Effect, Exit, Result, Schedule } from "effect"
import type { Written } from "../../SubjectStorage.js"
import type { SubjectStorageError } from "../../SubjectStorageError.js"
import * as Batcher from "../batcher.js"
import * as Expiring from "../expiry.js"
import * as SubjectContext from "./context.js"
import { fromRedis } from "./error.js"
import { decodeStored, decodeStoredOption, encodeStored, type PropertyRef } from "./property.js"
import { recordOf } from "./record.js"
import * as Scripts from "./scripts.js"
import * as Transaction from "./transaction.js"
import * as Updates from "./updates.js"

export type { CoreOptions, Expiry } from "./context.js"

/** The fields one `store` writes: `sets` as field/JSON pairs, and the fields to delete. */
export interface FieldChanges {
  readonly sets: ReadonlyArray<string>
  readonly deletes: ReadonlyArray<string>
}

/** The core operations. */
export type Core = ReturnType<typeof make>

/** Makes the core operations. */
export const make = (options: SubjectContext.CoreOptions) => {
  const context = SubjectContext.make(options)
  const { redis, channel, expiry, keyOf, deadlinesOf, expiringIndex, hint, runScript, getRaw } = context

  /** Removes the subject's properties due at `now`, announcing each; its next deadline, if any. */
  const sweep = (subject: string, now: number) =>
    redis
      .eval(Scripts.expireFields, [keyOf(subject), deadlinesOf(subject)], [channel, subject, expiry, now, 1_000])
      .pipe(Effect.map((next) => (next === null ? undefined : Number(next))))

  const decode = <A>(subject: string, ref: PropertyRef<A>, json: string) =>
    Effect.fromResult(decodeStored(subject, ref, json))

  const encode = <A>(subject: string, ref: PropertyRef<A>, value: A) =>
    Effect.fromResult(encodeStored(subject, ref, value))

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
  const encodeChanges = <K>(
    subject: string,
    setLists: ReadonlyArray<Iterable<readonly [K, unknown]> | undefined>,
    deletes: Iterable<K> | undefined,
    resolve: (key: K) => PropertyRef<any>
  ): Result.Result<FieldChanges, SubjectStorageError> => {
    const fields: Array<string> = []
    for (const sets of setLists) {
      if (sets === undefined) continue
      for (const entry of sets) {
        const ref = resolve(entry[0])
        const json = encodeStored(subject, ref, entry[1])
        if (Result.isFailure(json)) return Result.fail(json.failure)
        fields.push(ref.field, json.success)
      }
    }
    const deleted: Array<string> = []
    if (deletes !== undefined) for (const key of deletes) deleted.push(resolve(key).field)
    return Result.succeed({ sets: fields, deletes: deleted })
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

  const { update, increment } = Updates.make(context)

  const remove = (subject: string, ref: PropertyRef<any>) =>
    Effect.map(runScript(subject, ref.name, Scripts.remove, [ref.field]), (old) => old !== null)

  const run = Transaction.make({
    redis,
    channel,
    keyOf,
    deadlinesOf,
    expiry:
      options.expiry === undefined
        ? undefined
        : { ms: SubjectContext.expiryMillis(options.expiry), refresh: options.expiry.refresh },
    outageTimeout: options.outageTimeout,
    onConflict: context.conflicted
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
    conflicts: context.conflicts
  }
}
