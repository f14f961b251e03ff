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
import { Cause, Deferred, type Duration, Effect, Exit, Queue, Scope, type Semaphore } from "effect"
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

/** The most messages of one lane a worker handles under one permit before the lane goes to the back of the queue. */
const turnLength = 32

/** A key's messages waiting in order (or one message without a key). */
interface Lane {
  readonly key: string | undefined
  readonly items: Array<Received>
}

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

    const deliveryOf = (received: Received, attempt: number): Delivery => ({
      id: received.id,
      topic: context.topic,
      partition: index,
      key: received.message.metadata[keyMetadata],
      message: received.message,
      deliveries: received.deliveries + attempt,
      fence: lease.token
    })

    /** A handler's attempt to redo after a delay (it failed, short of its last delivery). */
    interface Retry {
      readonly attempt: number
      readonly delay: Duration.Duration
    }

    /**
     * Runs `work` on `batch` (attempt `attempt`, from 0): on success acknowledges the batch; on a failure, dead-letters
     * it after its last delivery or asks for a retry in place after the redelivery delay. Interrupted: left pending.
     */
    const attemptOnce = (
      batch: ReadonlyArray<Received>,
      work: (attempt: number) => Effect.Effect<void, unknown>,
      attempt: number
    ): Effect.Effect<Retry | undefined> =>
      Effect.matchCauseEffect(work(attempt), {
        onSuccess: () =>
          Effect.sync(() => {
            for (const received of batch) consumer.acknowledge(received.id)
            return undefined
          }),
        onFailure: (cause) => (Cause.hasInterruptsOnly(cause) ? Effect.undefined : failed(batch, attempt, cause))
      })

    const failed = (
      batch: ReadonlyArray<Received>,
      attempt: number,
      cause: Cause.Cause<unknown>
    ): Effect.Effect<Retry | undefined> => {
      const first = batch[0] as Received
      const error = Cause.squash(cause)
      const reason = Failure.reasonOf(error)
      const deliveries = first.deliveries + attempt
      const last = subscription.maxDeliveries !== undefined && deliveries >= subscription.maxDeliveries
      const logged = Effect.logWarning(
        `PartitionedTopics: the handler failed on ${batch.length === 1 ? "message" : `a batch of ${batch.length} from`} ` +
          `${first.id} of ${partitionTopic}/${subscription.group} (delivery ${deliveries}): ` +
          `${reason}; ${last ? "dead-lettered" : "retried in place"}`
      )
      if (!last) return Effect.as(logged, { attempt: attempt + 1, delay: subscription.redeliveryDelay(deliveries) })
      return Effect.andThen(
        logged,
        Effect.forEach(
          batch,
          (received) => consumer.deadLetter(received.id, reason, received.deliveries + attempt, error),
          { discard: true }
        ).pipe(
          Effect.catch((error) =>
            Effect.logWarning(`PartitionedTopics: could not dead-letter a message of ${partitionTopic}`, error)
          ),
          Effect.as(undefined)
        )
      )
    }

    /** Runs `turn` (from attempt 0) under a permit, and again after each retry's delay (the permit let go meanwhile). */
    const withRetries = (turn: (attempt: number) => Effect.Effect<Retry | undefined>): Effect.Effect<void> =>
      Effect.gen(function* () {
        busy++
        let retry = yield* context.permits.withPermit(turn(0)).pipe(Effect.ensuring(settled))
        while (retry !== undefined) {
          yield* Effect.sleep(retry.delay)
          const attempt = retry.attempt
          busy++
          retry = yield* context.permits.withPermit(turn(attempt)).pipe(Effect.ensuring(settled))
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

    /** Set when the partition is given up: workers take nothing new; `idle` completes once none is busy. */
    let stopping = false
    let busy = 0
    const idle = yield* Deferred.make<void>()
    const settled = Effect.sync(() => {
      if (--busy === 0 && stopping) Deferred.doneUnsafe(idle, Exit.void)
    })

    /**
     * One by one: per-key lanes. A lane (a key's waiting messages, or a message without a key) is in the ready queue
     * at most once, and held by at most one worker, so one worker at a time handles its head; different lanes run on
     * the workers at once.
     */
    const runEach = (handler: (delivery: Delivery) => Effect.Effect<void, unknown>, workers: number) =>
      Effect.gen(function* () {
        const lanes = new Map<string, Lane>()
        const ready = yield* Queue.unbounded<Lane>()
        const pump = Effect.gen(function* () {
          for (;;) {
            const received = yield* Queue.take(consumer.messages)
            const key = received.message.metadata[keyMetadata]
            const lane = key === undefined ? undefined : lanes.get(key)
            if (lane !== undefined) lane.items.push(received)
            else {
              const fresh: Lane = { key, items: [received] }
              if (key !== undefined) lanes.set(key, fresh)
              Queue.offerUnsafe(ready, fresh)
            }
          }
        })
        /** A lane with nothing left is forgotten (its key's next message starts a new one). */
        const finish = (lane: Lane) => {
          if (lane.key !== undefined && lanes.get(lane.key) === lane) lanes.delete(lane.key)
        }
        /**
         * A turn under one permit: the held lane's messages one after another, then the next ready lanes', at most
         * `turnLength` messages in all, until one fails short of its last delivery (its retry is the next turn).
         */
        const turn = (held: { lane: Lane | undefined }) => (attempt: number) =>
          Effect.gen(function* () {
            for (let handled = 0; handled < turnLength && !stopping; handled++) {
              let lane = held.lane
              if (lane !== undefined && lane.items.length === 0) {
                finish(lane)
                const next = Queue.takeUnsafe(ready)
                lane = held.lane = next !== undefined && Exit.isSuccess(next) ? next.value : undefined
              }
              if (lane === undefined) return undefined
              const received = lane.items[0] as Received
              const retry = yield* attemptOnce(
                [received],
                (n) => traced(received, n, handler(deliveryOf(received, n))),
                handled === 0 ? attempt : 0
              )
              if (retry !== undefined) return retry
              lane.items.shift()
            }
            return undefined
          })
        const worker = Effect.gen(function* () {
          while (!stopping) {
            const held: { lane: Lane | undefined } = { lane: yield* Queue.take(ready) }
            if (stopping) return
            yield* withRetries(turn(held))
            const lane = held.lane
            if (lane === undefined) continue
            if (lane.items.length > 0) Queue.offerUnsafe(ready, lane)
            else finish(lane)
          }
        })
        yield* Effect.forkIn(Effect.ignore(pump), scope)
        for (let i = 0; i < workers; i++) yield* Effect.forkIn(worker, scope)
      })

    /** In batches: up to `maxBatch`, at most `maxWait` after the first; one batch at a time. */
    const runBatches = (
      handler: (batch: ReadonlyArray<Delivery>) => Effect.Effect<void, unknown>,
      maxBatch: number,
      maxWaitMillis: number
    ) =>
      Effect.gen(function* () {
        while (!stopping) {
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
          const work = (attempt: number) => handler(batch.map((received) => deliveryOf(received, attempt)))
          yield* withRetries((attempt) => attemptOnce(batch, work, attempt))
        }
      }).pipe(Effect.ignore, Effect.forkIn(scope))

    yield* handling._tag === "each"
      ? runEach(handling.handler, context.workers)
      : runBatches(handling.handler, handling.maxBatch, handling.maxWaitMillis)

    const close = Scope.close(scope, Exit.void)
    return {
      drain: Effect.gen(function* () {
        stopping = true
        yield* consumer.stop
        if (busy > 0) yield* Effect.timeoutOption(Deferred.await(idle), context.drainMillis)
        yield* close
      }),
      abort: close,
      failure: consumer.failure
    }
  })
