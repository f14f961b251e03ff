/**
 * Publishes messages to topics: Redis Streams that consumer groups read (see `Subscriber`).
 *
 * `publish(topic, ...messages)` appends the messages in order with one script call. Concurrent publishes to one topic
 * are combined into one call (group commit), each caller getting its own entry ids. A topic `T` is the stream
 * `{keyPrefix}{T}` (its name is a hash tag).
 *
 * Retention never loses a message a group has not handled: the same call trims only entries every group of the topic
 * has acknowledged (none pending, none unread), beyond the newest `maxLength` (default 10,000) and older than `maxAge`.
 * A lagging group keeps what it needs. Only `hardMaxLength`, when set, trims unhandled entries; each group's loss is
 * then counted (`messaging_dropped`) and logged.
 *
 * @since 0.1.0
 */

import { Context, Duration, Effect, Exit, Layer, Metric, type Scope } from "effect"
import * as RedisClient from "./RedisClient.js"
import { Closed, RedisError } from "./RedisError.js"
import * as Combiner from "./internal/combiner.js"
import * as Metrics from "./internal/messaging/metrics.js"
import * as Scripts from "./internal/messaging/scripts.js"
import { spanned } from "./internal/spans.js"
import * as Trace from "./internal/trace.js"
import { fieldsOf, keyOf, wakeChannelOf } from "./internal/messaging/wire.js"
import { fromRedis, type Message, type MessagingError } from "./Message.js"

/**
 * Options of {@link layer}.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Prefix of the topics' stream keys. Default none. Must match the subscribers'. */
  readonly keyPrefix?: string | undefined
  /**
   * Keep about this many entries of each topic once every group has handled them: older handled entries are trimmed
   * as messages are published (when the topic is 10% over); entries a group still needs are never trimmed by it.
   * Default 10,000; 0 for no limit.
   */
  readonly maxLength?: number | undefined
  /** Trim handled entries older than this (as `maxLength`, never what a group still needs). Default: no age limit. */
  readonly maxAge?: Duration.Input | undefined
  /**
   * A hard cap: the topic never holds more entries, even unhandled ones. What a group loses to it is acknowledged for
   * it, counted (`messaging_dropped`, per topic and group) and logged. Default: none.
   */
  readonly hardMaxLength?: number | undefined
  /**
   * How long a publish keeps trying through an outage or a failover. Its retries are idempotent (a request id the
   * script remembers): a publish whose reply was lost is appended once. After that it fails with a retryable `Redis`
   * reason, or `OutcomeUnknown` when an attempt's reply was lost (the messages may be in the topic). Default 10
   * seconds.
   */
  readonly outageTimeout?: Duration.Input | undefined
}

/**
 * The `Publisher` service.
 *
 * @since 0.1.0
 */
export interface Service {
  /** The prefix of the topics' stream keys (`Options.keyPrefix`). */
  readonly keyPrefix: string
  /** Appends `messages` to `topic`, in order; returns their entry ids. */
  readonly publish: (
    topic: string,
    ...messages: ReadonlyArray<Message>
  ) => Effect.Effect<ReadonlyArray<string>, MessagingError>
}

/**
 * The publisher service.
 *
 * @since 0.1.0
 */
export class Publisher extends Context.Service<Publisher, Service>()("effect-redis-streams/Publisher") {}

const published = Metric.counter("messaging_published", { description: "messages published" })

/** The default of `maxLength`: handled entries kept per topic. */
const defaultMaxLength = 10_000

/** Counts and logs what groups lost to the hard cap (the publish script's `{ group, count, … }`). */
const reportLost = (topic: string, lost: ReadonlyArray<string | number>) =>
  Effect.forEach(
    Array.from({ length: lost.length / 2 }, (_, i) => [String(lost[2 * i]), Number(lost[2 * i + 1])] as const),
    ([group, count]) =>
      Effect.andThen(
        Metric.update(Metric.withAttributes(Metrics.dropped, { topic, group }), count),
        Effect.logWarning(
          `Publisher: the hard cap (hardMaxLength) of ${topic} trimmed ${count} message(s) group ${group} had not handled`
        )
      ),
    { discard: true }
  )

interface Request {
  readonly topic: string
  readonly messages: ReadonlyArray<Message>
  /** The current span's context, added to the messages' metadata (unless one carries its own). */
  readonly traceparent: string | undefined
}

/**
 * Builds the publisher on the `RedisClient` in context.
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<Service, never, RedisClient.RedisClient | Scope.Scope> =>
  Effect.gen(function* () {
    const redis = yield* RedisClient.RedisClient
    const prefix = options.keyPrefix ?? ""
    const count = (n: number | undefined, fallback: number) => Math.max(0, Math.floor(n ?? fallback))
    const maxLength = count(options.maxLength, defaultMaxLength)
    const maxAge =
      options.maxAge === undefined ? 0 : Math.round(Duration.toMillis(Duration.fromInputUnsafe(options.maxAge)))
    const hardMaxLength = count(options.hardMaxLength, 0)
    const outageTimeout = Duration.fromInputUnsafe(options.outageTimeout ?? "10 seconds")
    const combiner = Combiner.make<Request, ReadonlyArray<string>, MessagingError, undefined>({
      scope: yield* Effect.scope,
      state: () => undefined,
      weigh: (request) => request.messages.reduce((bytes, message) => bytes + message.payload.byteLength, 0),
      closed: (request) =>
        fromRedis(request.topic)(
          new RedisError({
            op: "Publisher.publish",
            reason: new Closed({ message: "the Publisher's layer is closed" })
          })
        ),
      write: (key, batch) => {
        const topic = (batch[0] as Request).topic
        const args: Array<string | number | Buffer> = [maxLength, wakeChannelOf(key), maxAge, hardMaxLength]
        for (const request of batch) {
          for (const message of request.messages) args.push(...fieldsOf(message, request.traceparent))
        }
        return redis.evalIdempotent(Scripts.publish, [key], args, { retryWithin: outageTimeout }).pipe(
          Effect.tap(([ids, lost]) =>
            Effect.andThen(
              Metric.update(Metric.withAttributes(published, { topic }), ids.length),
              reportLost(topic, lost)
            )
          ),
          Effect.map(([ids]) => ids),
          Effect.map((ids) => {
            let offset = 0
            return batch.map((request) => {
              const mine = ids.slice(offset, offset + request.messages.length)
              offset += request.messages.length
              return Exit.succeed(mine)
            })
          }),
          Effect.catch((error) => Effect.succeed(batch.map(() => Exit.fail(fromRedis(topic)(error)))))
        )
      }
    })
    return {
      keyPrefix: prefix,
      publish: (topic, ...messages) =>
        messages.length === 0
          ? Effect.succeed([])
          : spanned(
              Effect.flatMap(Trace.currentTraceparent, (traceparent) =>
                combiner.submit(keyOf(prefix, topic), { topic, messages, traceparent })
              ),
              "Publisher.publish",
              {
                kind: "producer",
                attributes: { "messaging.destination.name": topic, "messaging.batch.message_count": messages.length }
              }
            )
    } satisfies Service
  })

/**
 * The publisher on the `RedisClient` in context.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<Publisher, never, RedisClient.RedisClient> =>
  Layer.effect(Publisher, make(options))
