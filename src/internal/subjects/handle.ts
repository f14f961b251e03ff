/**
 * A subject handle with a local cache, as KRules' cached subject: reads load the whole subject once, `set` and
 * `delete` change only the cache and remember the change, and `store` writes every remembered change with one atomic
 * `store`. This path is last-writer-wins per property: a `set` with a function here sees the cached value, not the
 * committed one (use the storage's own `set` for an atomic read-modify-write).
 *
 * @internal
 */
import { Effect, Option } from "effect"
import type { Core } from "./core.js"
import type { PropertyRef } from "./property.js"
import type { SubjectHandle, Update } from "../../SubjectStorage.js"

/** True when `value` is an update function rather than a value. */
export const isFunction = <A>(value: Update<A>): value is (previous: Option.Option<A>) => A =>
  typeof value === "function"

/** Makes a handle of `subject`, resolving property keys with `resolve`. */
export const make = <Props, Key>(
  core: Core,
  subject: string,
  resolve: (key: Key) => PropertyRef<any>
): SubjectHandle<Props, Key> => {
  let cache: Map<string, string> | undefined
  /** Remembered changes by field: the JSON to write, or null to delete. */
  const changes = new Map<string, string | null>()

  const loaded = Effect.suspend(() =>
    cache !== undefined
      ? Effect.succeed(cache)
      : Effect.map(core.fields(subject), (fields) => {
          cache = new Map(Object.entries(fields))
          return cache
        })
  )

  const cached = <A>(ref: PropertyRef<A>) =>
    Effect.flatMap(loaded, (fields) => {
      const json = fields.get(ref.field)
      return json === undefined ? Effect.succeedNone : Effect.asSome(core.decode(subject, ref, json))
    })

  return {
    subject,
    get: (property) => cached(resolve(property)),
    set: (property, value) =>
      Effect.gen(function* () {
        const ref = resolve(property)
        const next = isFunction(value) ? value(yield* cached(ref)) : value
        // encoded now, so a value that cannot be stored fails here rather than at `store`
        const json = yield* core.encode(subject, ref, next)
        const fields = yield* loaded
        fields.set(ref.field, json)
        changes.set(ref.field, json)
        return next
      }),
    delete: (property) =>
      Effect.gen(function* () {
        const ref = resolve(property)
        const fields = yield* loaded
        const existed = fields.delete(ref.field)
        changes.set(ref.field, null)
        return existed
      }),
    store: Effect.suspend(() => {
      const batch = Array.from(changes)
      const sets = batch.flatMap(([field, json]) => (json === null ? [] : [field, json]))
      const deletes = batch.flatMap(([field, json]) => (json === null ? [field] : []))
      return Effect.tap(core.store(subject, { sets, deletes }), () =>
        Effect.sync(() => {
          // a change made while the write was in flight stays for the next store
          for (const [field, json] of batch) if (changes.get(field) === json) changes.delete(field)
        })
      )
    }),
    pending: Effect.sync(() => changes.size)
  }
}
