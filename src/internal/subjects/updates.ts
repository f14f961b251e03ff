/**
 * Atomic read-modify-writes (`update`) and increments, combined per field within this process (group commit): while
 * one write of a field is in flight, later requests for that field queue up; the next write applies them in order,
 * each function seeing the value the previous one produced, and commits the result with one compare-and-set
 * (increments: one atomic add of their sum). Every caller gets its own new and previous value, exactly as if the
 * requests had been committed one by one. Only writers in other processes can make a compare-and-set fail; it is then
 * retried on the storage's `Schedule` from the value the failure returned.
 *
 * @internal
 */
import { Clock, Effect, Exit, type Option, Result } from "effect"
import type { Written } from "../../SubjectStorage.js"
import * as Reasons from "../../SubjectStorageError.js"
import type { SubjectStorageError } from "../../SubjectStorageError.js"
import * as Combiner from "../combiner.js"
import * as Expiring from "../expiry.js"
import type { SubjectContext } from "./context.js"
import { fail } from "./error.js"
import { decodeStoredOption, encodeStored, type PropertyRef } from "./property.js"
import * as Scripts from "./scripts.js"

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

/** The combined updates and increments of subject storage. */
export interface Updates {
  /** Sets a property to `f` of its current value, atomically (see the module). */
  readonly update: <A>(
    subject: string,
    ref: PropertyRef<A>,
    f: (previous: Option.Option<A>) => A,
    ttl?: Expiring.TtlChange
  ) => Effect.Effect<Written<A>, SubjectStorageError>
  /** Adds `by` to a numeric property, atomically; its new value. */
  readonly increment: (subject: string, ref: PropertyRef<any>, by: number) => Effect.Effect<number, SubjectStorageError>
}

/** The combined updates and increments on `context`. */
export const make = (context: SubjectContext): Updates => {
  const { options, runScript, hint, getRaw, keyOf } = context
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
              context.conflicted()
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

  return { update, increment }
}
