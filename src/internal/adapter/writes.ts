/**
 * Writing one stream's items, each write a group script that records its change event and announces it: `set`
 * (concurrent sets of one group go to Redis together, each with its own version and event; two batches of a group in
 * flight at once), `remove`, `clear`, and custom events (`send`). A set with a time to live tells the index of
 * expiring groups first; a group's first items add it to the stream's index of groups.
 *
 * @internal
 */
import { Clock, Effect, Exit, Result, Schedule, type Schema } from "effect"
import type { Handle, Position, Stored } from "../../StreamAdapter.js"
import * as Reasons from "../../StreamAdapterError.js"
import type { StreamAdapterError } from "../../StreamAdapterError.js"
import * as Combiner from "../combiner.js"
import * as Expiry from "../expiry.js"
import { oneLine } from "../issue.js"
import * as Outage from "../outage.js"
import type { StreamContext } from "./context.js"
import { expiringMember } from "./keys.js"
import * as Scripts from "./scripts.js"

/** The writes of a stream: the handle's `set`, `delete` (as `remove`), `clear` and `send`. */
export type Writes<A> = Pick<Handle<A>, "set" | "clear" | "send"> & { readonly remove: Handle<A>["delete"] }

interface SetRequest<A> {
  readonly groupId: string
  readonly id: string
  /** The item as stored: decoded back from its JSON (what `get` returns). */
  readonly data: A
  readonly json: string
  /** What the write does to its deadline. */
  readonly ttl: Expiry.TtlChange
}

/** The writes of the stream `context` describes. */
export const make = <A>(context: StreamContext<A>): Writes<A> => {
  const { redis, name, fromRedis, write, outageTimeout } = context

  /**
   * Adds a group to the index of groups (another slot, so not in the group's script). The items are written by then:
   * a failure is retried through an outage, then logged, and never fails the writes (`listGroups` misses the group
   * until its next first item).
   */
  const index = (groupId: string) =>
    redis.send("SADD", context.indexKey, groupId).pipe(
      Effect.retry({
        schedule: Schedule.upTo(Outage.backoff, { duration: outageTimeout }),
        while: (e) => e.isRetryable
      }),
      Effect.catch((e) => Effect.logWarning(`StreamAdapter: group ${name}/${groupId} not indexed`, e)),
      Effect.asVoid
    )

  /** Tells the index of expiring groups of the earliest deadline a batch sets, before the batch is written. */
  const hintDeadline = (groupId: string, batch: ReadonlyArray<SetRequest<A>>, now: number) => {
    const deadline = Expiry.earliestDeadline(
      batch.map((request) => request.ttl),
      now
    )
    // a crash in between leaves an early hint, never a missed expiry
    return deadline === undefined
      ? Effect.void
      : Outage.retryAfterFailure(Expiry.hint(redis, context.expiring, expiringMember(name, groupId), deadline), {
          schedule: () => Schedule.upTo(Outage.backoff, { duration: outageTimeout }),
          while: (error) => error.isRetryable
        }).pipe(Effect.mapError(fromRedis(groupId)))
  }

  const sets = Combiner.make<SetRequest<A>, Stored<A>, StreamAdapterError, undefined>({
    scope: context.scope,
    state: () => undefined,
    maxBatchesInFlight: 2,
    weigh: (request) => request.json.length,
    write: (_key, batch) => {
      const groupId = (batch[0] as SetRequest<A>).groupId
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const items = batch.flatMap((request) => [request.id, request.json, Expiry.deadlineArg(request.ttl, now)])
        return Effect.andThen(hintDeadline(groupId, batch, now), write(groupId, Scripts.set, items))
      }).pipe(
        Effect.flatMap(([epoch, firstVersion, types, count]) => {
          const first = Number(firstVersion)
          let created = 0
          const stored = batch.map((request, index): Exit.Exit<Stored<A>, StreamAdapterError> => {
            const type = types[index] === "c" ? "create" : "update"
            if (type === "create") created++
            const position = { epoch: String(epoch), version: first + index }
            return Exit.succeed({ id: request.id, data: request.data, type, position })
          })
          // the index of groups lives in another slot: written when the group got its first items
          return Effect.as(created > 0 && Number(count) === created ? index(groupId) : Effect.void, stored)
        }),
        Effect.catch((error) => Effect.succeed(batch.map(() => Exit.fail(error))))
      )
    }
  })

  return {
    set: (groupId, id, data, options) =>
      Effect.suspend(() => {
        const invalid = (issue: Schema.SchemaError) =>
          context.error(
            Reasons.InvalidItem,
            `item ${id} of group ${groupId} does not match the ${name} schema: ${oneLine(issue)}`,
            groupId,
            id
          )
        const encoded = context.encodeItem(data)
        if (Result.isFailure(encoded)) return Effect.fail(invalid(encoded.failure))
        // what get will return: the item through its schema (extra fields dropped, defaults applied)
        const stored = context.decodeItem(encoded.success)
        if (Result.isFailure(stored)) return Effect.fail(invalid(stored.failure))
        return sets.submit(context.keysOf(groupId).items, {
          groupId,
          id,
          data: stored.success,
          json: JSON.stringify(encoded.success),
          ttl: options?.ttl === undefined ? context.defaultTtl : Expiry.ttlChange(options.ttl)
        })
      }),
    remove: (groupId, id) =>
      Effect.flatMap(write(groupId, Scripts.remove, [id]), (reply) =>
        reply === null
          ? Effect.succeedNone
          : Effect.asSome(Effect.fromResult(context.decodeText(groupId, id, reply[3] ?? "")))
      ),
    // out of the index, unless a set of another instance filled the group again meanwhile (then back in: that set
    // may have indexed it before this removal)
    clear: (groupId) =>
      write(groupId, Scripts.clear, []).pipe(
        Effect.andThen(redis.send("SREM", context.indexKey, groupId).pipe(Effect.mapError(fromRedis(groupId)))),
        Effect.andThen(
          redis.send<number>("HLEN", context.keysOf(groupId).items).pipe(Effect.mapError(fromRedis(groupId)))
        ),
        Effect.flatMap((left) => (left > 0 ? index(groupId) : Effect.void))
      ),
    send: (channel, event) =>
      Effect.map(
        write(channel.groupId, Scripts.send, [
          channel.id ?? "",
          JSON.stringify({ type: event.type, data: event.data })
        ]),
        (reply): Position => ({ epoch: reply[2], version: Number(reply[1]) })
      )
  }
}
