/**
 * A consumer's reader: `XREADGROUP` without `BLOCK` on the shared connection, only as many entries as there are free
 * in-flight slots. New entries are read until the stream is drained, then it waits for news (a publish to the topic
 * or a reconnect, at most `pollInterval`). Its own pending entries are read again at start-up, after a read whose
 * reply was lost (Redis may have delivered entries that never arrived), and after trouble the client saw (a failover:
 * a Cluster client sends a read cut off by the failed node again without failing). With a `fence` (a partition's
 * lease), a read runs only while the lease is the reader's.
 *
 * @internal
 */
import { Effect } from "effect"
import * as RedisClient from "../../../RedisClient.js"
import type { MessagingError } from "../../../Message.js"
import type { RedisError } from "../../../RedisError.js"
import * as Scripts from "../scripts.js"
import type { RawEntry } from "../wire.js"
import { type Context, send } from "./context.js"
import { deliver } from "./delivery.js"
import type { Settler } from "./settle.js"
import type { Signal } from "./signal.js"

type GroupReply = ReadonlyArray<readonly [key: Buffer, entries: ReadonlyArray<RawEntry>]> | null

/** The reader of one consumer. */
export interface Reader {
  /** Re-reads this consumer's own pending entries once, as slots free up (those it handles now are not redelivered). */
  readonly readOwnPending: Effect.Effect<void, MessagingError>
  /** Re-reads its own pending entries if a read's reply was lost since the last time. */
  readonly recoverLostRead: Effect.Effect<void, MessagingError>
  /** Reads new entries for ever, waiting for `news` whenever the stream is drained. */
  readonly readNew: Effect.Effect<never, MessagingError>
}

/** The reader of a consumer; `news` is raised by the consumer's wake-ups. */
export const make = (context: Context, settler: Settler, news: Signal): Reader => {
  const { redis, key, group, consumer, options, slots } = context
  /** A read of new entries whose reply was lost (see the module). */
  let lostRead = false
  /** The client's last trouble this reader has seen (see `RedisClient.lastTroubleAt`). */
  let seenTroubleAt = redis.lastTroubleAt()

  const fence = options.fence
  const readGroup = (from: string, n: number) =>
    (fence === undefined
      ? redis.sendBytes<GroupReply>("XREADGROUP", "GROUP", group, consumer, "COUNT", n, "STREAMS", key, from)
      : (redis.evalBytes(
          Scripts.fencedRead,
          [key, fence.lease],
          [group, consumer, n, from, fence.holder]
        ) as Effect.Effect<GroupReply, RedisError>)
    ).pipe(
      Effect.tapError((error) =>
        Effect.sync(() => {
          if (from === ">" && RedisClient.mayHaveRun(error)) lostRead = true
        })
      ),
      Effect.mapError(context.toError),
      Effect.map((reply) => reply?.[0]?.[1] ?? [])
    )

  /** Delivery counts of this consumer's pending entries between `first` and `last`. */
  const deliveryCounts = (first: string, last: string, n: number) =>
    send<Array<[string, string, number, number]>>(context, "XPENDING", key, group, first, last, n, consumer).pipe(
      Effect.map((rows) => new Map(rows.map((row) => [row[0], row[3]])))
    )

  const readOwnPending = Effect.gen(function* () {
    let cursor = "0"
    for (;;) {
      const free = yield* slots.wait
      const page = yield* readGroup(cursor, free)
      const last = page.at(-1)
      if (last === undefined) return
      cursor = last[0].toString()
      const entries = page.filter(([id]) => !slots.inFlight.has(id.toString()))
      if (entries.length === 0) continue
      const counts = yield* deliveryCounts(entries[0]![0].toString(), entries.at(-1)![0].toString(), entries.length)
      yield* deliver(context, settler, entries, (id) => counts.get(id) ?? 1)
    }
  })

  const readNew = Effect.gen(function* () {
    for (;;) {
      const free = yield* slots.wait
      const wanted = Math.min(free, options.batchCount)
      news.lower()
      if (redis.lastTroubleAt() !== seenTroubleAt) {
        seenTroubleAt = redis.lastTroubleAt()
        yield* readOwnPending
      }
      const entries = yield* readGroup(">", wanted)
      yield* options.outage.succeeded
      if (entries.length > 0) yield* deliver(context, settler, entries, () => 1)
      if (entries.length < wanted) yield* news.await(options.pollInterval)
    }
  })

  return {
    readOwnPending,
    // commands run in order on the connection: this read comes after the lost one, and sees what it took
    recoverLostRead: Effect.suspend(() =>
      lostRead
        ? Effect.andThen(
            readOwnPending,
            Effect.sync(() => (lostRead = false))
          )
        : Effect.void
    ),
    readNew
  }
}
