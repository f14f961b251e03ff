/**
 * Handling a partition's messages until they are settled: an attempt acknowledges on success and, on a failure,
 * dead-letters after the last delivery or asks for a retry in place after the redelivery delay; `withRetries` runs a
 * turn of work under one of the member's permits and again after each delay (the permit let go meanwhile), while
 * `Activity` counts the turns running, so that a partition given up can wait for them.
 *
 * @internal
 */
import { Cause, Deferred, type Duration, Effect, Exit, type Semaphore } from "effect"
import type { Received } from "../../../Subscriber.js"
import type * as Consumer from "../consumer.js"
import * as Failure from "../failure.js"
import type * as Subscription from "../subscription.js"

/** A handler's attempt to redo after a delay (it failed, short of its last delivery). */
export interface Retry {
  readonly attempt: number
  readonly delay: Duration.Duration
}

/** The turns running on a partition, and whether it is being given up. */
export interface Activity {
  /** Set when the partition is given up: nothing new starts. */
  readonly stopping: () => boolean
  /** Gives the partition up: no turn starts from now on. */
  readonly stop: Effect.Effect<void>
  /** Waits (at most `millis`) until no turn runs. */
  readonly idle: (millis: number) => Effect.Effect<void>
  /** Runs `effect` counted as a running turn. */
  readonly counted: <A>(effect: Effect.Effect<A>) => Effect.Effect<A>
}

/** An activity with nothing running. */
export const makeActivity = (): Activity => {
  let stopping = false
  let busy = 0
  const done = Deferred.makeUnsafe<void>()
  const settled = Effect.sync(() => {
    if (--busy === 0 && stopping) Deferred.doneUnsafe(done, Exit.void)
  })
  return {
    stopping: () => stopping,
    stop: Effect.sync(() => {
      stopping = true
    }),
    idle: (millis) =>
      Effect.suspend(() =>
        busy === 0 ? Effect.void : Effect.asVoid(Effect.timeoutOption(Deferred.await(done), millis))
      ),
    counted: (effect) =>
      Effect.suspend(() => {
        busy++
        return Effect.ensuring(effect, settled)
      })
  }
}

/** What attempts need of their partition. */
export interface AttemptContext {
  readonly consumer: Consumer.Consumer
  readonly subscription: Subscription.Resolved
  /** The partition's topic, for logs. */
  readonly partitionTopic: string
  readonly permits: Semaphore.Semaphore
  readonly activity: Activity
}

/** The attempts of a partition. */
export interface Attempts {
  /** Runs `work` on `batch` (attempt `attempt`, from 0) and settles the batch, or says when to retry it. */
  readonly attemptOnce: (
    batch: ReadonlyArray<Received>,
    work: (attempt: number) => Effect.Effect<void, unknown>,
    attempt: number
  ) => Effect.Effect<Retry | undefined>
  /** Runs `turn` (from attempt 0) under a permit, and again after each retry's delay. */
  readonly withRetries: (turn: (attempt: number) => Effect.Effect<Retry | undefined>) => Effect.Effect<void>
}

/** The attempts of the partition `context` describes. */
export const make = (context: AttemptContext): Attempts => {
  const { consumer, subscription, partitionTopic } = context

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

  const attemptOnce: Attempts["attemptOnce"] = (batch, work, attempt) =>
    Effect.matchCauseEffect(work(attempt), {
      onSuccess: () =>
        Effect.sync(() => {
          for (const received of batch) consumer.acknowledge(received.id)
          return undefined
        }),
      // interrupted (the partition stopped): left pending, for the next owner
      onFailure: (cause) => (Cause.hasInterruptsOnly(cause) ? Effect.undefined : failed(batch, attempt, cause))
    })

  const underPermit = (turn: (attempt: number) => Effect.Effect<Retry | undefined>, attempt: number) =>
    context.activity.counted(context.permits.withPermit(turn(attempt)))

  const withRetries: Attempts["withRetries"] = (turn) =>
    Effect.gen(function* () {
      let retry = yield* underPermit(turn, 0)
      while (retry !== undefined) {
        yield* Effect.sleep(retry.delay)
        retry = yield* underPermit(turn, retry.attempt)
      }
    })

  return { attemptOnce, withRetries }
}
