/**
 * Property bags per subject in Redis hashes, with exact atomic updates under contention (KRules' Redis subjects
 * storage, compatible with its format).
 *
 * - One hash per subject at `s:{keyPrefix}{subject}`; default properties in fields `p{name}`, extended ones in
 *   `e{name}`; values are JSON. A hash written by KRules reads here, and the reverse.
 * - Every write is one Lua script on that one hash: atomic, one round trip, cluster-safe (one key).
 * - `set` with a function is an atomic read-modify-write of the one field: a compare-and-set retried on a `Schedule`
 *   (no WATCH, so no dedicated connection and no conflicts from unrelated properties); `increment` is a one-step
 *   atomic add. Concurrent ones of one field within a process are combined into one write (group commit), each
 *   caller still getting its own new and previous value.
 * - Plain JSON values, or typed subjects: a `Schema` per property gives typed reads and writes, and a stored value that
 *   does not decode is a typed error naming the subject and property.
 * - Optional change events, published by the write scripts themselves, so only committed writes emit them.
 * - Properties can expire (`set` and `store` with a `ttl`): an expired property is removed with a `PropertyExpired`
 *   change, on Redis 7.0 too, where hash fields cannot expire (see `internal/expiry.ts`).
 *
 * @since 0.1.0
 */

import { Context, Duration, Effect, Layer, Option, Result, Schedule, type Schema, type Scope, Stream } from "effect"
import * as RedisClient from "./RedisClient.js"
import type { Staging } from "./internal/subjects/transaction.js"
import * as Core from "./internal/subjects/core.js"
import * as Expiry from "./internal/expiry.js"
import { fromRedis } from "./internal/subjects/error.js"
import { type SubjectStorageError } from "./SubjectStorageError.js"
import { traced } from "./internal/spans.js"
import * as Handle from "./internal/subjects/handle.js"
import { fieldOf, fromSchema, json, parseField, type PropertyRef, untyped } from "./internal/subjects/property.js"

export * from "./SubjectStorageError.js"

/** The value of property `K` of `Props` (unknown for a name `Props` does not declare). */
export type ValueOf<Props, K> = K extends keyof Props ? Props[K] : unknown

/** A new value, or a function of the previous one (none when the property is not set). */
export type Update<A> = A | ((previous: Option.Option<A>) => A)

/**
 * A subject with a local cache; see the module `SubjectStorage`.
 *
 * @since 0.1.0
 */
export interface SubjectHandle<Props, Key> {
  readonly subject: string
  /** The property's value: the cache's, after loading the subject on first use. */
  readonly get: <K extends Key>(property: K) => Effect.Effect<Option.Option<ValueOf<Props, K>>, SubjectStorageError>
  /** Changes the cached value and remembers the change for `store`; returns the new value. */
  readonly set: <K extends Key>(
    property: K,
    value: Update<ValueOf<Props, K>>
  ) => Effect.Effect<ValueOf<Props, K>, SubjectStorageError>
  /** Deletes the cached value and remembers the deletion for `store`; false when it was not set. */
  readonly delete: <K extends Key>(property: K) => Effect.Effect<boolean, SubjectStorageError>
  /** Writes every remembered change in one atomic step (last writer wins); returns how many were written. */
  readonly store: Effect.Effect<number, SubjectStorageError>
  /** How many changes wait for `store`. */
  readonly pending: Effect.Effect<number>
}

/**
 * The name of an extended property (field `e{name}`), for the plain-JSON API: `extended("lastLogin")`.
 *
 * @since 0.1.0
 */
export interface Extended {
  readonly _tag: "Extended"
  readonly name: string
}

/**
 * Names an extended property.
 *
 * @since 0.1.0
 */
export const extended = (name: string): Extended => ({ _tag: "Extended", name })

/**
 * A property of the plain-JSON API: a name (a default property) or `extended(name)`.
 *
 * @since 0.1.0
 */
export type PropertyName = string | Extended

/**
 * A subject's properties, default and extended, decoded from JSON.
 *
 * @since 0.1.0
 */
export interface Loaded {
  readonly properties: Readonly<Record<string, unknown>>
  readonly extended: Readonly<Record<string, unknown>>
}

/**
 * A property and its value, typed per property.
 *
 * @since 0.1.0
 */
export type Entry<Props, Key> = Key extends unknown ? readonly [Key, ValueOf<Props, Key>] : never

/**
 * The changes of one atomic `store`: properties to set (`inserts` and `updates` alike) and to delete.
 *
 * @since 0.1.0
 */
export interface StoreChanges<Props, Key> {
  readonly inserts?: Iterable<Entry<Props, Key>> | undefined
  readonly updates?: Iterable<Entry<Props, Key>> | undefined
  readonly deletes?: Iterable<Key> | undefined
}

/**
 * Options of a write (`set`, `store`).
 *
 * @since 0.1.0
 */
export interface WriteOptions {
  /**
   * How long the properties written live from this write: each is removed (a `PropertyExpired` change) unless written
   * with a `ttl` again before. `Duration.infinity` drops a deadline they had. Without it, a property keeps the
   * deadline it had (none for a new one); `increment` keeps it too, and a deletion or `flush` drops it.
   */
  readonly ttl?: Duration.Input | undefined
}

/**
 * A value written and the one it replaced.
 *
 * @since 0.1.0
 */
export interface Written<A> {
  readonly value: A
  readonly previous: Option.Option<A>
  /** Compare-and-set attempts its write took (1 unless writers in other processes interfered). */
  readonly attempts: number
}

/**
 * What a committed transaction returns: the function's value, the attempts it took (1 unless other writers
 * interfered), and how many properties it wrote or deleted.
 *
 * @since 0.1.0
 */
export interface Transacted<A> {
  readonly value: A
  readonly attempts: number
  readonly written: number
}

/**
 * The reads and staged writes of one attempt of a `transaction`. Reads see the snapshot taken under WATCH (and this
 * attempt's own staged writes); writes are staged and committed together by MULTI/EXEC when the function returns,
 * only if no watched subject changed meanwhile. Every subject used must be one the transaction declared
 * (`NotWatched` otherwise).
 *
 * @since 0.1.0
 */
export interface Transaction<Props, Key> {
  /** The property's value in the snapshot (or as this attempt staged it); `None` when it is not set. */
  readonly get: <K extends Key>(
    subject: string,
    property: K
  ) => Effect.Effect<Option.Option<ValueOf<Props, K>>, SubjectStorageError>
  /** Stages a value (encoded now: a value that cannot be stored fails here, and the transaction writes nothing). */
  readonly set: <K extends Key>(
    subject: string,
    property: K,
    value: ValueOf<Props, K>
  ) => Effect.Effect<void, SubjectStorageError>
  /** Stages the deletion of a property; false when it is not set. */
  readonly delete: (subject: string, property: Key) => Effect.Effect<boolean, SubjectStorageError>
  /** Stages sets and deletions, as `store` takes them. */
  readonly store: (subject: string, changes: StoreChanges<Props, Key>) => Effect.Effect<void, SubjectStorageError>
  /** Stages the deletion of the whole subject (properties set afterwards are written anew); false when it is empty. */
  readonly flush: (subject: string) => Effect.Effect<boolean, SubjectStorageError>
}

/**
 * Options of one `transaction`.
 *
 * @since 0.1.0
 */
export interface TransactionOptions {
  /** Retries of an attempt that lost to another writer. Default: the storage's `retrySchedule`. */
  readonly retrySchedule?: Schedule.Schedule<unknown, SubjectStorageError> | undefined
}

/**
 * The name of a subject in hash tag `tag`: `{tag}name`. Subjects of one transaction must share a Cluster slot;
 * subjects named with the same tag do (the key stays `s:{keyPrefix}{subject}`, KRules' layout).
 *
 * @since 0.1.0
 */
export const tagged = (tag: string, name: string): string => `{${tag}}${name}`

/**
 * A committed change, as every instance receives it (with `changes: true` on the writers). `Reconnected`: the
 * subscriber connection dropped and came back, and changes published meanwhile were missed.
 *
 * @since 0.1.0
 */
export type ChangeEvent =
  | {
      readonly _tag: "PropertyChanged"
      readonly subject: string
      readonly property: string
      readonly extended: boolean
      readonly value: unknown
      readonly previous: Option.Option<unknown>
    }
  | {
      readonly _tag: "PropertyDeleted"
      readonly subject: string
      readonly property: string
      readonly extended: boolean
      readonly previous: unknown
    }
  | {
      readonly _tag: "PropertyExpired"
      readonly subject: string
      readonly property: string
      readonly extended: boolean
      readonly previous: unknown
    }
  | { readonly _tag: "SubjectDeleted"; readonly subject: string }
  | { readonly _tag: "Reconnected" }

/**
 * The operations on subjects whose properties are `Props`, addressed by keys of type `Key`.
 *
 * @since 0.1.0
 */
export interface Subjects<Props, Key> {
  /** The property's value; `None` when it is not set. */
  readonly get: <K extends Key>(
    subject: string,
    property: K
  ) => Effect.Effect<Option.Option<ValueOf<Props, K>>, SubjectStorageError>
  /** Whether the subject exists, or one of its properties is set. */
  readonly exists: (subject: string, property?: Key) => Effect.Effect<boolean, SubjectStorageError>
  /**
   * Sets a property and returns the new and the previous value. With a function it is an atomic read-modify-write:
   * the function gets the committed previous value and the write happens only if nothing changed in between
   * (retried on the storage's `retrySchedule`; exhausted: `Conflict`). The function may run more than once: keep it
   * pure.
   */
  readonly set: <K extends Key>(
    subject: string,
    property: K,
    value: Update<ValueOf<Props, K>>,
    options?: WriteOptions
  ) => Effect.Effect<Written<ValueOf<Props, K>>, SubjectStorageError>
  /** Adds `by` (default 1) to a number property in one atomic step (unset counts as 0); returns the new value. */
  readonly increment: (subject: string, property: Key, by?: number) => Effect.Effect<number, SubjectStorageError>
  /** Subtracts `by` (default 1): `increment` with `-by`. */
  readonly decrement: (subject: string, property: Key, by?: number) => Effect.Effect<number, SubjectStorageError>
  /** Deletes a property; false when it was not set. */
  readonly delete: (subject: string, property: Key) => Effect.Effect<boolean, SubjectStorageError>
  /**
   * Sets and deletes several properties in one atomic write (a no-op when there is nothing); returns how many. A
   * `ttl` applies to every property it sets.
   */
  readonly store: (
    subject: string,
    changes: StoreChanges<Props, Key>,
    options?: WriteOptions
  ) => Effect.Effect<number, SubjectStorageError>
  /** A handle with a local cache whose changes are written together by its `store` (last writer wins). */
  readonly subject: (subject: string) => SubjectHandle<Props, Key>
  /**
   * Runs `f` as one atomic transaction over `subjects` (WATCH/MULTI/EXEC on a dedicated connection): `f` reads the
   * subjects as they are and stages writes, which commit together, with their change events, only if no subject
   * changed in between; otherwise `f` runs again on a fresh snapshot after the retry schedule's delay (keep it free
   * of other effects), and when the schedule gives up the transaction fails `Conflict` naming the subjects. A failure
   * of `f` writes nothing and is the transaction's failure. On a Cluster the subjects must share a slot (see
   * {@link tagged}); others fail `CrossSlot` before anything is sent.
   */
  readonly transaction: <A, E, R>(
    subjects: ReadonlyArray<string>,
    f: (transaction: Transaction<Props, Key>) => Effect.Effect<A, E, R>,
    options?: TransactionOptions
  ) => Effect.Effect<Transacted<A>, E | SubjectStorageError, R>
}

/**
 * The `SubjectStorage` service: the plain-JSON API, plus whole-subject operations, typed views and change events.
 *
 * @since 0.1.0
 */
export interface Service extends Subjects<Record<string, unknown>, PropertyName> {
  /** Every property of the subject, default and extended (fields of other kinds are ignored). */
  readonly load: (subject: string) => Effect.Effect<Loaded, SubjectStorageError>
  /** The subject's extended properties. */
  readonly extendedProperties: (
    subject: string
  ) => Effect.Effect<Readonly<Record<string, unknown>>, SubjectStorageError>
  /** Deletes the whole subject; false when it did not exist. */
  readonly flush: (subject: string) => Effect.Effect<boolean, SubjectStorageError>
  /** The typed view of subjects whose properties `definition` describes. */
  readonly typed: <D extends Definition>(definition: D) => Typed<PropsOf<D>>
  /** Committed changes of every subject under this key prefix, from every instance (see {@link ChangeEvent}). */
  readonly changes: Stream.Stream<ChangeEvent, SubjectStorageError>
  /** How many compare-and-set attempts lost to another writer (and were retried) so far. */
  readonly conflicts: Effect.Effect<number>
}

/**
 * The schemas of a subject's properties: `properties` are default properties (`p…` fields), `extended` extended
 * ones (`e…`). A name must not be in both.
 *
 * @since 0.1.0
 */
export interface Definition {
  readonly properties: Readonly<Record<string, Schema.Codec<any, any>>>
  readonly extended?: Readonly<Record<string, Schema.Codec<any, any>>> | undefined
}

/**
 * The property types a {@link Definition} describes.
 *
 * @since 0.1.0
 */
export type PropsOf<D extends Definition> = {
  readonly [K in keyof D["properties"]]: D["properties"][K]["Type"]
} & {
  readonly [K in keyof NonNullable<D["extended"]>]: NonNullable<D["extended"]>[K]["Type"]
}

/**
 * Typed subjects: every read decodes with the property's schema, every write encodes with it.
 *
 * @since 0.1.0
 */
export interface Typed<Props> extends Subjects<Props, keyof Props & string> {
  /** The declared properties that are set (a value that does not decode fails `Decode`). */
  readonly load: (subject: string) => Effect.Effect<Partial<Props>, SubjectStorageError>
}

/**
 * Declares typed subjects (checked: a name may not be both default and extended).
 *
 * @since 0.1.0
 */
export const define = <const D extends Definition>(definition: D): D => {
  for (const name of Object.keys(definition.extended ?? {})) {
    if (name in definition.properties) throw new Error(`property "${name}" is both default and extended`)
  }
  return definition
}

/**
 * Options of {@link layer}.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Prefix inside the subject keys `s:{keyPrefix}{subject}` (KRules' `key_prefix`). Default none. */
  readonly keyPrefix?: string | undefined
  /** Publish change events from every write (on the channel `s-changes:{keyPrefix}`). Default false. */
  readonly changes?: boolean | undefined
  /**
   * Retries of an atomic `set` whose compare-and-set lost to another process. Default: 2 ms doubling, capped at
   * 100 ms, jittered, at most 50 retries.
   */
  readonly retrySchedule?: Schedule.Schedule<unknown, SubjectStorageError> | undefined
  /**
   * How long a write keeps trying through an outage or a failover. Its retries are idempotent (a request id the
   * script remembers): a write whose reply was lost is applied once. After that it fails with a retryable `Redis`
   * reason, or `OutcomeUnknown` when an attempt's reply was lost. Default 10 seconds.
   */
  readonly outageTimeout?: Duration.Input | undefined
  /**
   * Expiry of subjects: a subject is deleted this long after its last write (or its first, with
   * `refreshTtl: false`), and then loads empty. Default none: subjects live until deleted.
   */
  readonly ttl?: Duration.Input | undefined
  /** Whether every write sets the subject's `ttl` anew (true, the default) or only the write that creates it. */
  readonly refreshTtl?: boolean | undefined
  /**
   * How often each instance looks for properties whose time to live (a write's `ttl`) is over: a property is removed,
   * and its `PropertyExpired` change published, within about this long after its deadline (while any instance of the
   * layer runs). Default 1 second.
   */
  readonly expiryInterval?: Duration.Input | undefined
}

/**
 * The subject-storage service.
 *
 * @since 0.1.0
 */
export class SubjectStorage extends Context.Service<SubjectStorage, Service>()("effect-redis-streams/SubjectStorage") {}

const defaultRetry = Schedule.min([Schedule.exponential("2 millis"), Schedule.spaced("100 millis")]).pipe(
  Schedule.jittered,
  Schedule.upTo({ times: 50 })
)

/** The operations of `Subjects`, for keys that `resolve` turns into property references. */
const subjects = <Props, Key>(core: Core.Core, resolve: (key: Key) => PropertyRef<any>): Subjects<Props, Key> => {
  const store = (subject: string, changes: StoreChanges<Props, Key>, options?: WriteOptions) =>
    Effect.suspend(() => {
      const encoded = core.encodeChanges<Key>(subject, [changes.inserts, changes.updates], changes.deletes, resolve)
      return Result.isSuccess(encoded)
        ? core.store(subject, encoded.success, Expiry.ttlChange(options?.ttl))
        : Effect.fail(encoded.failure)
    })
  const increment = (subject: string, property: Key, by = 1) => core.increment(subject, resolve(property), by)
  const transactionOf = (staging: Staging): Transaction<Props, Key> => ({
    get: (subject, property) => staging.get(subject, resolve(property)),
    set: (subject, property, value) => staging.set(subject, resolve(property), value),
    delete: (subject, property) => staging.delete(subject, resolve(property)),
    store: (subject, changes) =>
      Effect.gen(function* () {
        for (const [key, value] of [...(changes.inserts ?? []), ...(changes.updates ?? [])]) {
          yield* staging.set(subject, resolve(key as Key), value)
        }
        for (const key of changes.deletes ?? []) yield* staging.delete(subject, resolve(key))
      }),
    flush: staging.flush
  })
  return traced(
    "SubjectStorage",
    {
      get: (subject, property) => core.get(subject, resolve(property)),
      exists: (subject, property) => core.exists(subject, property === undefined ? undefined : resolve(property)),
      set: (subject, property, value, options) =>
        Handle.isFunction(value)
          ? core.update(subject, resolve(property), value, Expiry.ttlChange(options?.ttl))
          : core.set(subject, resolve(property), value, Expiry.ttlChange(options?.ttl)),
      increment,
      decrement: (subject, property, by = 1) => increment(subject, property, -by),
      delete: (subject, property) => core.remove(subject, resolve(property)),
      store,
      subject: (subject) => Handle.make<Props, Key>(core, subject, resolve),
      transaction: (names, f, options) =>
        core.transaction(names, (staging) => f(transactionOf(staging)), options?.retrySchedule)
    },
    ["get", "exists", "set", "increment", "decrement", "delete", "store", "transaction"]
  )
}

const resolveUntyped = (property: PropertyName): PropertyRef<unknown> =>
  typeof property === "string" ? untyped(property) : untyped(property.name, true)

/** A stored JSON text as a value, if it is JSON. */
const jsonValue = (text: unknown): Option.Option<unknown> => {
  if (typeof text !== "string") return Option.none()
  const decoded = json.decode(text)
  return decoded._tag === "Success" ? Option.some(decoded.success) : Option.none()
}

/** A message of the change channel (see `internal/subjects/scripts.ts`) as events; one that does not parse is none. */
const parseChange = (message: string): ReadonlyArray<ChangeEvent> => {
  const parsed = Option.getOrUndefined(jsonValue(message)) as
    | {
        subject?: unknown
        deleted?: unknown
        changes?: ReadonlyArray<{ field?: unknown; value?: unknown; old?: unknown; expired?: unknown }>
      }
    | undefined
  if (typeof parsed?.subject !== "string") return []
  const subject = parsed.subject
  if (parsed.deleted === true) return [{ _tag: "SubjectDeleted", subject }]
  return (Array.isArray(parsed.changes) ? parsed.changes : []).flatMap((change): ReadonlyArray<ChangeEvent> => {
    const field = typeof change.field === "string" ? parseField(change.field) : undefined
    if (field === undefined) return []
    const property = { property: field.name, extended: field.extended }
    const previous = jsonValue(change.old)
    if (change.value === undefined) {
      const tag = change.expired === true ? "PropertyExpired" : "PropertyDeleted"
      return [{ _tag: tag, subject, ...property, previous: Option.getOrUndefined(previous) }]
    }
    return [
      { _tag: "PropertyChanged", subject, ...property, value: Option.getOrUndefined(jsonValue(change.value)), previous }
    ]
  })
}

/**
 * Builds the service on the `RedisClient` in context.
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<Service, never, RedisClient.RedisClient | Scope.Scope> =>
  Effect.gen(function* () {
    const redis = yield* RedisClient.RedisClient
    const scope = yield* Effect.scope
    const keyPrefix = options.keyPrefix ?? ""
    const channel = `s-changes:${keyPrefix}`
    const core = Core.make({
      redis,
      keyPrefix,
      channel: options.changes === true ? channel : "",
      retry: options.retrySchedule ?? defaultRetry,
      outageTimeout: Duration.fromInputUnsafe(options.outageTimeout ?? "10 seconds"),
      scope,
      expiry:
        options.ttl === undefined
          ? undefined
          : { ttl: Duration.fromInputUnsafe(options.ttl), refresh: options.refreshTtl ?? true }
    })
    // every instance sweeps the subjects whose properties expired (atomically: each one is announced once)
    yield* Expiry.sweeper({
      redis,
      index: core.expiringIndex,
      interval: Duration.fromInputUnsafe(options.expiryInterval ?? "1 second"),
      component: "SubjectStorage expiry",
      sweep: core.sweep
    })

    const load = (subject: string) =>
      Effect.flatMap(core.fields(subject), (fields) => {
        const properties: Record<string, unknown> = {}
        const extendedProperties: Record<string, unknown> = {}
        for (const [field, text] of Object.entries(fields)) {
          const property = parseField(field)
          if (property === undefined) continue
          const value = core.decodeStored(subject, untyped(property.name, property.extended), text)
          if (Result.isFailure(value)) return Effect.fail(value.failure)
          ;(property.extended ? extendedProperties : properties)[property.name] = value.success
        }
        return Effect.succeed<Loaded>({ properties, extended: extendedProperties })
      })

    const typed = <D extends Definition>(definition: D): Typed<PropsOf<D>> => {
      const refs = new Map<string, PropertyRef<any>>()
      for (const [kind, schemas] of [
        [false, definition.properties],
        [true, definition.extended ?? {}]
      ] as const) {
        for (const [name, schema] of Object.entries(schemas)) {
          refs.set(name, { name, extended: kind, field: fieldOf(name, kind), codec: fromSchema(schema) })
        }
      }
      const resolve = (key: string) => refs.get(key) ?? untyped(key)
      return {
        ...subjects<PropsOf<D>, keyof PropsOf<D> & string>(core, resolve),
        load: (subject) =>
          Effect.gen(function* () {
            const fields = yield* core.fields(subject)
            const out: Record<string, unknown> = {}
            for (const ref of refs.values()) {
              const text = fields[ref.field]
              if (text !== undefined) out[ref.name] = yield* core.decode(subject, ref, text)
            }
            return out as Partial<PropsOf<D>>
          })
      }
    }

    const changes: Stream.Stream<ChangeEvent, SubjectStorageError> = Stream.unwrap(
      Effect.map(redis.subscribe(channel), (events) =>
        Stream.fromQueue(events).pipe(
          Stream.flatMap((event) =>
            Stream.fromIterable(
              event._tag === "Reconnected" ? [{ _tag: "Reconnected" as const }] : parseChange(event.message)
            )
          )
        )
      ).pipe(Effect.mapError(fromRedis("*")))
    )

    return {
      ...subjects<Record<string, unknown>, PropertyName>(core, resolveUntyped),
      ...traced(
        "SubjectStorage",
        {
          load,
          extendedProperties: (subject: string) => Effect.map(load(subject), (loaded) => loaded.extended),
          flush: core.flush
        },
        ["load", "extendedProperties", "flush"]
      ),
      typed,
      changes,
      conflicts: Effect.sync(core.conflicts)
    } satisfies Service
  })

/**
 * The subject storage on the `RedisClient` in context.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<SubjectStorage, never, RedisClient.RedisClient> =>
  Layer.effect(SubjectStorage, make(options))
