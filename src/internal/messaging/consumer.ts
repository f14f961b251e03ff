/**
 * One consumer of a consumer group on one topic: the fibers that read, claim and extend leases, and the in-flight
 * book-keeping behind `ack`, `nack` and dead letters.
 *
 * - Start-up: the consumer listens on the topic's wake channel and creates the group (MKSTREAM; an existing group is
 *   fine) before anything waits, re-reads its own pending entries once (a crash of a consumer of the same name left
 *   them), makes one claim pass, then reads new entries. A read of new entries whose reply was lost (Redis may have
 *   delivered them), or trouble the client saw since the last read (a failover: a Cluster client sends a read cut
 *   off by the failed node again without failing), makes it re-read its own pending entries again before reading on.
 * - Reading holds no connection: `XREADGROUP` without `BLOCK` on the shared connection, only as many entries as free
 *   in-flight slots (the consumer never holds more than `maxInFlight` unacknowledged messages, so it pulls as fast as
 *   they are handled). When the stream is drained it waits for a wake-up: the publish script announces new entries on
 *   the topic's wake channel (the client's one subscriber connection hears it), a reconnect of that connection wakes
 *   every consumer, and `pollInterval` bounds the wait (entries added by other writers than `Publisher`). A wake-up
 *   during a read makes the consumer read again, so no entry waits for the next one.
 * - Claiming: every `claimInterval`, a script (`XPENDING … IDLE`, `XCLAIM`) takes entries idle longer than
 *   `claimIdleTime` (their consumer died), as many as there are free slots, passing over those waiting for a retry;
 *   entries trimmed away are dropped from the pending list by Redis (counted and logged).
 *   The same tick resets the idle time of this consumer's own long-running messages (`XCLAIM … JUSTID`), so they
 *   are not claimed while being handled.
 * - Retries and hand-backs: a message nacked with a delay, or handed back when the consumer stops, moves to the
 *   group's holder consumer and the retry set (scripts `retryLater`, `takeDue`); the retry loop takes due ones at the
 *   due time it knows of, when woken ("due" on the wake channel), and every `claimInterval`.
 * - Delivery counts come from Redis (`XPENDING`); a message delivered more than `maxDeliveries` times, or an entry
 *   that is not a message, goes to the dead-letter stream with its reason, atomically (a Lua script).
 * - Failures that can pass (Redis down, a failover, the group deleted) are retried with backoff, and logged once per
 *   outage; one that cannot (`WRONGTYPE`, `NOPERM` on the topic) ends the consumer with that typed error.
 *
 * @internal
 */
import { Cause, Deferred, Duration, Effect, Exit, Fiber, Metric, Queue, Schedule, Scope } from "effect"
import * as RedisClient from "../../RedisClient.js"
import { type DeadLetterInfo, fromRedis, type Message, type MessagingError } from "../../Message.js"
import * as Combiner from "../combiner.js"
import * as Outage from "../outage.js"
import * as Failure from "./failure.js"
import * as Metrics from "./metrics.js"
import * as Scripts from "./scripts.js"
import { decode, deadTopicOf, idTime, keyOf, type RawEntry, retryHolder, retryKeyOf, wakeChannelOf } from "./wire.js"
import type { Received } from "../../Subscriber.js"

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
}

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
   * Stops reading and claiming, hands the messages received but not taken back to the group, and ends `messages`
   * (those taken can still be acknowledged).
   */
  readonly stop: Effect.Effect<void>
  /** Hands every message still held (taken and not settled: a handler interrupted) back to the group at once. */
  readonly handBackHeld: Effect.Effect<void>
  /** Acknowledges a message without waiting for Redis (a failed acknowledgement only means a redelivery). */
  readonly acknowledge: (id: string) => void
}

const delivered = Metric.counter("messaging_delivered", { description: "messages delivered to a consumer" })
const acked = Metric.counter("messaging_acked", { description: "messages acknowledged" })
const nacked = Metric.counter("messaging_nacked", { description: "messages given back" })
const claimed = Metric.counter("messaging_claimed", { description: "messages claimed from dead consumers" })
const deadLettered = Metric.counter("messaging_dead_lettered", { description: "messages moved to dead letters" })

const pendingGauge = Metric.gauge("messaging_pending", { description: "entries delivered and not acknowledged" })
const lagGauge = Metric.gauge("messaging_lag", { description: "entries not yet delivered to the group" })
const unreadAgeGauge = Metric.gauge("messaging_oldest_unread_age_ms", {
  description: "age of the oldest entry the group has not read yet (0: none)"
})
const pendingAgeGauge = Metric.gauge("messaging_oldest_pending_age_ms", {
  description: "age of the oldest entry delivered to the group and not acknowledged (0: none)"
})

/** How a received message is settled: the consumer's operations, shared by all its messages. */
interface Settle {
  readonly topic: string
  readonly acknowledgement: (id: string) => Effect.Effect<void, MessagingError>
  readonly giveBack: (
    id: string,
    deliveries: number,
    options?: { readonly delay?: Duration.Input | undefined }
  ) => Effect.Effect<void, MessagingError>
  readonly deadLetter: (
    id: string,
    reason: string,
    deliveries: number,
    error?: unknown
  ) => Effect.Effect<void, MessagingError>
}

/**
 * A received message. Its effects are made when used (most messages only ever get a quiet acknowledgement): `ack` is a
 * getter of the class; `nack` and `deadLetter` are own functions, so they may be passed around detached from it.
 */
class ReceivedMessage implements Received {
  readonly topic: string
  readonly nack: Received["nack"]
  readonly deadLetter: Received["deadLetter"]
  constructor(
    private readonly settle: Settle,
    readonly id: string,
    readonly message: Message,
    readonly deliveries: number,
    readonly deadLettered: DeadLetterInfo | undefined
  ) {
    this.topic = settle.topic
    this.nack = (options) => settle.giveBack(id, deliveries, options)
    this.deadLetter = (reason, options) => settle.deadLetter(id, reason, deliveries, options?.error)
  }
  get ack() {
    return this.settle.acknowledgement(this.id)
  }
}

type GroupReply = ReadonlyArray<readonly [key: Buffer, entries: ReadonlyArray<RawEntry>]> | null

/** Starts a consumer in the scope; closing the scope stops it and removes it from the group if it holds nothing. */
export const start = (options: ConsumerOptions): Effect.Effect<Consumer, MessagingError, Scope.Scope> =>
  Effect.gen(function* () {
    const { redis, topic, group, consumer } = options
    const key = keyOf(options.keyPrefix, topic)
    const deadKey = keyOf(options.keyPrefix, deadTopicOf(topic))
    const retryKey = retryKeyOf(key, group)
    // acknowledgements run in a child scope, closed after the consumer's own shutdown (a closing scope takes no new
    // fibers, and handlers finishing during a graceful shutdown still acknowledge)
    const scope = yield* Scope.fork(yield* Effect.scope)
    const attributes = { topic, group }
    const tagged = new Map<Metric.Metric<number, unknown>, Metric.Metric<number, unknown>>()
    const count = (metric: Metric.Metric<number, unknown>, n: number) => {
      if (n === 0) return Effect.void
      let series = tagged.get(metric)
      if (series === undefined) {
        series = Metric.withAttributes(metric, attributes)
        tagged.set(metric, series)
      }
      return Metric.update(series, n)
    }
    const messages = yield* Queue.unbounded<Received, MessagingError | Cause.Done>()
    const ended = yield* Deferred.make<never, MessagingError>()
    /** This consumer's messages not yet acknowledged (or dead-lettered), with when each was last delivered. */
    const inFlight = new Map<string, number>()
    /** The reader, when it waits for a free slot. */
    let slotWaiter: Deferred.Deferred<void> | undefined
    let claimCursor = "-"
    const toError = fromRedis(topic)

    /** Sends a command; a failure as the topic's `MessagingError`. */
    const send = <A>(command: string, ...args: ReadonlyArray<string | number>) =>
      redis.send<A>(command, ...args).pipe(Effect.mapError(toError))

    const release = (id: string) => {
      if (!inFlight.delete(id) || slotWaiter === undefined) return
      Deferred.doneUnsafe(slotWaiter, Exit.void)
      slotWaiter = undefined
    }

    const freeSlots = () => options.maxInFlight - inFlight.size

    const waitForSlot: Effect.Effect<number> = Effect.suspend(() => {
      const free = freeSlots()
      if (free > 0) return Effect.succeed(free)
      slotWaiter ??= Deferred.makeUnsafe<void>()
      return Effect.andThen(Deferred.await(slotWaiter), waitForSlot)
    })

    const ensureGroup = redis.send("XGROUP", "CREATE", key, group, options.start, "MKSTREAM").pipe(
      Effect.catchIf(
        (error) => error.code === "BUSYGROUP",
        () => Effect.void
      ),
      Effect.mapError(toError)
    )

    /** Delivery counts of this consumer's pending entries between `first` and `last`. */
    const deliveryCounts = (first: string, last: string, n: number) =>
      send<Array<[string, string, number, number]>>("XPENDING", key, group, first, last, n, consumer).pipe(
        Effect.map((rows) => new Map(rows.map((row) => [row[0], row[3]])))
      )

    const deadLetter = (id: string, reason: string, deliveries: number, error?: unknown) =>
      redis
        .eval(
          Scripts.deadLetter,
          [key, deadKey],
          [
            group,
            id,
            reason,
            topic,
            consumer,
            deliveries,
            new Date().toISOString(),
            options.deadLetterMaxLength,
            wakeChannelOf(deadKey),
            error === undefined ? "" : Failure.errorJson(error)
          ]
        )
        .pipe(
          Effect.mapError(toError),
          Effect.tap(() => count(deadLettered, 1)),
          // moved or not, the slot is free (not moved: its lease is no longer renewed, so a claim delivers it again)
          Effect.ensuring(Effect.sync(() => release(id)))
        )

    const acks = Combiner.make<string, void, MessagingError, undefined>({
      scope,
      state: () => undefined,
      write: (_key, ids) =>
        send("XACK", key, group, ...ids).pipe(
          Effect.tap(() => count(acked, ids.length)),
          Effect.map(() => ids.map(() => Exit.void)),
          Effect.catch((error) => Effect.succeed(ids.map(() => Exit.fail(error)))),
          // acknowledged or not, the slot is free: an unacknowledged message is delivered again
          Effect.ensuring(Effect.sync(() => ids.forEach(release)))
        )
    })

    /** Redelivers a nacked message to this consumer (XCLAIM counts the delivery). */
    const redeliver = (id: string, deliveries: number): Effect.Effect<void, MessagingError> =>
      redis.sendBytes<Array<RawEntry>>("XCLAIM", key, group, consumer, 0, id).pipe(
        Effect.mapError(toError),
        Effect.flatMap((entries) =>
          entries.length === 0 ? Effect.sync(() => release(id)) : deliver(entries, () => deliveries + 1)
        )
      )

    const nack = (id: string, deliveries: number, delay: Duration.Duration): Effect.Effect<void, MessagingError> =>
      Effect.gen(function* () {
        yield* count(nacked, 1)
        if (options.maxDeliveries !== undefined && deliveries >= options.maxDeliveries) {
          return yield* deadLetter(id, `nacked after ${deliveries} deliveries`, deliveries)
        }
        if (Duration.isZero(delay)) return yield* redeliver(id, deliveries)
        // the delay lives in Redis: the group's next consumer to find it due takes it, and the slot is free meanwhile
        yield* scheduleRetries([[id, Duration.toMillis(delay), -1]])
        release(id)
        pokeDue(Date.now() + Duration.toMillis(delay))
      }).pipe(
        // not settled: the slot is freed and the lease no longer renewed, so a claim redelivers it after claimIdleTime
        Effect.onError(() => Effect.sync(() => release(id)))
      )

    /** Schedules entries (id, delay in ms, delivery count to set or -1) for a delivery by the group (see `retryLater`). */
    const scheduleRetries = (entries: ReadonlyArray<readonly [id: string, delayMs: number, count: number]>) =>
      entries.length === 0
        ? Effect.void
        : redis
            .eval(
              Scripts.retryLater,
              [key, retryKey],
              [group, retryHolder, wakeChannelOf(key), consumer, ...entries.flat()]
            )
            .pipe(Effect.mapError(toError), Effect.asVoid)

    /** Entries found deleted from the stream while still pending: the group never handled them. */
    const noteDropped = (deleted: number, where: string) =>
      deleted === 0
        ? Effect.void
        : Effect.andThen(
            count(Metrics.dropped, deleted),
            Effect.logWarning(
              `Subscriber: ${deleted} pending message(s) of ${topic}/${group} were deleted from the stream before ` +
                `they were handled (${where}): trimmed or deleted by hand`
            )
          )

    /** Set when the consumer is closed: an acknowledgement then goes to Redis directly (nothing batches it any more). */
    let closed = false
    /** Removes this consumer from the group if it holds no message (in Redis). */
    const leaveIfIdle = redis.eval(Scripts.removeIdleConsumer, [key], [group, consumer]).pipe(Effect.ignore)
    const acknowledgement = (id: string) =>
      closed
        ? send("XACK", key, group, id).pipe(
            Effect.tap(() => Effect.sync(() => release(id))),
            Effect.tap(() => (inFlight.size === 0 ? leaveIfIdle : Effect.void)),
            Effect.asVoid
          )
        : acks.submit(key, id)
    const giveBack = (id: string, deliveries: number, nackOptions?: { readonly delay?: Duration.Input | undefined }) =>
      nack(
        id,
        deliveries,
        nackOptions?.delay === undefined
          ? options.redeliveryDelay(deliveries)
          : Duration.fromInputUnsafe(nackOptions.delay)
      )

    const settle: Settle = { topic, acknowledgement, giveBack, deadLetter }

    /** Hands entries to the subscriber, or dead-letters those that are not messages or were delivered too often. */
    function deliver(
      entries: ReadonlyArray<RawEntry>,
      deliveriesOf: (id: string) => number
    ): Effect.Effect<void, MessagingError> {
      return Effect.suspend(() => {
        const rejected: Array<readonly [id: string, reason: string, deliveries: number]> = []
        const deleted: Array<string> = []
        const accepted: Array<Received> = []
        for (const [rawId, fields] of entries) {
          const id = rawId.toString()
          const deliveries = deliveriesOf(id)
          // a pending entry deleted from the stream: nothing to deliver, nothing to keep (counted and logged)
          if (fields === null || fields.length === 0) {
            deleted.push(id)
            continue
          }
          const decoded = decode(fields)
          if ("problem" in decoded) {
            rejected.push([id, `not a message: ${decoded.problem}`, deliveries])
          } else if (options.maxDeliveries !== undefined && deliveries > options.maxDeliveries) {
            rejected.push([id, `delivered ${deliveries} times, more than ${options.maxDeliveries}`, deliveries])
          } else {
            accepted.push(new ReceivedMessage(settle, id, decoded.message, deliveries, decoded.deadLettered))
          }
        }
        const deliverAccepted = Effect.sync(() => {
          const now = Date.now()
          for (const received of accepted) {
            inFlight.set(received.id, now)
            Queue.offerUnsafe(messages, received)
          }
        })
        if (rejected.length === 0 && deleted.length === 0) {
          return Effect.andThen(deliverAccepted, count(delivered, accepted.length))
        }
        // what cannot be delivered is settled first, so the entries behind it are handled after it, in stream order
        return Effect.all(
          [
            deleted.length === 0
              ? Effect.void
              : send("XACK", key, group, ...deleted).pipe(
                  Effect.andThen(noteDropped(deleted.length, "read again from the pending list"))
                ),
            Effect.forEach(rejected, ([id, reason, deliveries]) => deadLetter(id, reason, deliveries), {
              discard: true
            }),
            deliverAccepted,
            count(delivered, accepted.length)
          ],
          { discard: true }
        )
      })
    }

    /**
     * A read of new entries whose reply was lost (the connection dropped, a timeout) may have moved entries to this
     * consumer's pending list in Redis without them reaching it: its own pending entries are read again before new
     * ones, rather than waiting `claimIdleTime` for a claim.
     */
    let lostRead = false
    /**
     * The client's last trouble this consumer has seen (see `RedisClient.lastTroubleAt`): after a failover, a Cluster
     * client sends a read cut off by a hung or dead node again without failing, and the first one may have moved
     * entries to this consumer's pending list on the old master, which the new one got by replication.
     */
    let seenTroubleAt = redis.lastTroubleAt()

    /** Reads up to `n` entries after `from` (`>`: new ones) without blocking. */
    const readGroup = (from: string, n: number) =>
      redis.sendBytes<GroupReply>("XREADGROUP", "GROUP", group, consumer, "COUNT", n, "STREAMS", key, from).pipe(
        Effect.tapError((error) =>
          Effect.sync(() => {
            if (from === ">" && RedisClient.mayHaveRun(error)) lostRead = true
          })
        ),
        Effect.mapError(toError),
        Effect.map((reply) => reply?.[0]?.[1] ?? [])
      )

    /**
     * Re-reads this consumer's own pending entries once, page by page, as slots free up; those it is handling now are
     * not delivered twice.
     */
    const readOwnPending = Effect.gen(function* () {
      let cursor = "0"
      for (;;) {
        const free = yield* waitForSlot
        const page = yield* readGroup(cursor, free)
        const last = page.at(-1)
        if (last === undefined) return
        cursor = last[0].toString()
        const entries = page.filter(([id]) => !inFlight.has(id.toString()))
        if (entries.length === 0) continue
        const counts = yield* deliveryCounts(entries[0]![0].toString(), entries.at(-1)![0].toString(), entries.length)
        yield* deliver(entries, (id) => counts.get(id) ?? 1)
      }
    })

    /** Entries with their delivery counts, as the claim and retry scripts return them, delivered. */
    const deliverCounted = (entries: ReadonlyArray<RawEntry>, counts: ReadonlyArray<number>) => {
      if (entries.length === 0) return Effect.void
      const byId = new Map(entries.map((entry, i) => [entry[0].toString(), counts[i] ?? 1]))
      return deliver(entries, (id) => byId.get(id) ?? 1)
    }

    /**
     * Takes over entries other consumers left idle, as many as there are free slots; those waiting for a retry are
     * not taken before they are due.
     */
    const claimOnce = Effect.gen(function* () {
      const free = freeSlots()
      if (free <= 0) return
      const [cursor, entries, counts, deleted] = yield* redis
        .evalBytes(
          Scripts.claimIdle,
          [key, retryKey],
          [group, consumer, Duration.toMillis(options.claimIdleTime), claimCursor, free, retryHolder]
        )
        .pipe(Effect.mapError(toError))
      claimCursor = cursor.toString()
      yield* noteDropped(deleted, "found by a claim")
      yield* deliverCounted(entries, counts)
      yield* count(claimed, entries.length)
    })

    /** When this consumer expects the next retry of the group to be due (ms since the epoch, its clock). */
    let nextDueAt = Number.POSITIVE_INFINITY
    let dueWaiter: Deferred.Deferred<void> | undefined
    /** Tells the retry loop that a retry is due at `at` (now: a message was handed back). */
    const pokeDue = (at: number) => {
      if (at >= nextDueAt) return
      nextDueAt = at
      if (dueWaiter === undefined) return
      Deferred.doneUnsafe(dueWaiter, Exit.void)
      dueWaiter = undefined
    }

    /** Takes the group's due retries, as many as there are free slots; true when there may be more due. */
    const takeDueOnce = Effect.gen(function* () {
      const free = yield* waitForSlot
      nextDueAt = Number.POSITIVE_INFINITY // a poke during the call lowers it
      const [entries, counts, nextInMs, deleted] = yield* redis
        .evalBytes(Scripts.takeDue, [key, retryKey], [group, consumer, free, retryHolder])
        .pipe(Effect.mapError(toError))
      if (nextInMs >= 0) nextDueAt = Math.min(nextDueAt, Date.now() + nextInMs)
      yield* noteDropped(deleted, "due for a retry")
      yield* deliverCounted(entries, counts)
      return entries.length + deleted === free
    })

    /**
     * Delivers retries as they fall due: when this consumer scheduled one, when a message is handed back, or at the
     * latest every `claimInterval` (retries another consumer scheduled).
     */
    const retryLoop = Effect.gen(function* () {
      const interval = Duration.toMillis(options.claimInterval)
      let lastLook = 0
      for (;;) {
        const now = Date.now()
        if (now >= nextDueAt || now - lastLook >= interval) {
          lastLook = now
          if (yield* takeDueOnce) continue
        }
        const wait = Math.min(nextDueAt, lastLook + interval) - Date.now()
        if (wait <= 0) continue
        dueWaiter ??= Deferred.makeUnsafe<void>()
        yield* Effect.timeoutOption(Deferred.await(dueWaiter), Duration.millis(wait))
      }
    })

    /**
     * Resets the idle time of this consumer's messages held for a while, so nobody claims them meanwhile (only those it
     * still holds).
     */
    const extendLeases = Effect.suspend(() => {
      const threshold = Date.now() - Duration.toMillis(options.claimIdleTime) / 2
      const held = Array.from(inFlight).flatMap(([id, since]) => (since < threshold ? [id] : []))
      if (held.length === 0) return Effect.void
      return redis.eval(Scripts.renewLeases, [key], [group, consumer, ...held]).pipe(
        Effect.mapError(toError),
        Effect.tap(() =>
          Effect.sync(() => {
            const now = Date.now()
            for (const id of held) if (inFlight.has(id)) inFlight.set(id, now)
          })
        )
      )
    })

    /** Updates the group's gauges: pending and lag in entries, and the ages of its oldest unread and pending ones. */
    const reportGroup = Effect.flatMap(
      redis.eval(Scripts.groupLag, [key], [group]).pipe(Effect.mapError(toError)),
      ([pending, lag, oldestUnread, oldestPending, now]) => {
        const ageOf = (id: string | null) => (id === null ? 0 : Math.max(0, now - idTime(id)))
        return Effect.all(
          [
            Metric.update(Metric.withAttributes(pendingGauge, attributes), pending),
            lag < 0 ? Effect.void : Metric.update(Metric.withAttributes(lagGauge, attributes), lag),
            Metric.update(Metric.withAttributes(unreadAgeGauge, attributes), ageOf(oldestUnread)),
            Metric.update(Metric.withAttributes(pendingAgeGauge, attributes), ageOf(oldestPending))
          ],
          { discard: true }
        )
      }
    )

    // wake-ups: a publish to the topic, or a reconnect of the subscriber connection (wake-ups may have been lost)
    let news = false
    let newsWaiter: Deferred.Deferred<void> | undefined
    const wake = () => {
      news = true
      if (newsWaiter === undefined) return
      Deferred.doneUnsafe(newsWaiter, Exit.void)
      newsWaiter = undefined
    }
    /** What the wake channel says: new entries (their count), or "due" (a message handed back); a reconnect: both. */
    const hear = (event: RedisClient.PubSubEvent) => {
      if (event._tag === "Reconnected" || event.message === "due") pokeDue(0)
      if (event._tag === "Reconnected" || event.message !== "due") wake()
    }
    /** Waits for a wake-up, at most `pollInterval`; returns at once when one came since the last read began. */
    const awaitNews = Effect.suspend(() => {
      if (news) return Effect.void
      newsWaiter ??= Deferred.makeUnsafe<void>()
      return Effect.timeoutOption(Deferred.await(newsWaiter), options.pollInterval)
    })

    let listening = false
    let groupReady = false
    let startedUp = false
    /** Listens for wake-ups and creates the group; done again after a failure took the group away. */
    const setUp = Effect.gen(function* () {
      if (!listening) {
        yield* Scope.provide(redis.listen([wakeChannelOf(key)], hear), scope).pipe(Effect.mapError(toError))
        listening = true
      }
      if (!groupReady) {
        yield* ensureGroup
        groupReady = true
      }
    })

    /** Reads new entries while there are free slots; when the stream is drained, waits for news. */
    const readNew = Effect.gen(function* () {
      for (;;) {
        const free = yield* waitForSlot
        const wanted = Math.min(free, options.batchCount)
        news = false
        if (redis.lastTroubleAt() !== seenTroubleAt) {
          seenTroubleAt = redis.lastTroubleAt()
          yield* readOwnPending
        }
        const entries = yield* readGroup(">", wanted)
        yield* options.outage.succeeded
        if (entries.length > 0) yield* deliver(entries, () => 1)
        if (entries.length < wanted) yield* awaitNews
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

    const claimPass = Effect.all([claimOnce, extendLeases, reportGroup], { discard: true })
    const readLoop = Effect.gen(function* () {
      yield* setUp
      if (!startedUp) {
        yield* readOwnPending
        yield* claimPass
        startedUp = true
      }
      if (lostRead) {
        // commands run in order on the connection: this read comes after the lost one, and sees what it took
        yield* readOwnPending
        lostRead = false
      }
      yield* readNew
    }).pipe(Effect.tapError(reportFailure("reading")), Effect.retry({ schedule: Outage.backoff, while: recoverable }))

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
    const reader = yield* Effect.forkScoped(
      readLoop.pipe(Effect.catch((error) => Effect.andThen(Queue.fail(messages, error), Deferred.fail(ended, error))))
    )
    const claimer = yield* Effect.forkScoped(
      Effect.andThen(
        Effect.sync(() => startedUp),
        claimLoop
      )
    )
    const retrier = yield* Effect.forkScoped(
      retryLoop.pipe(
        Effect.tapError(reportFailure("taking due retries")),
        Effect.retry({ schedule: Outage.backoff, while: recoverable }),
        Effect.ignore
      )
    )

    /**
     * Hands messages this consumer holds back to the group at once (due now, the consumers woken): another consumer
     * takes them without waiting for `claimIdleTime`. `count`: the delivery count to leave (-1: as it is).
     */
    const handBack = (held: ReadonlyArray<readonly [id: string, count: number]>) =>
      scheduleRetries(held.map(([id, count]) => [id, 0, count] as const)).pipe(
        Effect.tap(() => Effect.sync(() => held.forEach(([id]) => release(id)))),
        Effect.tapError((error) =>
          Effect.logWarning(
            `Subscriber: ${consumer} could not hand ${held.length} message(s) of ${topic}/${group} back; ` +
              `they are claimed after claimIdleTime`,
            error
          )
        ),
        Effect.ignore
      )

    /** This consumer's pending entries in Redis, with their delivery counts. */
    const ownPending = send<Array<[string, string, number, number]>>(
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
      yield* Fiber.interruptAll([reader, claimer, retrier])
      const unstarted = yield* Queue.clear(messages).pipe(Effect.orElseSucceed((): Array<Received> => []))
      yield* Queue.end(messages)
      const taken = new Set(inFlight.keys())
      for (const received of unstarted) taken.delete(received.id)
      const held = yield* ownPending.pipe(
        Effect.orElseSucceed(() => unstarted.map((received) => [received.id, received.deliveries] as const))
      )
      yield* handBack(held.flatMap(([id, deliveries]) => (taken.has(id) ? [] : [[id, deliveries - 1] as const])))
    })

    yield* Effect.addFinalizer(() =>
      stop.pipe(
        Effect.tap(() =>
          Effect.sync(() => {
            closed = true
          })
        ),
        // acknowledgements still on their way are written before the consumer goes; it leaves the group when it holds
        // nothing (else once the last message it holds is acknowledged)
        Effect.andThen(acks.flush.pipe(Effect.timeoutOption("5 seconds"))),
        Effect.andThen(leaveIfIdle),
        Effect.ignore
      )
    )

    return {
      messages,
      failure: Deferred.await(ended),
      stop,
      // acknowledgements on their way are written first: only what is still unsettled goes back
      handBackHeld: acks.flush.pipe(
        Effect.timeoutOption("5 seconds"),
        Effect.andThen(Effect.suspend(() => handBack(Array.from(inFlight.keys(), (id) => [id, -1] as const))))
      ),
      acknowledge: (id) => acks.submitUnsafe(key, id)
    }
  })
