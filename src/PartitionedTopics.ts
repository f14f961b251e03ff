/**
 * Partitioned topics: one topic spread over `N` streams (its partitions) under their own hash tags, so a hot topic
 * uses every master of a Cluster, and handled in order per key by any number of workers.
 *
 * - `create(topic, n)` stores the count with the topic (every publisher and consumer reads it: nobody configures it
 *   twice); a different count already stored is a `PartitionMismatch`. `grow(topic, n)` adds partitions.
 * - `publish(topic, messages, { key })` appends to the key's partition (`crc16(key) mod N`, the Cluster's own key
 *   hash, so a producer in any language picks the same one); the key travels in the metadata (`partition_key`).
 *   Without a key, publishes go round-robin over the partitions. Each partition is an ordinary topic (`T#i…`): the
 *   `Publisher`'s retention applies to each, and its dead letters are its own (`T#i…:dead`).
 * - `consume(topic, handler, { group, concurrency })`: within a group each partition is owned by one member at a time
 *   (a lease in Redis with a fencing token, renewed every fifth of `leaseTime`; taken over when its owner dies or
 *   leaves; moved when members join or leave). Messages of one key are handled one after another in publish order,
 *   different keys up to `concurrency` at once. A failing handler is retried in place after the redelivery delay (the
 *   key's later messages wait) and dead-lettered after `maxDeliveries`. A partition moving never lets a later message
 *   of a key start before an earlier one finished: the old owner stops and lets its handlers finish before it releases
 *   the lease, and the new owner first handles what the old one left unsettled, in order.
 * - `consumeBatches` hands the handler up to `maxBatch` messages of one partition (waiting at most `maxWait`),
 *   acknowledged together.
 *
 * Limits: an owner that cannot renew its lease in time (Redis unreachable or hung) stops its partitions before the
 * lease can expire, interrupting its handlers; but a process frozen mid-handler (a long GC pause, SIGSTOP) can finish
 * a side effect after its partition moved on. The fencing token in each delivery lets the systems a handler writes to
 * reject such a stale owner (keep the highest token seen per partition). Ordering across `grow` holds only for keys
 * that stay in their partition.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, type Scope, Semaphore } from "effect"
import * as RedisClient from "./RedisClient.js"
import * as Publisher from "./Publisher.js"
import type * as Subscriber from "./Subscriber.js"
import { fromRedis, InvalidMessage, type Message, MessagingError, PartitionMismatch } from "./Message.js"
import * as Names from "./internal/names.js"
import * as Outage from "./internal/outage.js"
import * as Subscription from "./internal/messaging/subscription.js"
import * as Layouts from "./internal/messaging/partitions/layout.js"
import * as Member from "./internal/messaging/partitions/member.js"
import type { Handling, PartitionContext } from "./internal/messaging/partitions/partition.js"
import { inspectPartitions } from "./internal/messaging/partitions/inspect.js"

/**
 * A partitioned topic's layout: the topics of its partitions (each an ordinary topic), in order.
 *
 * @since 0.1.0
 */
export interface Layout {
  readonly topic: string
  /** The topics of its partitions, in order: their number is the count. */
  readonly partitions: ReadonlyArray<string>
}

/**
 * A message as a partitioned consumer's handler gets it. The handler's success acknowledges it; a failure retries it
 * in place.
 *
 * @since 0.1.0
 */
export interface Delivery {
  /** The entry id in its partition's stream. */
  readonly id: string
  /** The partitioned topic. */
  readonly topic: string
  /** The partition's index. */
  readonly partition: number
  /** The key it was published with; undefined when none. */
  readonly key: string | undefined
  readonly message: Message
  /** How many times it has been delivered (1 the first time). */
  readonly deliveries: number
  /**
   * The fencing token of this member's lease on the partition: larger for every new owner. A system the handler
   * writes to can reject writes with a token below the highest it has seen for the partition (a stale owner).
   */
  readonly fence: number
}

/**
 * Options of `consume`: a subscription's (group, batch and in-flight sizes, redelivery, dead letters), per partition.
 *
 * @since 0.1.0
 */
export interface ConsumeOptions extends Omit<Subscriber.SubscribeOptions, "consumer"> {
  /** This member's name in the group. Default `{hostname}-{pid}-{n}`, unique per call. */
  readonly member?: string | undefined
  /** Handlers (or batches) running at once in this member, across its partitions and keys. Default 1. */
  readonly concurrency?: number | undefined
  /**
   * How long a partition's lease lasts unrenewed (renewed every fifth of it): a dead member's partitions are taken
   * over after about this long. Default 10 seconds.
   */
  readonly leaseTime?: Duration.Input | undefined
  /** How long a partition given up (or an interrupted `consume`) lets running handlers finish. Default 10 seconds. */
  readonly drainTimeout?: Duration.Input | undefined
}

/**
 * Options of `consumeBatches`.
 *
 * @since 0.1.0
 */
export interface BatchOptions extends ConsumeOptions {
  /** Most messages per batch. Default 100. */
  readonly maxBatch?: number | undefined
  /** The longest wait for a batch to fill after its first message. Default 50 milliseconds. */
  readonly maxWait?: Duration.Input | undefined
}

/**
 * A partition as `inspect` sees it.
 *
 * @since 0.1.0
 */
export interface PartitionState {
  readonly partition: number
  /** The partition's topic (stream `{prefix}{topic}`). */
  readonly topic: string
  /** Its Cluster slot. */
  readonly slot: number
  /** The member holding its lease, and the lease's fencing token; undefined when none does. */
  readonly owner: string | undefined
  readonly fence: number | undefined
  /** Entries the group has not read (-1 when Redis cannot tell), and entries read but not acknowledged. */
  readonly lag: number
  readonly pending: number
}

/**
 * The `PartitionedTopics` service.
 *
 * @since 0.1.0
 */
export interface Service {
  /** Creates `topic` with `partitions` partitions, or returns its layout when it has that many already. */
  readonly create: (topic: string, partitions: number) => Effect.Effect<Layout, MessagingError>
  /** Grows `topic` to `partitions` partitions (never fewer); keys may move to the new ones (see the module). */
  readonly grow: (topic: string, partitions: number) => Effect.Effect<Layout, MessagingError>
  /** The stored layout of `topic`; a `PartitionMismatch` (stored 0) when it was never created. */
  readonly layout: (topic: string) => Effect.Effect<Layout, MessagingError>
  /** Appends `messages`, in order, to the partition of `key` (round-robin without one); returns their entry ids. */
  readonly publish: (
    topic: string,
    messages: Message | ReadonlyArray<Message>,
    options?: { readonly key?: string | undefined }
  ) => Effect.Effect<ReadonlyArray<string>, MessagingError>
  /** Handles the messages of `topic` as a member of `options.group` until interrupted (see the module). */
  readonly consume: <E, R>(
    topic: string,
    handler: (delivery: Delivery) => Effect.Effect<void, E, R>,
    options: ConsumeOptions
  ) => Effect.Effect<never, MessagingError, R>
  /** As `consume`, the handler taking a partition's messages in batches. */
  readonly consumeBatches: <E, R>(
    topic: string,
    handler: (batch: ReadonlyArray<Delivery>) => Effect.Effect<void, E, R>,
    options: BatchOptions
  ) => Effect.Effect<never, MessagingError, R>
  /** Each partition's slot, owner in `group`, fencing token, lag and pending count. */
  readonly inspect: (topic: string, group: string) => Effect.Effect<ReadonlyArray<PartitionState>, MessagingError>
}

/**
 * The partitioned topics service.
 *
 * @since 0.1.0
 */
export class PartitionedTopics extends Context.Service<PartitionedTopics, Service>()(
  "effect-redis-streams/PartitionedTopics"
) {}

/**
 * Options of {@link layer}.
 *
 * @since 0.1.0
 */
export interface Options {
  /**
   * Prefix of the topics' keys. Default: the `Publisher`'s, which it must be (publishes go through it); another one
   * is a defect when the layer is built (its messages would never reach its consumers).
   */
  readonly keyPrefix?: string | undefined
}

/** The most partitions a topic may have. */
const maxPartitions = 1024

/** How long a process trusts the layout it read (a `grow` elsewhere is seen within this). */
const layoutRefreshMillis = 1000

/**
 * Builds the service on the `RedisClient` and `Publisher` in context.
 *
 * @since 0.1.0
 */
export const make = (
  options: Options = {}
): Effect.Effect<Service, never, RedisClient.RedisClient | Publisher.Publisher | Scope.Scope> =>
  Effect.gen(function* () {
    const redis = yield* RedisClient.RedisClient
    const publisher = yield* Publisher.Publisher
    const keyPrefix = options.keyPrefix ?? publisher.keyPrefix
    if (keyPrefix !== publisher.keyPrefix) {
      return yield* Effect.die(
        new Error(
          `PartitionedTopics: keyPrefix "${keyPrefix}" is not the Publisher's ("${publisher.keyPrefix}"): ` +
            "its messages would never reach its consumers"
        )
      )
    }
    const outage = Outage.make("PartitionedTopics")
    const known = new Map<string, { readonly layout: Layout; readonly readAt: number }>()
    const nextPartition = new Map<string, number>()

    const invalid = (topic: string, message: string) =>
      new MessagingError({ reason: new InvalidMessage({ message }), topic })
    const checked = (topic: string, partitions?: number) => {
      if (!Names.isSafe(topic)) return Effect.fail(invalid(topic, `a partitioned topic's name has ${Names.rule}`))
      if (partitions !== undefined && !(Number.isInteger(partitions) && partitions >= 1 && partitions <= maxPartitions))
        return Effect.fail(invalid(topic, `a topic has 1 to ${maxPartitions} partitions, not ${partitions}`))
      return Effect.void
    }
    const remember = (topic: string, fields: ReadonlyArray<string>, expected: number | undefined) => {
      const layout = Layouts.layoutOf(topic, fields)
      const stored = layout?.partitions.length ?? 0
      if (layout === undefined || (expected !== undefined && stored !== expected)) {
        const message =
          layout === undefined
            ? `${topic} is not a partitioned topic (create it first)`
            : `${topic} has ${stored} partitions, not ${expected}`
        return Effect.fail(new MessagingError({ reason: new PartitionMismatch({ message, stored, expected }), topic }))
      }
      known.set(topic, { layout, readAt: Date.now() })
      return Effect.succeed(layout)
    }
    const store = (topic: string, partitions: number, grow: boolean) =>
      Effect.andThen(checked(topic, partitions), () =>
        redis
          .eval(
            Layouts.store,
            [Layouts.layoutKeyOf(keyPrefix, topic)],
            [
              partitions,
              ...Array.from({ length: partitions }, (_, i) => Layouts.partitionTopic(topic, i)),
              ...(grow ? ["grow"] : [])
            ]
          )
          .pipe(
            Effect.mapError(fromRedis(topic)),
            Effect.flatMap((fields) => remember(topic, fields, partitions))
          )
      )
    const readLayout = (topic: string) =>
      Effect.andThen(checked(topic), () =>
        redis.send<Array<string>>("HGETALL", Layouts.layoutKeyOf(keyPrefix, topic)).pipe(
          Effect.mapError(fromRedis(topic)),
          Effect.flatMap((fields) => remember(topic, fields, undefined))
        )
      )
    const layout = (topic: string) =>
      Effect.suspend(() => {
        const cached = known.get(topic)
        return cached !== undefined && Date.now() - cached.readAt < layoutRefreshMillis
          ? Effect.succeed(cached.layout)
          : readLayout(topic)
      })

    const publish: Service["publish"] = (topic, messages, publishOptions) =>
      Effect.flatMap(layout(topic), ({ partitions }) => {
        const list = Array.isArray(messages) ? (messages as ReadonlyArray<Message>) : [messages as Message]
        const key = publishOptions?.key
        if (key === undefined) {
          const index = (nextPartition.get(topic) ?? 0) % partitions.length
          nextPartition.set(topic, index + 1)
          return publisher.publish(partitions[index] as string, ...list)
        }
        const keyed = list.map((message) => ({
          ...message,
          metadata: { ...message.metadata, [Layouts.keyMetadata]: key }
        }))
        return publisher.publish(partitions[Layouts.partitionOf(key, partitions.length)] as string, ...keyed)
      })

    const runMember = (
      topic: string,
      consumeOptions: ConsumeOptions,
      handling: Handling
    ): Effect.Effect<never, MessagingError> =>
      Effect.scoped(
        Effect.gen(function* () {
          const { partitions } = yield* readLayout(topic)
          const concurrency = Math.max(1, consumeOptions.concurrency ?? 1)
          const subscription = Subscription.resolve({
            ...consumeOptions,
            maxInFlight: consumeOptions.maxInFlight ?? Math.max(100, 2 * concurrency)
          })
          const context: PartitionContext = {
            redis,
            keyPrefix,
            topic,
            partitions,
            storedPartitions: redis
              .send<Array<string>>("HGETALL", Layouts.layoutKeyOf(keyPrefix, topic))
              .pipe(Effect.map((fields) => Layouts.layoutOf(topic, fields)?.partitions ?? [])),
            subscription,
            drainMillis: Duration.toMillis(Duration.fromInputUnsafe(consumeOptions.drainTimeout ?? "10 seconds")),
            outage,
            permits: yield* Semaphore.make(concurrency),
            workers: concurrency,
            handling
          }
          const leaseMillis = Duration.toMillis(Duration.fromInputUnsafe(consumeOptions.leaseTime ?? "10 seconds"))
          return yield* Member.run(context, consumeOptions.member ?? Subscription.uniqueConsumerName(), leaseMillis)
        })
      )

    return {
      create: (topic, partitions) => store(topic, partitions, false),
      grow: (topic, partitions) => store(topic, partitions, true),
      layout,
      publish,
      // the handlers run in fibers forked from the caller's: they have its services (`R`)
      consume: <E, R>(
        topic: string,
        handler: (delivery: Delivery) => Effect.Effect<void, E, R>,
        consumeOptions: ConsumeOptions
      ) =>
        runMember(topic, consumeOptions, {
          _tag: "each",
          handler: handler as (delivery: Delivery) => Effect.Effect<void, unknown>
        }) as Effect.Effect<never, MessagingError, R>,
      consumeBatches: <E, R>(
        topic: string,
        handler: (batch: ReadonlyArray<Delivery>) => Effect.Effect<void, E, R>,
        batchOptions: BatchOptions
      ) =>
        runMember(topic, batchOptions, {
          _tag: "batch",
          handler: handler as (batch: ReadonlyArray<Delivery>) => Effect.Effect<void, unknown>,
          maxBatch: Math.max(1, batchOptions.maxBatch ?? 100),
          maxWaitMillis: Duration.toMillis(Duration.fromInputUnsafe(batchOptions.maxWait ?? "50 millis"))
        }) as Effect.Effect<never, MessagingError, R>,
      inspect: (topic, group) =>
        Effect.flatMap(readLayout(topic), (found) =>
          inspectPartitions(redis, keyPrefix, found, group).pipe(Effect.mapError(fromRedis(topic)))
        )
    } satisfies Service
  })

/**
 * The partitioned topics service on the `RedisClient` and `Publisher` in context.
 *
 * @since 0.1.0
 */
export const layer = (
  options: Options = {}
): Layer.Layer<PartitionedTopics, never, RedisClient.RedisClient | Publisher.Publisher> =>
  Layer.effect(PartitionedTopics, make(options))
