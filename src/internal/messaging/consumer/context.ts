/**
 * What every part of a consumer shares: who it is (topic, group, consumer name), its keys, the queue its received
 * messages go to, its in-flight slots, and how a Redis failure becomes the topic's error and a count a metric.
 *
 * @internal
 */
import { type Cause, type Duration, Effect, Metric, Queue } from "effect"
import type * as RedisClient from "../../../RedisClient.js"
import type { RedisError } from "../../../RedisError.js"
import type { Received } from "../../../Subscriber.js"
import { fromRedis, type MessagingError } from "../../../Message.js"
import type * as Outage from "../../outage.js"
import { deadTopicOf, keyOf, retryKeyOf } from "../wire.js"
import * as Metrics from "../metrics.js"
import * as Slots from "./slots.js"

/** What a consumer needs. */
export interface ConsumerOptions {
  readonly redis: RedisClient.Service
  readonly keyPrefix: string
  readonly topic: string
  readonly group: string
  readonly consumer: string
  readonly start: "0" | "$"
  /** The longest wait for new entries without a wake-up. */
  readonly pollInterval: Duration.Duration
  readonly batchCount: number
  readonly maxInFlight: number
  readonly claimIdleTime: Duration.Duration
  readonly claimInterval: Duration.Duration
  /** Deliveries after which a message is dead-lettered; undefined: never. */
  readonly maxDeliveries: number | undefined
  readonly deadLetterMaxLength: number
  /** The delay before redelivering a message nacked after its n-th delivery. */
  readonly redeliveryDelay: (deliveries: number) => Duration.Duration
  /** Where the consumers of a service report their outages. */
  readonly outage: Outage.OutageLog
  /**
   * Leave what this consumer holds unsettled pending under its name when it stops, for the next consumer of the same
   * name (a partition's next owner reads it first, in order), instead of handing it back to the group.
   */
  readonly keepPending?: boolean | undefined
  /** Read only while the lease at key `lease` has the value `holder` (a partition's owner); else read nothing. */
  readonly fence?: { readonly lease: string; readonly holder: string } | undefined
}

/** A consumer's shared parts (see the module). */
export interface Context {
  readonly options: ConsumerOptions
  readonly redis: RedisClient.Service
  readonly topic: string
  readonly group: string
  readonly consumer: string
  /** The topic's stream, its dead letters' stream, and the group's retry set. */
  readonly key: string
  readonly deadKey: string
  readonly retryKey: string
  /** Received messages, in delivery order. */
  readonly messages: Queue.Queue<Received, MessagingError | Cause.Done>
  readonly slots: Slots.Slots
  /** A failed Redis call as the topic's error. */
  readonly toError: (error: RedisError) => MessagingError
  /** Adds `n` to the series of `metric` for this topic and group. */
  readonly count: (metric: Metric.Metric<number, unknown>, n: number) => Effect.Effect<void>
  /** Sets the series of `gauge` for this topic and group. */
  readonly gauge: (gauge: Metric.Metric<number, unknown>, value: number) => Effect.Effect<void>
}

/** The shared parts of the consumer `options` describe. */
export const make = (options: ConsumerOptions): Effect.Effect<Context> =>
  Effect.map(Queue.unbounded<Received, MessagingError | Cause.Done>(), (messages) => {
    const { topic, group } = options
    const key = keyOf(options.keyPrefix, topic)
    const attributes = { topic, group }
    const series = new Map<Metric.Metric<number, unknown>, Metric.Metric<number, unknown>>()
    const seriesOf = (metric: Metric.Metric<number, unknown>) => {
      let tagged = series.get(metric)
      if (tagged === undefined) {
        tagged = Metric.withAttributes(metric, attributes)
        series.set(metric, tagged)
      }
      return tagged
    }
    return {
      options,
      redis: options.redis,
      topic,
      group,
      consumer: options.consumer,
      key,
      deadKey: keyOf(options.keyPrefix, deadTopicOf(topic)),
      retryKey: retryKeyOf(key, group),
      messages,
      slots: Slots.make(options.maxInFlight),
      toError: fromRedis(topic),
      count: (metric, n) => (n === 0 ? Effect.void : Metric.update(seriesOf(metric), n)),
      gauge: (gauge, value) => Metric.update(seriesOf(gauge), value)
    }
  })

/** Sends a command; a failure as the topic's error. */
export const send = <A>(context: Context, command: string, ...args: ReadonlyArray<string | number>) =>
  context.redis.send<A>(command, ...args).pipe(Effect.mapError(context.toError))

/** Entries found deleted from the stream while still pending (the group never handled them): counted and logged. */
export const noteDropped = (context: Context, deleted: number, where: string): Effect.Effect<void> =>
  deleted === 0
    ? Effect.void
    : Effect.andThen(
        context.count(Metrics.dropped, deleted),
        Effect.logWarning(
          `Subscriber: ${deleted} pending message(s) of ${context.topic}/${context.group} were deleted from the ` +
            `stream before they were handled (${where}): trimmed or deleted by hand`
        )
      )
