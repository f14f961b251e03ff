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

import { Context, Duration, Effect, Layer, type Option, type Schema, type Scope, type Stream } from "effect"
import * as RedisClient from "./RedisClient.js"
import type { StreamAdapterError } from "./StreamAdapterError.js"
import { changesOf } from "./internal/adapter/changes.js"
import * as StreamContext from "./internal/adapter/context.js"
import { expiringKey, groupKeys, parseExpiringMember } from "./internal/adapter/keys.js"
import * as Reads from "./internal/adapter/reads.js"
import * as Scripts from "./internal/adapter/scripts.js"
import { subscribe } from "./internal/adapter/subscription.js"
import * as Writes from "./internal/adapter/writes.js"
import * as Expiry from "./internal/expiry.js"
import { makeClock } from "./internal/liveTail.js"
import * as Names from "./internal/names.js"
import * as RequestIds from "./internal/requestIds.js"
import { traced } from "./internal/spans.js"
import type { RedisError } from "./RedisError.js"

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
   * How often a subscriber whose group was quiet (no change heard since the previous tick) checks the group's version,
   * to catch a change whose pub/sub message was lost when no later change revealed the gap: found within two
   * intervals. Default 5 seconds.
   */
  readonly checkInterval?: Duration.Input | undefined
  /**
   * The most change messages (in bytes) a subscription holds for a subscriber that does not keep up: past that, it
   * reads the rest from the change log where it stopped (no gap, no duplicate; a `reset` when the log no longer holds
   * them), and the metric `stream_adapter_live_overflows` counts it. Default 4 MiB.
   */
  readonly liveBufferBytes?: number | undefined
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
    const prefix = options.keyPrefix ?? "motia:stream:"
    const settings: StreamContext.AdapterSettings = {
      redis,
      scope: yield* Effect.scope,
      prefix,
      logLength: options.changeLogLength ?? 10_000,
      clock: yield* makeClock(Duration.fromInputUnsafe(options.checkInterval ?? "5 seconds")),
      liveBufferBytes: options.liveBufferBytes ?? 4 * 1024 * 1024,
      outageTimeout: Duration.fromInputUnsafe(options.outageTimeout ?? "10 seconds"),
      expiring: expiringKey(prefix)
    }

    // every instance sweeps the groups whose items expired (atomically: each expired item is announced once)
    yield* Expiry.sweeper({
      redis,
      index: settings.expiring,
      interval: Duration.fromInputUnsafe(options.expiryInterval ?? "1 second"),
      component: "StreamAdapter expiry",
      sweep: (member, now) => {
        const { stream, groupId } = parseExpiringMember(member)
        const keys = groupKeys(prefix, stream, groupId)
        return redis
          .eval(Scripts.expire, StreamContext.scriptKeys(keys), [
            keys.channel,
            settings.logLength,
            RequestIds.next(),
            now,
            expiredPerSweep
          ])
          .pipe(Effect.map((next) => (next === null ? undefined : Number(next))))
      }
    })

    const stream = <A>(definition: Definition<A>): Handle<A> => {
      const context = StreamContext.make(settings, definition)
      const reads = Reads.make(context)
      const writes = Writes.make(context)
      const handle: Handle<A> = {
        name: definition.name,
        ...reads,
        set: writes.set,
        delete: writes.remove,
        clear: writes.clear,
        send: writes.send,
        subscribe: (channel) =>
          subscribe({
            redis,
            keys: context.keysOf(channel.groupId),
            after: channel.after,
            pageSize: 1_000,
            clock: settings.clock,
            maxInboxBytes: settings.liveBufferBytes,
            toError: context.fromRedis(channel.groupId),
            deliver: changesOf(context, channel.groupId, channel.id)
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
