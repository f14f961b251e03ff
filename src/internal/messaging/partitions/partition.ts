/**
 * One partition while this member owns it: a consumer of the partition's topic under the name every owner of the
 * partition shares (`~owner`, so the next owner first reads what this one left unsettled, in order), and the
 * dispatch of its messages to the handler:
 *
 * - one by one: the messages of one key one after another, in the partition's order, each started after the previous
 *   one of its key finished; different keys (and messages without a key) at once, within the member's permits;
 * - in batches: up to `maxBatch` messages, waiting at most `maxWait` after the first, one batch of the partition at a
 *   time.
 *
 * A failed handler is retried in place (the messages behind it of the same key wait) after the subscription's
 * redelivery delay, and the message is dead-lettered after `maxDeliveries`; so no later message of a key overtakes
 * an earlier one. Nothing is handed back to the group: when the partition is given up, what is unsettled stays
 * pending for the next owner.
 *
 * @internal
 */
import { Cause, Effect, Exit, Fiber, FiberSet, type Semaphore, Queue, Scope } from "effect"
import type { Delivery } from "../../../PartitionedTopics.js"
import type { MessagingError } from "../../../Message.js"
import type * as RedisClient from "../../../RedisClient.js"
import type { Received } from "../../../Subscriber.js"
import * as Consumer from "../consumer.js"
import * as Failure from "../failure.js"
import { inTrace } from "../handlerSpan.js"
import type * as Outage from "../../outage.js"
import type * as Subscription from "../subscription.js"
import { keyMetadata } from "./layout.js"

/** The consumer name every owner of a partition uses in its group. */
export const ownerName = "~owner"

/** How the handler takes messages. */
export type Handling =
  | { readonly _tag: "each"; readonly handler: (delivery: Delivery) => Effect.Effect<void, unknown> }
  | {
      readonly _tag: "batch"
      readonly handler: (batch: ReadonlyArray<Delivery>) => Effect.Effect<void, unknown>
      readonly maxBatch: number
      readonly maxWaitMillis: number
    }

/** What a partition needs besides its index and fencing token. */
export interface PartitionContext {
  readonly redis: RedisClient.Service
  readonly keyPrefix: string
  /** The partitioned topic. */
  readonly topic: string
  /** The topics of its partitions. */
  readonly partitions: ReadonlyArray<string>
  readonly subscription: Subscription.Resolved
  readonly drainMillis: number
  readonly outage: Outage.OutageLog
  /** Handlers (or batches) running at once across the member's partitions. */
  readonly permits: Semaphore.Semaphore
  readonly handling: Handling
}

/** A partition this member runs. */
export interface Owned {
  /** Stops reading, lets what runs finish (at most the drain time), then stops; nothing is handed back. */
  readonly drain: Effect.Effect<void>
  /** Stops at once: running handlers are interrupted (what they held stays pending for the next owner). */
  readonly abort: Effect.Effect<void>
  /** Fails with the error that ended the partition's consumer (one retrying cannot fix); never succeeds. */
  readonly failure: Effect.Effect<never, MessagingError>
}

/** The lease this member holds on a partition: its key, its value, and its fencing token. */
export interface Lease {
  readonly key: string
  readonly holder: string
  readonly token: number
}

/** Starts partition `index` under `lease`. */
export const start = (context: PartitionContext, index: number, lease: Lease): Effect.Effect<Owned, MessagingError> =>
  Effect.gen(function* () {
    const { subscription, handling } = context
    const partitionTopic = context.partitions[index] as string
    const scope = yield* Scope.make()
    const consumer = yield* Consumer.start({
      redis: context.redis,
      keyPrefix: context.keyPrefix,
      topic: partitionTopic,
      outage: context.outage,
      ...subscription,
      consumer: ownerName,
      keepPending: true,
      fence: { lease: lease.key, holder: lease.holder }
    }).pipe(
      Scope.provide(scope),
      Effect.onError(() => Scope.close(scope, Exit.void))
    )
    const running = yield* FiberSet.make().pipe(Scope.provide(scope))

    const deliveryOf = (received: Received, attempt: number): Delivery => ({
      id: received.id,
      topic: context.topic,
      partition: index,
      key: received.message.metadata[keyMetadata],
      message: received.message,
      deliveries: received.deliveries + attempt,
      fence: lease.token
    })

    /** Runs `work` on `batch` until it succeeds, retrying in place; dead-letters them after the last delivery. */
    const handleInOrder = (
      batch: ReadonlyArray<Received>,
      work: (attempt: number) => Effect.Effect<void, unknown>
    ): Effect.Effect<void> =>
      Effect.gen(function* () {
        for (let attempt = 0; ; attempt++) {
          const exit = yield* Effect.exit(context.permits.withPermit(work(attempt)))
          if (Exit.isSuccess(exit)) {
            for (const received of batch) consumer.acknowledge(received.id)
            return
          }
          if (Cause.hasInterruptsOnly(exit.cause)) return
          const error = Cause.squash(exit.cause)
          const reason = Failure.reasonOf(error)
          const deliveries = (batch[0] as Received).deliveries + attempt
          const last = subscription.maxDeliveries !== undefined && deliveries >= subscription.maxDeliveries
          yield* Effect.logWarning(
            `PartitionedTopics: the handler failed on ${batch.length === 1 ? "message" : `a batch of ${batch.length} from`} ` +
              `${(batch[0] as Received).id} of ${partitionTopic}/${subscription.group} (delivery ${deliveries}): ` +
              `${reason}; ${last ? "dead-lettered" : "retried in place"}`
          )
          if (last) {
            yield* Effect.forEach(
              batch,
              (received) => consumer.deadLetter(received.id, reason, received.deliveries + attempt, error),
              { discard: true }
            ).pipe(
              Effect.catch((error) =>
                Effect.logWarning(`PartitionedTopics: could not dead-letter a message of ${partitionTopic}`, error)
              )
            )
            return
          }
          yield* Effect.sleep(subscription.redeliveryDelay(deliveries))
        }
      })

    const traced = (received: Received, attempt: number, effect: Effect.Effect<void, unknown>) =>
      inTrace(
        {
          topic: context.topic,
          group: subscription.group,
          id: received.id,
          deliveries: received.deliveries + attempt,
          message: received.message
        },
        effect
      )

    /** One by one: each message waits for the previous one of its key (the last one seen per key). */
    const pumpEach = (handler: (delivery: Delivery) => Effect.Effect<void, unknown>) => {
      const lastOfKey = new Map<string, Effect.Effect<void>>()
      return Effect.gen(function* () {
        for (;;) {
          const received = yield* Queue.take(consumer.messages)
          const key = received.message.metadata[keyMetadata]
          const previous = key === undefined ? undefined : lastOfKey.get(key)
          const handled = handleInOrder([received], (attempt) =>
            traced(received, attempt, handler(deliveryOf(received, attempt)))
          )
          const fiber = yield* FiberSet.run(
            running,
            previous === undefined ? handled : Effect.andThen(previous, handled)
          )
          if (key !== undefined) {
            const done = Effect.asVoid(Effect.exit(Fiber.join(fiber)))
            lastOfKey.set(key, done)
            fiber.addObserver(() => {
              if (lastOfKey.get(key) === done) lastOfKey.delete(key)
            })
          }
        }
      })
    }

    /** In batches: up to `maxBatch`, at most `maxWait` after the first; one batch at a time. */
    const pumpBatches = (
      handler: (batch: ReadonlyArray<Delivery>) => Effect.Effect<void, unknown>,
      maxBatch: number,
      maxWaitMillis: number
    ) =>
      Effect.gen(function* () {
        for (;;) {
          const batch: Array<Received> = [yield* Queue.take(consumer.messages)]
          const deadline = Date.now() + maxWaitMillis
          while (batch.length < maxBatch) {
            const more = yield* Queue.takeBetween(consumer.messages, 0, maxBatch - batch.length)
            batch.push(...more)
            const left = deadline - Date.now()
            if (batch.length >= maxBatch || left <= 0) break
            if (more.length === 0) {
              const next = yield* Effect.timeoutOption(Queue.take(consumer.messages), left)
              if (next._tag === "None") break
              batch.push(next.value)
            }
          }
          const fiber = yield* FiberSet.run(
            running,
            handleInOrder(batch, (attempt) => handler(batch.map((received) => deliveryOf(received, attempt))))
          )
          yield* Fiber.join(fiber)
        }
      })

    const pump =
      handling._tag === "each"
        ? pumpEach(handling.handler)
        : pumpBatches(handling.handler, handling.maxBatch, handling.maxWaitMillis)
    // the pump ends when the consumer stops (its queue is done) or fails (the failure is the consumer's, reported)
    yield* Effect.forkIn(Effect.ignore(pump), scope)

    const close = Effect.andThen(FiberSet.clear(running), Scope.close(scope, Exit.void))
    return {
      drain: Effect.andThen(
        consumer.stop,
        Effect.andThen(Effect.ignore(Effect.timeoutOption(FiberSet.awaitEmpty(running), context.drainMillis)), close)
      ),
      abort: close,
      failure: consumer.failure
    }
  })
