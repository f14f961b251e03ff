/**
 * Grouped live state: items of a Schema type in groups (get, set, delete, query), whose changes reach every instance
 * as events (Motia's Redis streams adapter, done right: it scans the whole keyspace to read a group, decides create
 * versus update with a racy read, publishes events for failed writes, and loses every event sent while a subscriber
 * reconnects).
 *
 * - A write and its event are one Lua script: create versus update is decided in Redis, the event carries the new and
 *   the previous item and the group's version, and a failed write emits nothing.
 * - A group is one hash, read with one HGETALL; its keys share a hash tag (one cluster slot).
 * - Events go to a bounded per-group change log as well as to pub/sub: a subscriber that passes the last position it
 *   saw gets what it missed, then the live events, without duplicates; pub/sub is the fast path, not the only record.
 * - Group names and item ids can be anything (`a:b`, `*`, `?`, `[`, unicode): they never collide.
 * - Items can expire (a time to live per kind of state or per set, renewed by every set): an expired item is removed
 *   with an `expired` event, on Redis 7.0 too (see `internal/expiry.ts`).
 *
 * @since 0.1.0
 */

import { randomUUID } from "node:crypto"
import {
  Clock,
  Context,
  Duration,
  Effect,
  Exit,
  Layer,
  Option,
  Result,
  Schedule,
  Schema,
  type Scope,
  Stream
} from "effect"
import * as RedisClient from "./RedisClient.js"
import { fail, fromRedis as redisFailure } from "./internal/adapter/error.js"
import type { StreamAdapterError } from "./StreamAdapterError.js"
import { expiringKey, expiringMember, groupKeys, groupsKey, parseExpiringMember } from "./internal/adapter/keys.js"
import * as Queries from "./internal/adapter/query.js"
import * as Scripts from "./internal/adapter/scripts.js"
import { type RawEvent, subscribe } from "./internal/adapter/subscription.js"
import * as Batcher from "./internal/batcher.js"
import * as Combiner from "./internal/combiner.js"
import * as Expiry from "./internal/expiry.js"
import { oneLine } from "./internal/issue.js"
import * as Names from "./internal/names.js"
import { traced } from "./internal/spans.js"
import * as Outage from "./internal/outage.js"
import type * as RedisScript from "./RedisScript.js"
import type { RedisError } from "./RedisError.js"
import * as Reasons from "./StreamAdapterError.js"

export * from "./StreamAdapterError.js"
/**
 * A condition on one field: a value (equality) or an operator object. `contains` holds for a string containing the
 * text or an array containing the element; `in` for a value equal to one of the list.
 *
 * @since 0.1.0
 */
export type Condition<V> =
  | V
  | {
      readonly eq?: V | undefined
      readonly ne?: V | undefined
      readonly gt?: V | undefined
      readonly gte?: V | undefined
      readonly lt?: V | undefined
      readonly lte?: V | undefined
      readonly in?: ReadonlyArray<V> | undefined
      readonly contains?: unknown
    }

/**
 * A query over items of type `A`.
 *
 * @since 0.1.0
 */
export interface Query<A> {
  readonly where?: { readonly [K in keyof A]?: Condition<A[K]> } | undefined
  readonly orderBy?: (keyof A & string) | undefined
  readonly orderDirection?: "asc" | "desc" | undefined
  /** At most this many items (0: none). Default: all. */
  readonly limit?: number | undefined
  /** Skip this many items first. Default 0. */
  readonly offset?: number | undefined
}

/** A position in a group's history: the epoch and the last version seen (epoch empty: before the group's first write). */
export interface Position {
  readonly epoch: string
  readonly version: number
}

/**
 * A kind of live state: its name (part of Redis keys: letters, digits, `_ . -`), its item schema, and optionally how
 * long its items live.
 *
 * @since 0.1.0
 */
export interface Definition<A> {
  readonly name: string
  readonly item: Schema.Codec<A, any>
  /**
   * The time to live of every item, renewed by each `set` (a `set` may give its own): an item not set again within
   * it is removed, with an `expired` event. A presence list sets its entries this way, and a heartbeat keeps an entry
   * alive. Default none: items live until deleted.
   */
  readonly ttl?: Duration.Input | undefined
}

/**
 * Declares a kind of live state.
 *
 * @since 0.1.0
 */
export const define = <A>(definition: Definition<A>): Definition<A> => {
  if (!Names.isSafe(definition.name)) throw new Error(`invalid stream name "${definition.name}" (${Names.rule})`)
  Expiry.ttlChange(definition.ttl) // checked now: a bad duration fails where the kind is defined
  return definition
}

/**
 * Options of one `set`.
 *
 * @since 0.1.0
 */
export interface SetOptions {
  /**
   * How long the item lives from this write: it is removed, with an `expired` event, unless set again before. Default:
   * the definition's `ttl`, else the item keeps the deadline it had (none for a new item); `Duration.infinity`: a
   * deadline the item had is dropped.
   */
  readonly ttl?: Duration.Input | undefined
}

/**
 * An item and its id.
 *
 * @since 0.1.0
 */
export interface Item<A> {
  readonly id: string
  readonly data: A
}

/**
 * A group's items and its position at the moment they were read.
 *
 * @since 0.1.0
 */
export interface Snapshot<A> {
  readonly items: ReadonlyArray<Item<A>>
  readonly position: Position
}

/**
 * A stored item: what `set` returns, with whether it was created or updated and the group's version after it.
 *
 * @since 0.1.0
 */
export interface Stored<A> extends Item<A> {
  readonly type: "create" | "update"
  readonly position: Position
}

interface ReadRequest {
  readonly groupId: string
  readonly id: string
}

interface SetRequest<A> {
  readonly groupId: string
  readonly id: string
  /** The item as stored: decoded back from its JSON (what `get` returns). */
  readonly data: A
  readonly json: string
  /** What the write does to its deadline. */
  readonly ttl: Expiry.TtlChange
}

/**
 * A change of a group, as every subscriber receives it. Each has the group's `position` after it: give the last one
 * to `subscribe` to resume from there. `expired`: an item reached the end of its time to live and was removed.
 * `reset`: the group's history is not available from where the subscriber was
 * (Redis lost the data, or the change log was trimmed past it): reload the group; the events after `position`
 * follow.
 *
 * @since 0.1.0
 */
export type ChangeEvent<A> =
  | {
      readonly type: "create"
      readonly position: Position
      readonly groupId: string
      readonly id: string
      readonly data: A
    }
  | {
      readonly type: "update"
      readonly position: Position
      readonly groupId: string
      readonly id: string
      readonly data: A
      readonly previous: A
    }
  | {
      readonly type: "delete"
      readonly position: Position
      readonly groupId: string
      readonly id: string
      readonly previous: A
    }
  | {
      readonly type: "expired"
      readonly position: Position
      readonly groupId: string
      readonly id: string
      readonly previous: A
    }
  | { readonly type: "clear"; readonly position: Position; readonly groupId: string }
  | {
      readonly type: "event"
      readonly position: Position
      readonly groupId: string
      readonly id?: string | undefined
      readonly event: CustomEvent
    }
  | {
      readonly type: "reset"
      readonly position: Position
      readonly groupId: string
      readonly reason: "restarted" | "truncated"
    }

/**
 * A custom event sent with `send`.
 *
 * @since 0.1.0
 */
export interface CustomEvent {
  readonly type: string
  readonly data?: unknown
}

/**
 * The operations on one kind of live state.
 *
 * @since 0.1.0
 */
export interface Handle<A> {
  readonly name: string
  /** The item, if there is one. Fails `Decode` (naming group and id) when it does not match the schema. */
  readonly get: (groupId: string, id: string) => Effect.Effect<Option.Option<A>, StreamAdapterError>
  /**
   * Creates or updates an item, emitting `create` or `update`, and sets its time to live (`options.ttl`, else the
   * definition's; with neither, the item keeps the deadline it had). Fails `InvalidItem` when it does not match.
   * Concurrent sets of a group are written together: interrupting one does not take it back, and a `delete` sent
   * after an interrupted set may be applied before it (let a set that must precede a delete finish, e.g.
   * `Effect.uninterruptible`).
   */
  readonly set: (
    groupId: string,
    id: string,
    data: A,
    options?: SetOptions
  ) => Effect.Effect<Stored<A>, StreamAdapterError>
  /** Deletes an item, emitting `delete`; returns it (none, and no event, when there was none). */
  readonly delete: (groupId: string, id: string) => Effect.Effect<Option.Option<A>, StreamAdapterError>
  /**
   * The group's items, in no particular order. One that does not decode is left out with a warning naming it (or
   * fails `Decode` with `onInvalid: "fail"`): one bad item does not hide the others.
   */
  readonly getGroup: (
    groupId: string,
    options?: { readonly onInvalid?: "skip" | "fail" | undefined }
  ) => Effect.Effect<ReadonlyArray<Item<A>>, StreamAdapterError>
  /**
   * The group's items and its position, read together (one transaction): subscribe with `after: position` to follow
   * the group from exactly that state, missing nothing and repeating nothing.
   */
  readonly snapshot: (
    groupId: string,
    options?: { readonly onInvalid?: "skip" | "fail" | undefined }
  ) => Effect.Effect<Snapshot<A>, StreamAdapterError>
  /**
   * The groups that have items, or had some and were not cleared. The index is written next to the group (its own
   * cluster slot), when a group gets its first item and when it is cleared.
   */
  readonly listGroups: Effect.Effect<ReadonlyArray<string>, StreamAdapterError>
  /** Deletes every item of a group, emitting one `clear` event. */
  readonly clear: (groupId: string) => Effect.Effect<void, StreamAdapterError>
  /** The group's items that match `query`, ordered and paged. Fails `InvalidQuery` for a bad limit, offset or operator. */
  readonly query: (groupId: string, query: Query<A>) => Effect.Effect<ReadonlyArray<Item<A>>, StreamAdapterError>
  /** Sends a custom event to the subscribers of the group (and of the item, with `id`). */
  readonly send: (
    channel: { readonly groupId: string; readonly id?: string | undefined },
    event: CustomEvent
  ) => Effect.Effect<Position, StreamAdapterError>
  /**
   * The changes of a group (of one item, with `id`), live, from every instance; from `after` on when given (what was
   * missed first, then live), else from now. Each event is delivered once, in order.
   */
  readonly subscribe: (channel: {
    readonly groupId: string
    readonly id?: string | undefined
    readonly after?: Position | undefined
  }) => Stream.Stream<ChangeEvent<A>, StreamAdapterError>
}

/**
 * The `StreamAdapter` service: a typed handle per kind of live state.
 *
 * @since 0.1.0
 */
export interface Service {
  readonly stream: <A>(definition: Definition<A>) => Handle<A>
}

/**
 * The live-state service.
 *
 * @since 0.1.0
 */
export class StreamAdapter extends Context.Service<StreamAdapter, Service>()("effect-redis-streams/StreamAdapter") {}

/**
 * Options of {@link layer}.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Prefix of every key and channel. Default `motia:stream:` (Motia's). */
  readonly keyPrefix?: string | undefined
  /**
   * Events kept per group in the change log, for subscribers that resume: about that many (trimmed by version, a
   * write call's events at a time). Default 10,000.
   */
  readonly changeLogLength?: number | undefined
  /**
   * How often a subscriber checks its group's version, to catch a change whose pub/sub message was lost (a
   * reconnect) when no later change revealed the gap. Default 5 seconds.
   */
  readonly checkInterval?: Duration.Input | undefined
  /**
   * How long a write keeps trying through an outage or a failover. Its retries are idempotent (a request id the
   * script remembers): a write whose reply was lost is applied once, with one event. After that it fails with a
   * retryable `Redis` reason, or `OutcomeUnknown` when an attempt's reply was lost. Default 10 seconds.
   */
  readonly outageTimeout?: Duration.Input | undefined
  /**
   * How often each instance looks for items whose time to live is over: an item is removed, and its `expired` event
   * sent, within about this long after its deadline (while any instance of the layer runs). Default 1 second.
   */
  readonly expiryInterval?: Duration.Input | undefined
}

/** Expired items one sweep of a group removes (more are removed at the next sweep). */
const expiredPerSweep = 1_000

/**
 * Builds the service on the `RedisClient` in context.
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<Service, never, RedisClient.RedisClient | Scope.Scope> =>
  Effect.gen(function* () {
    const redis = yield* RedisClient.RedisClient
    const scope = yield* Effect.scope
    const prefix = options.keyPrefix ?? "motia:stream:"
    const logLength = options.changeLogLength ?? 10_000
    const checkInterval = Duration.fromInputUnsafe(options.checkInterval ?? "5 seconds")
    const outageTimeout = Duration.fromInputUnsafe(options.outageTimeout ?? "10 seconds")
    const expiring = expiringKey(prefix)

    const scriptKeys = (keys: ReturnType<typeof groupKeys>) => [keys.items, keys.log, keys.meta, keys.expiry] as const

    // every instance sweeps the groups whose items expired (atomically: each expired item is announced once)
    yield* Expiry.sweeper({
      redis,
      index: expiring,
      interval: Duration.fromInputUnsafe(options.expiryInterval ?? "1 second"),
      component: "StreamAdapter expiry",
      sweep: (member, now) => {
        const { stream, groupId } = parseExpiringMember(member)
        const keys = groupKeys(prefix, stream, groupId)
        return redis
          .eval(Scripts.expire, [...scriptKeys(keys)], [keys.channel, logLength, randomUUID(), now, expiredPerSweep])
          .pipe(Effect.map((next) => (next === null ? undefined : Number(next))))
      }
    })

    const stream = <A>(definition: Definition<A>): Handle<A> => {
      const name = definition.name
      const codec = Schema.toCodecJson(definition.item)
      const encodeItem = Schema.encodeUnknownResult(codec)
      const decodeItem = Schema.decodeUnknownResult(codec)
      const keysOf = (groupId: string) => groupKeys(prefix, name, groupId)
      const indexKey = groupsKey(prefix, name)

      const error = (tag: Parameters<typeof fail>[0], message: string, groupId?: string, id?: string) =>
        fail(tag, message, name, groupId, id)
      const fromRedis = (groupId?: string) => redisFailure(name, groupId)

      /** An item's JSON text as `A`, or the error naming it. */
      const decodeText = (groupId: string, id: string, text: string): Result.Result<A, StreamAdapterError> => {
        let raw: unknown
        try {
          raw = JSON.parse(text)
        } catch {
          return Result.fail(error(Reasons.Decode, `item ${id} of group ${groupId} is not JSON`, groupId, id))
        }
        return decodeValue(groupId, id, raw)
      }
      const decodeValue = (groupId: string, id: string, raw: unknown): Result.Result<A, StreamAdapterError> => {
        const decoded = decodeItem(raw)
        // a success holds no error: reused as is rather than copied (10k items per getGroup)
        if (Result.isSuccess(decoded)) return decoded as Result.Result<A, never>
        return Result.fail(
          error(
            Reasons.Decode,
            `item ${id} of group ${groupId} does not match the ${name} schema: ${oneLine(decoded.failure)}`,
            groupId,
            id
          )
        )
      }

      const defaultTtl = Expiry.ttlChange(definition.ttl)

      const write = <Args extends ReadonlyArray<string | number>, Reply>(
        groupId: string,
        self: RedisScript.RedisScript<
          [string, string, string, string],
          readonly [string, number, string, ...Args],
          Reply
        >,
        args: Args
      ) => {
        const keys = keysOf(groupId)
        return redis
          .evalIdempotent(self, [...scriptKeys(keys)], [keys.channel, logLength, randomUUID(), ...args] as const, {
            retryWithin: outageTimeout
          })
          .pipe(Effect.mapError(fromRedis(groupId)))
      }

      const positionOf = (reply: Scripts.WriteReply): Position => ({ epoch: reply[2], version: Number(reply[1]) })

      // gets arriving together go to Redis together: one HMGET per group in one pipeline; each caller gets its own item
      const reads = Batcher.make<ReadRequest, Option.Option<A>, StreamAdapterError>({
        scope,
        run: (batch) => {
          const byGroup = new Map<string, Array<number>>()
          batch.forEach((request, index) => {
            const indexes = byGroup.get(request.groupId)
            if (indexes === undefined) byGroup.set(request.groupId, [index])
            else indexes.push(index)
          })
          const groups = [...byGroup.entries()]
          const idsOf = (at: number) => (groups[at]?.[1] ?? []).map((index) => (batch[index] as ReadRequest).id)
          return redis
            .pipeline(
              groups.map(([groupId], at) => {
                const key = keysOf(groupId).items
                return { name: "HMGET", args: [key, ...idsOf(at)], key }
              })
            )
            .pipe(
              Effect.map((outcomes) => {
                const exits: Array<Exit.Exit<Option.Option<A>, StreamAdapterError>> = []
                groups.forEach(([groupId, indexes], at) => {
                  const outcome = outcomes[at]
                  const texts =
                    outcome === undefined || Result.isFailure(outcome)
                      ? undefined
                      : (outcome.success as ReadonlyArray<string | null>)
                  indexes.forEach((index, position) => {
                    const { id } = batch[index] as ReadRequest
                    const text = texts?.[position]
                    if (outcome !== undefined && Result.isFailure(outcome))
                      exits[index] = Exit.fail(fromRedis(groupId)(outcome.failure))
                    else if (text === null || text === undefined) exits[index] = Exit.succeed(Option.none())
                    else {
                      const decoded = decodeText(groupId, id, text)
                      exits[index] = Result.isSuccess(decoded)
                        ? Exit.succeed(Option.some(decoded.success))
                        : Exit.fail(decoded.failure)
                    }
                  })
                })
                return exits
              })
            )
        }
      })
      const get = (groupId: string, id: string) => reads.submit({ groupId, id })

      // concurrent sets of one group go to Redis together, each with its own version and event; two batches of a group
      // in flight at once (concurrent callers need no order among themselves; each batch is atomic, in its order)
      const sets = Combiner.make<SetRequest<A>, Stored<A>, StreamAdapterError, undefined>({
        scope,
        state: () => undefined,
        maxBatchesInFlight: 2,
        weigh: (request) => request.json.length,
        write: (_key, batch) => {
          const groupId = (batch[0] as SetRequest<A>).groupId
          return Effect.gen(function* () {
            const now = yield* Clock.currentTimeMillis
            // the index learns of the deadline first: a crash in between leaves an early hint, never a missed expiry
            const deadline = Expiry.earliestDeadline(
              batch.map((request) => request.ttl),
              now
            )
            if (deadline !== undefined) {
              yield* Outage.retryAfterFailure(Expiry.hint(redis, expiring, expiringMember(name, groupId), deadline), {
                schedule: () => Schedule.upTo(Outage.backoff, { duration: outageTimeout }),
                while: (error) => error.isRetryable
              }).pipe(Effect.mapError(fromRedis(groupId)))
            }
            const items = batch.flatMap((request) => [request.id, request.json, Expiry.deadlineArg(request.ttl, now)])
            return yield* write(groupId, Scripts.set, items)
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

      /**
       * Adds a group to the index of groups (another slot, so not in the group's script). The items are written by
       * then: a failure is retried through an outage, then logged, and never fails the writes (`listGroups` misses
       * the group until its next first item).
       */
      const index = (groupId: string) =>
        redis.send("SADD", indexKey, groupId).pipe(
          Effect.retry({
            schedule: Schedule.upTo(Outage.backoff, { duration: outageTimeout }),
            while: (e) => e.isRetryable
          }),
          Effect.catch((e) => Effect.logWarning(`StreamAdapter: group ${name}/${groupId} not indexed`, e)),
          Effect.asVoid
        )

      const set = (groupId: string, id: string, data: A, setOptions?: SetOptions) =>
        Effect.suspend(() => {
          const invalid = (issue: Schema.SchemaError) =>
            error(
              Reasons.InvalidItem,
              `item ${id} of group ${groupId} does not match the ${name} schema: ${oneLine(issue)}`,
              groupId,
              id
            )
          const encoded = encodeItem(data)
          if (Result.isFailure(encoded)) return Effect.fail(invalid(encoded.failure))
          // what get will return: the item through its schema (extra fields dropped, defaults applied)
          const stored = decodeItem(encoded.success)
          if (Result.isFailure(stored)) return Effect.fail(invalid(stored.failure))
          return sets.submit(keysOf(groupId).items, {
            groupId,
            id,
            data: stored.success,
            json: JSON.stringify(encoded.success),
            ttl: setOptions?.ttl === undefined ? defaultTtl : Expiry.ttlChange(setOptions.ttl)
          })
        })

      const remove = (groupId: string, id: string) =>
        Effect.flatMap(write(groupId, Scripts.remove, [id]), (reply) =>
          reply === null
            ? Effect.succeedNone
            : Effect.asSome(Effect.fromResult(decodeText(groupId, id, reply[3] ?? "")))
        )

      /** A group's stored items, decoded; those that do not decode are left out with a warning, or fail. */
      const decodeGroup = (groupId: string, fields: ReadonlyArray<string>, onInvalid: "skip" | "fail" | undefined) => {
        const items: Array<Item<A>> = []
        const invalid: Array<StreamAdapterError> = []
        for (let at = 0; at < fields.length; at += 2) {
          const id = fields[at] as string
          const decoded = decodeText(groupId, id, fields[at + 1] as string)
          if (Result.isSuccess(decoded)) items.push({ id, data: decoded.success })
          else invalid.push(decoded.failure)
        }
        const firstInvalid = invalid[0]
        if (firstInvalid === undefined) return Effect.succeed(items)
        if (onInvalid === "fail") return Effect.fail(firstInvalid)
        const ids = invalid.map((e) => e.id).join(", ")
        return Effect.as(
          Effect.logWarning(`StreamAdapter: ${invalid.length} item(s) of ${name}/${groupId} do not decode: ${ids}`),
          items
        )
      }

      const getGroup = (groupId: string, groupOptions?: { readonly onInvalid?: "skip" | "fail" | undefined }) =>
        redis.send<ReadonlyArray<string>>("HGETALL", keysOf(groupId).items).pipe(
          Effect.mapError(fromRedis(groupId)),
          Effect.flatMap((fields) => decodeGroup(groupId, fields, groupOptions?.onInvalid))
        )

      const snapshot = (groupId: string, groupOptions?: { readonly onInvalid?: "skip" | "fail" | undefined }) => {
        const keys = keysOf(groupId)
        return redis
          .atomic([
            { name: "HGETALL", args: [keys.items], key: keys.items },
            { name: "HMGET", args: [keys.meta, "epoch", "version"], key: keys.meta }
          ])
          .pipe(
            Effect.flatMap(Effect.forEach(Effect.fromResult)),
            Effect.mapError(fromRedis(groupId)),
            Effect.flatMap(([items, meta]) => {
              const fields = items as ReadonlyArray<string>
              const [epoch, version] = meta as ReadonlyArray<string | null>
              // a group never written is at the empty position: a subscription from it gets the group's first events
              const position: Position = { epoch: epoch ?? "", version: Number(version ?? 0) }
              return Effect.map(decodeGroup(groupId, fields, groupOptions?.onInvalid), (items) => ({ items, position }))
            })
          )
      }

      const listGroups = redis.send<ReadonlyArray<string>>("SMEMBERS", indexKey).pipe(Effect.mapError(fromRedis()))

      // out of the index, unless a set of another instance filled the group again meanwhile (then back in: that set
      // may have indexed it before this removal)
      const clear = (groupId: string) =>
        write(groupId, Scripts.clear, []).pipe(
          Effect.andThen(redis.send("SREM", indexKey, groupId).pipe(Effect.mapError(fromRedis(groupId)))),
          Effect.andThen(redis.send<number>("HLEN", keysOf(groupId).items).pipe(Effect.mapError(fromRedis(groupId)))),
          Effect.flatMap((left) => (left > 0 ? index(groupId) : Effect.void))
        )

      const query = (groupId: string, q: Query<A>) => {
        const problem = Queries.problemOf(q as Query<unknown>)
        if (problem !== undefined) return Effect.fail(error(Reasons.InvalidQuery, problem, groupId))
        return Effect.map(getGroup(groupId), (items) => Queries.run(items, q))
      }

      const send = (channel: { readonly groupId: string; readonly id?: string | undefined }, event: CustomEvent) =>
        Effect.map(
          write(channel.groupId, Scripts.send, [
            channel.id ?? "",
            JSON.stringify({ type: event.type, data: event.data })
          ]),
          positionOf
        )

      /** A raw event as a typed change; undefined for one of another item, or the error of one that does not decode. */
      const changeOf = (
        groupId: string,
        onlyId: string | undefined,
        raw: RawEvent
      ): ChangeEvent<A> | StreamAdapterError | undefined => {
        const position = { epoch: raw.epoch, version: raw.version }
        if (raw.type === "reset") return { type: "reset", position, groupId, reason: raw.reason ?? "restarted" }
        if (raw.type === "clear") return { type: "clear", position, groupId }
        if (onlyId !== undefined && raw.id !== onlyId) return undefined
        if (raw.type === "event") {
          const event = raw.data as CustomEvent
          return { type: "event", position, groupId, ...(raw.id === undefined ? {} : { id: raw.id }), event }
        }
        const id = raw.id ?? ""
        const data = raw.data === undefined ? undefined : decodeValue(groupId, id, raw.data)
        if (data !== undefined && Result.isFailure(data)) return data.failure
        const previous = raw.previous === undefined ? undefined : decodeValue(groupId, id, raw.previous)
        if (previous !== undefined && Result.isFailure(previous)) return previous.failure
        switch (raw.type) {
          case "create":
            return { type: "create", position, groupId, id, data: data?.success as A }
          case "update":
            return { type: "update", position, groupId, id, data: data?.success as A, previous: previous?.success as A }
          case "expired":
            return { type: "expired", position, groupId, id, previous: previous?.success as A }
          default:
            return { type: "delete", position, groupId, id, previous: previous?.success as A }
        }
      }

      /** A batch of raw events as typed changes; those that do not decode are skipped with a warning each. */
      const changesOf =
        (groupId: string, onlyId: string | undefined) =>
        (events: ReadonlyArray<RawEvent>): Effect.Effect<ReadonlyArray<ChangeEvent<A>>> => {
          const changes: Array<ChangeEvent<A>> = []
          const invalid: Array<StreamAdapterError> = []
          for (const raw of events) {
            const change = changeOf(groupId, onlyId, raw)
            if (change !== undefined && "_tag" in change) invalid.push(change)
            else if (change !== undefined) changes.push(change)
          }
          if (invalid.length === 0) return Effect.succeed(changes)
          return Effect.as(
            Effect.forEach(invalid, (bad) => Effect.logWarning(`StreamAdapter: an event ${bad.message}; skipped`), {
              discard: true
            }),
            changes
          )
        }

      const handle: Handle<A> = {
        name,
        get,
        set,
        delete: remove,
        getGroup,
        snapshot,
        listGroups,
        clear,
        query,
        send,
        subscribe: (channel) =>
          subscribe({
            redis,
            keys: keysOf(channel.groupId),
            after: channel.after,
            pageSize: 1_000,
            checkInterval,
            toError: fromRedis(channel.groupId),
            deliver: changesOf(channel.groupId, channel.id)
          })
      }
      return traced("StreamAdapter", handle, ["get", "set", "delete", "getGroup", "snapshot", "clear", "query", "send"])
    }

    return { stream } satisfies Service
  })

/**
 * The live-state service on the `RedisClient` in context.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<StreamAdapter, never, RedisClient.RedisClient> =>
  Layer.effect(StreamAdapter, make(options))

/**
 * Connection settings of {@link layerWithOwnClient}: Motia's adapter configuration, Effect-native (the reconnect strategy is a
 * `Schedule`).
 *
 * @since 0.1.0
 */
export interface ConnectionOptions extends Options {
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly username?: string | undefined
  readonly password?: RedisClient.CommonOptions["password"]
  readonly database?: number | undefined
  readonly connectTimeout?: RedisClient.CommonOptions["connectTimeout"]
  readonly reconnectSchedule?: RedisClient.CommonOptions["reconnectSchedule"]
}

/**
 * The live-state service with a Redis connection of its own, from Motia's configuration options (defaults
 * `localhost:6379`, database 0, connect timeout 10 s).
 *
 * @since 0.1.0
 */
export const layerWithOwnClient = (options: ConnectionOptions = {}): Layer.Layer<StreamAdapter, RedisError> =>
  layer(options).pipe(
    Layer.provide(
      RedisClient.layer({
        host: options.host ?? "localhost",
        port: options.port ?? 6379,
        username: options.username,
        password: options.password,
        db: options.database ?? 0,
        connectTimeout: options.connectTimeout ?? "10 seconds",
        reconnectSchedule: options.reconnectSchedule
      })
    )
  )
