/**
 * At-least-once consumption of topics through Redis consumer groups, with claim of messages left by dead consumers,
 * redelivery on `nack`, dead letters, backpressure and graceful shutdown (natricine's redisstream, doing what its
 * README promises: its own code never claims, and its nack does nothing).
 *
 * - `subscribe(topic, options)`: a `Stream` of received messages, each with `ack`, `nack` and `deadLetter`. Consumers
 *   of one group compete (each message goes to one of them); every group gets every message; one consumer receives a
 *   topic's messages in order.
 * - `consume(topic, handler, options)`: runs `handler` on each message with `concurrency` at a time; acknowledges on
 *   success, gives back on a typed failure or a defect (a handler can never kill the consumer) for a redelivery
 *   after `redeliveryDelay` (a backoff kept in Redis), dead-letters after `maxDeliveries` with the error. Interrupting
 *   it stops reading, hands the messages it received but did not start back to the group at once (another consumer
 *   takes them within milliseconds, not after `claimIdleTime`), lets the running handlers finish within
 *   `drainTimeout`, hands back what is still unsettled then, and leaves the group. With a tracing backend installed
 *   (a `Tracer` other than Effect's native one), each handler runs in a `Subscriber.handle {topic}` span whose parent
 *   is the publisher's span (W3C traceparent in the metadata); without one, no span is made per message (nobody would
 *   see it) and the handler runs under the publisher's span context, so what it publishes still continues the trace.
 * - Dead letters of topic `T` go to the topic `T:dead` (same hash tag: the move is one atomic script), each with
 *   fields `dead_reason`, `dead_topic`, `dead_id`, `dead_group`, `dead_consumer`, `dead_deliveries`, `dead_at`, and
 *   `dead_error`: a handler's error as JSON (tag, message and fields; at most 4 KiB; credential-like fields redacted).
 *
 * Subscriptions hold no connection of their own: they read without blocking on the client's shared connection and
 * are woken by the publishes to their topic, heard on the client's one subscriber connection.
 *
 * @since 0.1.0
 */

import { Cause, Context, Duration, Effect, Exit, Fiber, Layer, Queue, Schedule, Scope, Stream } from "effect"
import * as RedisClient from "./RedisClient.js"
import * as Consumer from "./internal/messaging/consumer.js"
import * as Failure from "./internal/messaging/failure.js"
import * as Outage from "./internal/outage.js"
import { inTrace } from "./internal/messaging/handlerSpan.js"
import { deadTopicOf } from "./internal/messaging/wire.js"
import * as Subscription from "./internal/messaging/subscription.js"
import type { DeadLetterInfo, Message, MessagingError } from "./Message.js"

/**
 * A message as a subscriber receives it: its entry id, how many times it has been delivered (1 the first time), and
 * what to do with it. An unacknowledged message is delivered again: after `nack`, once its retry is due; at once to
 * another consumer when this one stops before starting it; after `claimIdleTime` when this one dies.
 *
 * @since 0.1.0
 */
export interface Received {
  readonly id: string
  readonly topic: string
  readonly message: Message
  readonly deliveries: number
  /** For an entry of a dead-letter topic: why it got there, from where, after how many deliveries. */
  readonly deadLettered: DeadLetterInfo | undefined
  /** Acknowledges the message: it will not be delivered again. */
  readonly ack: Effect.Effect<void, MessagingError>
  /**
   * Gives the message back: it is delivered again after `delay` (default: the subscription's `redeliveryDelay` for
   * this delivery count), to whichever consumer of the group finds it due; with a delay of 0, to this consumer at
   * once. Past `maxDeliveries` it goes to the dead-letter stream instead.
   */
  readonly nack: (options?: { readonly delay?: Duration.Input | undefined }) => Effect.Effect<void, MessagingError>
  /**
   * Moves the message to the dead-letter stream with `reason` (and `error`, kept as JSON: its tag, message and fields,
   * at most 4 KiB, fields named like credentials redacted), acknowledging it, in one step.
   */
  readonly deadLetter: (reason: string, options?: { readonly error?: unknown }) => Effect.Effect<void, MessagingError>
}

/**
 * Options of a subscription.
 *
 * @since 0.1.0
 */
export interface SubscribeOptions {
  /** The consumer group. Created on first use (MKSTREAM), and again if the stream was deleted. */
  readonly group: string
  /** This consumer's name in the group. Default `{hostname}-{pid}-{n}`, unique per subscription. */
  readonly consumer?: string | undefined
  /** Where a new group starts: `0` (every message in the stream, the default) or `$` (new ones only). */
  readonly start?: "0" | "$" | undefined
  /**
   * The longest wait for new messages without a wake-up. `Publisher` wakes the subscribers of a topic as it
   * publishes, so this only bounds how late entries added by other writers (a plain `XADD`) are seen. Default 1 second.
   */
  readonly pollInterval?: Duration.Input | undefined
  /** Most messages per read. Default 100. */
  readonly batchCount?: number | undefined
  /** Most messages held unacknowledged; reading pauses at this many. Default 100. */
  readonly maxInFlight?: number | undefined
  /** A message pending this long for a consumer is taken over by a live one. Default 30 seconds. */
  readonly claimIdleTime?: Duration.Input | undefined
  /** How often to look for such messages. Default 5 seconds (and at most `claimIdleTime`). */
  readonly claimInterval?: Duration.Input | undefined
  /** Deliveries after which a message goes to the dead letters. Default 10. */
  readonly maxDeliveries?: number | undefined
  /** Trim dead-letter streams to about this many entries. Default: no trimming. */
  readonly deadLetterMaxLength?: number | undefined
  /**
   * The delay before a failed (nacked) message is delivered again: a duration, or a schedule whose n-th delay applies
   * after the n-th delivery; 0 for at once. The delay is kept in Redis (the message waits, pending for the group's
   * `~retry` holder, in a sorted set by when it is due): a consumer restart neither loses nor hurries it, the
   * messages behind it go on meanwhile, and any consumer of the group delivers it when it is due. Default
   * {@link defaultRedeliveryDelay}: 100 ms doubling each delivery, at most 30 s, jittered (10 deliveries span about
   * 50 s).
   */
  readonly redeliveryDelay?: Duration.Input | Schedule.Schedule<unknown, any> | undefined
}

/**
 * Options of `consume`: a subscription's, plus how many handlers run at once and how long shutdown waits for them.
 *
 * @since 0.1.0
 */
export interface ConsumeOptions extends SubscribeOptions {
  /** Handlers running at once. Default 1 (messages handled in order). */
  readonly concurrency?: number | undefined
  /** How long an interrupted `consume` lets running handlers finish. Default 10 seconds. */
  readonly drainTimeout?: Duration.Input | undefined
}

/**
 * The `Subscriber` service.
 *
 * @since 0.1.0
 */
export interface Service {
  /** The messages of `topic` for a consumer of `options.group`, until the stream is interrupted. */
  readonly subscribe: (topic: string, options: SubscribeOptions) => Stream.Stream<Received, MessagingError>
  /**
   * Handles the messages of `topic` until interrupted; see the module header. Fails only when the topic cannot be
   * read at all (a failure retrying cannot fix, such as `WRONGTYPE` or `NOPERM`).
   */
  readonly consume: <E, R>(
    topic: string,
    handler: (received: Received) => Effect.Effect<void, E, R>,
    options: ConsumeOptions
  ) => Effect.Effect<never, MessagingError, R>
}

/**
 * The subscriber service.
 *
 * @since 0.1.0
 */
export class Subscriber extends Context.Service<Subscriber, Service>()("effect-redis-streams/Subscriber") {}

/**
 * Options of {@link layer}.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Prefix of the topics' stream keys. Default none. Must match the publishers'. */
  readonly keyPrefix?: string | undefined
}

/**
 * The dead-letter topic of `topic`: subscribe to it, or read it, like any topic.
 *
 * @since 0.1.0
 */
export const deadLetterTopic = (topic: string): string => deadTopicOf(topic)

/**
 * The default delay between deliveries of a failing message: 100 ms doubling each delivery, at most 30 seconds,
 * jittered (so a dependency that is down for a second does not turn messages into dead letters).
 *
 * @since 0.1.0
 */
export const defaultRedeliveryDelay: Schedule.Schedule<unknown> = Subscription.defaultRedeliveryDelay

/**
 * Builds the subscriber on the `RedisClient` in context.
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<Service, never, RedisClient.RedisClient | Scope.Scope> =>
  Effect.gen(function* () {
    const redis = yield* RedisClient.RedisClient
    const keyPrefix = options.keyPrefix ?? ""
    const outage = Outage.make("Subscriber")
    // a `consume` still running when the service closes (forked and never interrupted) is interrupted then, and
    // drains within its `drainTimeout`, while Redis is still there
    const consuming = new Set<Fiber.Fiber<unknown, unknown>>()
    yield* Effect.addFinalizer(() => Effect.suspend(() => Fiber.interruptAll(consuming)))

    const open = (topic: string, subscription: SubscribeOptions) =>
      Consumer.start({ redis, keyPrefix, topic, outage, ...Subscription.resolve(subscription) })

    // one message per pull: what the subscription's reader never pulled stays in the queue, and goes back to the
    // group when the subscription ends (a chunked pull would take messages the reader then drops)
    const subscribe = (topic: string, subscription: SubscribeOptions) =>
      Stream.unwrap(
        Effect.map(open(topic, subscription), (consumer) =>
          Stream.fromPull(Effect.succeed(Effect.map(Queue.take(consumer.messages), (received) => [received] as const)))
        )
      )

    const consume = <E, R>(
      topic: string,
      handler: (received: Received) => Effect.Effect<void, E, R>,
      consumeOptions: ConsumeOptions
    ): Effect.Effect<never, MessagingError, R> =>
      Effect.scoped(
        Effect.gen(function* () {
          const self = yield* Effect.fiber
          consuming.add(self)
          yield* Effect.addFinalizer(() => Effect.sync(() => consuming.delete(self)))
          const concurrency = Math.max(1, consumeOptions.concurrency ?? 1)
          const consumer = yield* open(topic, {
            ...consumeOptions,
            maxInFlight: consumeOptions.maxInFlight ?? Math.max(100, 2 * concurrency)
          })
          // the workers run in a scope of their own, so that an interrupted `consume` can let them finish
          const workers = yield* Scope.make()
          let stopping = false
          const handle = (received: Received) =>
            inTrace(
              {
                topic,
                group: consumeOptions.group,
                id: received.id,
                deliveries: received.deliveries,
                message: received.message
              },
              handler(received)
            ).pipe(
              Effect.matchCauseEffect({
                onSuccess: () => Effect.sync(() => consumer.acknowledge(received.id)),
                onFailure: (cause) => {
                  // shut down mid-way: left pending, another consumer takes it over
                  if (Cause.hasInterruptsOnly(cause)) return Effect.void
                  const error = Cause.squash(cause)
                  const reason = Failure.reasonOf(error)
                  const last = received.deliveries >= (consumeOptions.maxDeliveries ?? 10)
                  return Effect.andThen(
                    Effect.logWarning(
                      `Subscriber: the handler failed on message ${received.id} of ${topic}/${consumeOptions.group} ` +
                        `(delivery ${received.deliveries}): ${reason}; ${last ? "dead-lettered" : "given back"}`
                    ),
                    last ? received.deadLetter(reason, { error }) : received.nack()
                  ).pipe(
                    Effect.catch((error) =>
                      Effect.logWarning(`Subscriber: could not settle message ${received.id} of ${topic}`, error)
                    )
                  )
                }
              })
            )
          // a worker takes the next message until the consumer stops; what is still queued then stays pending
          const worker = Effect.gen(function* () {
            while (!stopping) {
              const received = yield* Queue.take(consumer.messages)
              if (!stopping) yield* handle(received)
            }
          }).pipe(Effect.catchCause(() => Effect.void))
          const fibers = yield* Effect.forEach(Array.from({ length: concurrency }), () =>
            Effect.forkIn(worker, workers)
          )
          yield* Effect.addFinalizer(() =>
            Effect.gen(function* () {
              stopping = true
              yield* consumer.stop
              yield* Fiber.awaitAll(fibers).pipe(Effect.timeoutOption(consumeOptions.drainTimeout ?? "10 seconds"))
              yield* Scope.close(workers, Exit.void)
              // what the interrupted handlers held goes to another consumer now
              yield* consumer.handBackHeld
            })
          )
          return yield* consumer.failure
        })
      )

    return { subscribe, consume } satisfies Service
  })

/**
 * The subscriber on the `RedisClient` in context.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<Subscriber, never, RedisClient.RedisClient> =>
  Layer.effect(Subscriber, make(options))
