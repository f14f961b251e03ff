/**
 * One partition while this member owns it: a consumer of the partition's topic under the name every owner of the
 * partition shares (`~owner`, so the next owner first reads what this one left unsettled, in order), reading only while
 * its lease holds, and the dispatch of its messages to the handler: one by one in per-key lanes (`lanes.ts`: a key's
 * messages one after another, different keys at once, within the member's permits) or in batches (`batches.ts`).
 *
 * A failed handler is retried in place (the messages behind it of the same key wait) after the subscription's
 * redelivery delay, and the message is dead-lettered after `maxDeliveries`; so no later message of a key overtakes
 * an earlier one. Nothing is handed back to the group: when the partition is given up, what is unsettled stays
 * pending for the next owner.
 *
 * @internal
 */
import { Effect, Exit, Scope, type Semaphore } from "effect"
import type { Delivery } from "../../../PartitionedTopics.js"
import type { MessagingError } from "../../../Message.js"
import type * as RedisClient from "../../../RedisClient.js"
import type { RedisError } from "../../../RedisError.js"
import type { Received } from "../../../Subscriber.js"
import * as Consumer from "../consumer.js"
import { inTrace } from "../handlerSpan.js"
import type * as Outage from "../../outage.js"
import type * as Subscription from "../subscription.js"
import * as Attempts from "./attempts.js"
import { makeActivity } from "./attempts.js"
import * as Batches from "./batches.js"
import { keyMetadata } from "./layout.js"
import * as Lanes from "./lanes.js"

/** The consumer name every owner of a partition uses in its group. */
const ownerName = "~owner"

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
  /** The topics of its partitions when the member started. */
  readonly partitions: ReadonlyArray<string>
  /** The topics of its partitions as stored now (a `grow` adds some). */
  readonly storedPartitions: Effect.Effect<ReadonlyArray<string>, RedisError>
  readonly subscription: Subscription.Resolved
  readonly drainMillis: number
  readonly outage: Outage.OutageLog
  /** Handlers (or batches) running at once across the member's partitions. */
  readonly permits: Semaphore.Semaphore
  /** Workers per partition handling messages one by one (as many as the member's permits). */
  readonly workers: number
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

/** Starts partition `index` (the topic `partitionTopic`) under `lease`. */
export const start = (
  context: PartitionContext,
  index: number,
  partitionTopic: string,
  lease: Lease
): Effect.Effect<Owned, MessagingError> =>
  Effect.gen(function* () {
    const { subscription, handling } = context
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

    const deliveryOf = (received: Received, attempt: number): Delivery => ({
      id: received.id,
      topic: context.topic,
      partition: index,
      key: received.message.metadata[keyMetadata],
      message: received.message,
      deliveries: received.deliveries + attempt,
      fence: lease.token
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

    const activity = makeActivity()
    const attempts = Attempts.make({ consumer, subscription, partitionTopic, permits: context.permits, activity })
    const messages = consumer.messages
    if (handling._tag === "each") {
      const handler = handling.handler
      yield* Lanes.run({
        messages,
        workers: context.workers,
        handle: (received, attempt) => traced(received, attempt, handler(deliveryOf(received, attempt))),
        attempts,
        activity,
        scope
      })
    } else {
      const handler = handling.handler
      yield* Batches.run({
        messages,
        maxBatch: handling.maxBatch,
        maxWaitMillis: handling.maxWaitMillis,
        handle: (batch, attempt) => handler(batch.map((received) => deliveryOf(received, attempt))),
        attempts,
        activity,
        scope
      })
    }

    const close = Scope.close(scope, Exit.void)
    return {
      // nothing new starts, reading stops (what was read and not started stays pending), what runs may finish
      drain: Effect.all([activity.stop, consumer.stop, activity.idle(context.drainMillis), close], { discard: true }),
      abort: close,
      failure: consumer.failure
    }
  })
