/**
 * One consumer of a consumer group on one topic: it wires its parts (in `consumer/`) and runs their fibers.
 *
 * - `context`: who it is, its keys, the queue of received messages, its in-flight slots (`slots`), its metrics.
 * - `read`: the reader (non-blocking `XREADGROUP` on the shared connection, as many entries as free slots; its own
 *   pending entries again at start-up, after a lost read reply and after a failover), woken by `signal`s.
 * - `claim`: every `claimInterval`, claims of entries left idle by dead consumers, lease renewals, the lag gauges.
 * - `retry`: delivers the retries of the group as they fall due (they wait in Redis, not in a fiber).
 * - `settle` and `delivery`: acknowledgements (batched), nacks, dead letters, hand-backs; read entries decoded into
 *   `received` messages, or dead-lettered when they are not messages or were delivered too often.
 *
 * Start-up: the consumer listens on the topic's wake channel (a publish, or "due": a message handed back; a
 * reconnect of the subscriber connection counts as both) and creates the group (MKSTREAM; an existing group is fine)
 * before anything waits. Failures that can pass (Redis down, a failover, the group deleted: it is created again) are
 * retried with backoff and logged once per outage; one that cannot (`WRONGTYPE`, `NOPERM`) ends the consumer with
 * that typed error. Stopping hands every message it read but nobody here started back to the group at once.
 *
 * @internal
 */
import { Cause, Deferred, Effect, Exit, Fiber, Queue, Schedule, Scope } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import type { MessagingError } from "../../Message.js"
import * as Outage from "../outage.js"
import type { Received } from "../../Subscriber.js"
import { wakeChannelOf } from "./wire.js"
import * as Claim from "./consumer/claim.js"
import { type ConsumerOptions, make as makeContext, send } from "./consumer/context.js"
import * as Read from "./consumer/read.js"
import * as Retry from "./consumer/retry.js"
import * as Settle from "./consumer/settle.js"
import { makeDueClock, makeSignal } from "./consumer/signal.js"

export type { ConsumerOptions } from "./consumer/context.js"

/** A running consumer. */
export interface Consumer {
  /**
   * Received messages, in delivery order; done once the consumer stopped and they were all taken; failed with the
   * error that ended the consumer (one that retrying cannot fix).
   */
  readonly messages: Queue.Dequeue<Received, MessagingError | Cause.Done>
  /** Fails with the error that ended the consumer; never succeeds. */
  readonly failure: Effect.Effect<never, MessagingError>
  /**
   * Stops reading and claiming, hands the messages received but not taken back to the group (unless `keepPending`),
   * and ends `messages` (those taken can still be acknowledged).
   */
  readonly stop: Effect.Effect<void>
  /**
   * Hands every message still held (taken and not settled: a handler interrupted) back to the group at once (with
   * `keepPending`, they stay pending under this consumer's name).
   */
  readonly handBackHeld: Effect.Effect<void>
  /** Acknowledges a message without waiting for Redis (a failed acknowledgement only means a redelivery). */
  readonly acknowledge: (id: string) => void
  /** Moves a message to the dead letters after `deliveries` deliveries (see `Received.deadLetter`). */
  readonly deadLetter: Settle.Settler["deadLetter"]
}

/** Starts a consumer in the scope; closing the scope stops it and removes it from the group if it holds nothing. */
export const start = (options: ConsumerOptions): Effect.Effect<Consumer, MessagingError, Scope.Scope> =>
  Effect.gen(function* () {
    const context = yield* makeContext(options)
    const { redis, topic, group, consumer, key, messages, slots } = context
    // acknowledgements run in a child scope, closed after the consumer's own shutdown (a closing scope takes no new
    // fibers, and handlers finishing during a graceful shutdown still acknowledge)
    const scope = yield* Scope.fork(yield* Effect.scope)
    const ended = yield* Deferred.make<never, MessagingError>()
    const news = makeSignal()
    const due = makeDueClock()
    const settler = Settle.make(context, scope, due)
    const reader = Read.make(context, settler, news)
    const claimPass = Claim.make(context, settler)

    /** What the wake channel says: new entries (their count), or "due" (a message handed back); a reconnect: both. */
    const hear = (event: RedisClient.PubSubEvent) => {
      if (event._tag === "Reconnected" || event.message === "due") due.poke(0)
      if (event._tag === "Reconnected" || event.message !== "due") news.raise()
    }

    let listening = false
    let groupReady = false
    let startedUp = false
    /** Listens for wake-ups and creates the group; done again after a failure took the group away. */
    const setUp = Effect.gen(function* () {
      if (!listening) {
        yield* Scope.provide(redis.listen([wakeChannelOf(key)], hear), scope).pipe(Effect.mapError(context.toError))
        listening = true
      }
      if (!groupReady) {
        yield* redis.send("XGROUP", "CREATE", key, group, options.start, "MKSTREAM").pipe(
          Effect.catchIf(
            (error) => error.code === "BUSYGROUP",
            () => Effect.void
          ),
          Effect.mapError(context.toError)
        )
        groupReady = true
      }
    })

    const recoverable = (error: MessagingError) => {
      if (error.reason._tag === "Redis" && error.reason.cause.code === "NOGROUP") {
        groupReady = false // the stream or its group is gone (deleted, or Redis lost its data): create it again
        return true
      }
      return error.isRetryable
    }
    const reportFailure = (what: string) => (error: MessagingError) =>
      recoverable(error)
        ? options.outage.failed({ message: `${consumer} of ${topic}/${group}: ${what}: ${error.message}` })
        : Effect.logError(`Subscriber ${consumer} of ${topic}/${group}: ${what} failed for good`, error)
    const retried = <A>(what: string, effect: Effect.Effect<A, MessagingError>) =>
      effect.pipe(Effect.tapError(reportFailure(what)), Effect.retry({ schedule: Outage.backoff, while: recoverable }))

    const readLoop = Effect.gen(function* () {
      yield* setUp
      if (!startedUp) {
        yield* reader.readOwnPending
        yield* claimPass
        startedUp = true
      }
      yield* reader.recoverLostRead
      yield* reader.readNew
    })
    const claimLoop = claimPass.pipe(
      Effect.tapError(reportFailure("claiming")),
      Effect.ignore,
      Effect.repeat(Schedule.spaced(options.claimInterval)),
      Effect.delay(options.claimInterval)
    )

    // the first set-up runs before `start` returns: a topic that cannot be read fails the subscription at once
    const first = yield* Effect.exit(setUp)
    if (Exit.isFailure(first)) {
      const error = first.cause.reasons.find(Cause.isFailReason)?.error
      if (error !== undefined && !recoverable(error)) return yield* Effect.failCause(first.cause)
    }
    const fibers = [
      yield* Effect.forkScoped(
        retried("reading", readLoop).pipe(
          Effect.catch((error) => Effect.andThen(Queue.fail(messages, error), Deferred.fail(ended, error)))
        )
      ),
      yield* Effect.forkScoped(claimLoop),
      yield* Effect.forkScoped(Effect.ignore(retried("taking due retries", Retry.loop(context, settler, due))))
    ]

    /** This consumer's pending entries in Redis, with their delivery counts. */
    const ownPending = send<Array<[string, string, number, number]>>(
      context,
      "XPENDING",
      key,
      group,
      "-",
      "+",
      2 * options.maxInFlight + options.batchCount,
      consumer
    ).pipe(Effect.map((rows) => rows.map(([id, , , n]) => [id, n] as const)))

    // stopping: reading ends, and what this consumer holds that nobody here took goes back to the group with its
    // delivery uncounted (never started): the messages received but not taken, and those a read or a claim cut off
    // by the stop moved to it in Redis
    const stop = Effect.gen(function* () {
      yield* Fiber.interruptAll(fibers)
      const unstarted = yield* Queue.clear(messages).pipe(Effect.orElseSucceed((): Array<Received> => []))
      yield* Queue.end(messages)
      if (options.keepPending === true) return
      const taken = new Set(slots.inFlight.keys())
      for (const received of unstarted) taken.delete(received.id)
      const held = yield* ownPending.pipe(
        Effect.orElseSucceed(() => unstarted.map((received) => [received.id, received.deliveries] as const))
      )
      yield* settler.handBack(
        held.flatMap(([id, deliveries]) => (taken.has(id) ? [] : [[id, deliveries - 1] as const]))
      )
    })

    // acknowledgements still on their way are written before the consumer goes; it leaves the group when it holds
    // nothing (else once the last message it holds is acknowledged)
    yield* Effect.addFinalizer(() =>
      stop.pipe(
        Effect.tap(() => Effect.sync(settler.close)),
        Effect.andThen(settler.flush),
        Effect.andThen(settler.leaveIfIdle),
        Effect.ignore
      )
    )

    return {
      messages,
      failure: Deferred.await(ended),
      stop,
      // acknowledgements on their way are written first: only what is still unsettled goes back
      handBackHeld: Effect.andThen(
        settler.flush,
        Effect.suspend(() =>
          options.keepPending === true
            ? Effect.void
            : settler.handBack(Array.from(slots.inFlight.keys(), (id) => [id, -1] as const))
        )
      ),
      acknowledge: settler.acknowledge,
      deadLetter: settler.deadLetter
    }
  })
