/**
 * How a consumer settles messages: acknowledgements (batched by a combiner; direct once the consumer closed), nacks
 * (a redelivery now, or a retry scheduled in Redis), dead letters (one atomic script), and hand-backs of what it holds
 * to the group. Each frees the message's in-flight slot, settled or not (an unsettled message is delivered again).
 *
 * @internal
 */
import { Duration, Effect, Exit, type Scope } from "effect"
import type { MessagingError } from "../../../Message.js"
import * as Combiner from "../../combiner.js"
import * as Failure from "../failure.js"
import * as Metrics from "../metrics.js"
import * as Scripts from "../scripts.js"
import { type RawEntry, retryHolder, wakeChannelOf } from "../wire.js"
import { type Context, send } from "./context.js"
import { deliver } from "./delivery.js"
import type { Settle } from "./received.js"
import type { DueClock } from "./signal.js"

/** A retry to schedule: the entry, its delay in ms, and the delivery count to set (-1: as it is). */
export type RetryEntry = readonly [id: string, delayMs: number, count: number]

/** The settling operations of one consumer. */
export interface Settler {
  /** What its received messages call. */
  readonly settle: Settle
  /** Moves a message to the dead letters with `reason` (and the error as JSON), acknowledging it, atomically. */
  readonly deadLetter: Settle["deadLetter"]
  /** Schedules entries for a delivery by the group (the `retryLater` script). */
  readonly scheduleRetries: (entries: ReadonlyArray<RetryEntry>) => Effect.Effect<void, MessagingError>
  /** Hands messages back to the group at once (due now); logged when it cannot (then claimed after claimIdleTime). */
  readonly handBack: (held: ReadonlyArray<readonly [id: string, count: number]>) => Effect.Effect<void>
  /** Acknowledges without waiting (a failed acknowledgement only means a redelivery). */
  readonly acknowledge: (id: string) => void
  /** Writes the acknowledgements on their way (at most 5 seconds). */
  readonly flush: Effect.Effect<void>
  /** From now on an acknowledgement goes to Redis at once (nothing batches it any more). */
  readonly close: () => void
  /** Removes the consumer from its group if it holds no message in Redis. */
  readonly leaveIfIdle: Effect.Effect<void>
}

/** The settler of a consumer; its acknowledgement batches run in `scope`, a nack's retry time goes to `due`. */
export const make = (context: Context, scope: Scope.Scope, due: DueClock): Settler => {
  const { redis, key, group, consumer, options, slots } = context
  let closed = false

  const acks = Combiner.make<string, void, MessagingError, undefined>({
    scope,
    state: () => undefined,
    write: (_key, ids) =>
      send(context, "XACK", key, group, ...ids).pipe(
        Effect.tap(() => context.count(Metrics.acked, ids.length)),
        Effect.map(() => ids.map(() => Exit.void)),
        Effect.catch((error) => Effect.succeed(ids.map(() => Exit.fail(error)))),
        // acknowledged or not, the slot is free: an unacknowledged message is delivered again
        Effect.ensuring(Effect.sync(() => ids.forEach(slots.release)))
      )
  })

  const leaveIfIdle = redis.eval(Scripts.removeIdleConsumer, [key], [group, consumer]).pipe(Effect.ignore)

  const deadLetter: Settler["deadLetter"] = (id, reason, deliveries, error) =>
    redis
      .eval(
        Scripts.deadLetter,
        [key, context.deadKey],
        [
          group,
          id,
          reason,
          context.topic,
          consumer,
          deliveries,
          new Date().toISOString(),
          options.deadLetterMaxLength,
          wakeChannelOf(context.deadKey),
          error === undefined ? "" : Failure.errorJson(error)
        ]
      )
      .pipe(
        Effect.mapError(context.toError),
        Effect.tap(() => context.count(Metrics.deadLettered, 1)),
        // moved or not, the slot is free (not moved: its lease is no longer renewed, so a claim delivers it again)
        Effect.ensuring(Effect.sync(() => slots.release(id)))
      )

  const scheduleRetries: Settler["scheduleRetries"] = (entries) =>
    entries.length === 0
      ? Effect.void
      : redis
          .eval(
            Scripts.retryLater,
            [key, context.retryKey],
            [group, retryHolder, wakeChannelOf(key), consumer, ...entries.flat()]
          )
          .pipe(Effect.mapError(context.toError), Effect.asVoid)

  /** Redelivers a nacked message to this consumer (XCLAIM counts the delivery). */
  const redeliver = (id: string, deliveries: number): Effect.Effect<void, MessagingError> =>
    redis.sendBytes<Array<RawEntry>>("XCLAIM", key, group, consumer, 0, id).pipe(
      Effect.mapError(context.toError),
      Effect.flatMap((entries) =>
        entries.length === 0
          ? Effect.sync(() => slots.release(id))
          : deliver(context, settler, entries, () => deliveries + 1)
      )
    )

  const nack = (id: string, deliveries: number, delay: Duration.Duration): Effect.Effect<void, MessagingError> =>
    Effect.gen(function* () {
      yield* context.count(Metrics.nacked, 1)
      if (options.maxDeliveries !== undefined && deliveries >= options.maxDeliveries) {
        return yield* deadLetter(id, `nacked after ${deliveries} deliveries`, deliveries)
      }
      if (Duration.isZero(delay)) return yield* redeliver(id, deliveries)
      // the delay lives in Redis: the group's next consumer to find it due takes it, and the slot is free meanwhile
      yield* scheduleRetries([[id, Duration.toMillis(delay), -1]])
      slots.release(id)
      due.poke(Date.now() + Duration.toMillis(delay))
    }).pipe(
      // not settled: the slot is freed and the lease no longer renewed, so a claim redelivers it after claimIdleTime
      Effect.onError(() => Effect.sync(() => slots.release(id)))
    )

  const settle: Settle = {
    topic: context.topic,
    acknowledgement: (id) =>
      closed
        ? send(context, "XACK", key, group, id).pipe(
            Effect.tap(() => Effect.sync(() => slots.release(id))),
            Effect.tap(() => (slots.inFlight.size === 0 ? leaveIfIdle : Effect.void)),
            Effect.asVoid
          )
        : acks.submit(key, id),
    giveBack: (id, deliveries, nackOptions) =>
      nack(
        id,
        deliveries,
        nackOptions?.delay === undefined
          ? options.redeliveryDelay(deliveries)
          : Duration.fromInputUnsafe(nackOptions.delay)
      ),
    deadLetter
  }

  const settler: Settler = {
    settle,
    deadLetter,
    scheduleRetries,
    handBack: (held) =>
      scheduleRetries(held.map(([id, count]) => [id, 0, count] as const)).pipe(
        Effect.tap(() => Effect.sync(() => held.forEach(([id]) => slots.release(id)))),
        Effect.tapError((error) =>
          Effect.logWarning(
            `Subscriber: ${consumer} could not hand ${held.length} message(s) of ${context.topic}/${group} back; ` +
              `they are claimed after claimIdleTime`,
            error
          )
        ),
        Effect.ignore
      ),
    acknowledge: (id) => acks.submitUnsafe(key, id),
    flush: Effect.asVoid(acks.flush.pipe(Effect.timeoutOption("5 seconds"))),
    close: () => {
      closed = true
    },
    leaveIfIdle
  }
  return settler
}
