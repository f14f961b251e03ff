/**
 * Reading one run: backfill from Redis, then the live tail, with no gap and no duplicate between the two.
 *
 * The run's live tail (`liveTail.ts`) listens on the run's channel first, then the reader reads the stream with
 * XRANGE from its offset. Announcements carry the entries themselves, so the live tail costs no read; an announcement
 * whose first sequence number is not the next one expected (a message dropped, or a reconnect) makes the reader catch
 * up with XRANGE from its last entry id, and entries already seen are skipped by sequence number. No connection is
 * held per reader: all readers of a process share the client's one subscriber connection and its shared connection.
 *
 * A quiet run is judged by its meta, not by counting empty reads: when nothing arrived between two ticks of the shared
 * clock, the reader reads the run's status, heartbeat age (server time) and chunk count. It catches up when the run
 * has more chunks than it has seen (announcements were missed) or has ended, fails `Expired` when the run's keys are
 * gone, and fails `ProducerLost` when the producer's heartbeat is older than `producerTimeout`, unless the reader
 * itself had trouble reaching Redis within `producerTimeout` (a failed call, a reconnect, a reply held up longer than
 * a tick, or the client's own notice of a failover: after an outage or a failover the producer needs a moment to
 * heartbeat again, and the new master may hold an older heartbeat).
 *
 * Redis failures that can pass are retried for up to `outageTimeout` (the producer buffers for as long).
 *
 * Memory is bounded: announcements wait in the tail's inbox only up to `maxInboxBytes`; a reader that falls further
 * behind reads from Redis instead, from its last entry (no gap, no duplicate). Catch-up pages hold about `pageBytes`:
 * their entry count is sized from the largest entry of the previous page (the first from the largest an entry can be).
 *
 * @internal
 */
import { Duration, Effect, Option, Result, Schedule, Stream } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import type { RedisError } from "../../RedisError.js"
import { fail, fromRedis } from "./error.js"
import { type ResumableStreamError } from "../../ResumableStreamError.js"
import type { RunKeys } from "./keys.js"
import * as LiveTail from "../liveTail.js"
import * as Outage from "../outage.js"
import * as Scripts from "./scripts.js"
import { parseAnnouncement, parseEntry, type RawEntry, type Terminal } from "./wire.js"
import * as Reasons from "../../ResumableStreamError.js"

/** A chunk entry as read, not decoded yet. */
export type RawChunk = Extract<RawEntry, { readonly _tag: "Chunk" }>

/** What a reader needs; `A` is what a chunk entry becomes. */
export interface ReadOptions<A> {
  readonly redis: RedisClient.Service
  readonly keys: RunKeys
  readonly runId: string
  /** Read entries after this id; from the start when undefined. */
  readonly after: string | undefined
  /** Most entries per catch-up page. */
  readonly pageSize: number
  /** About how many bytes of entries a catch-up page holds. */
  readonly pageBytes: number
  /** Most bytes of announcements waiting in the inbox; beyond, the reader reads from Redis instead. */
  readonly maxInboxBytes: number
  /** Called each time the inbox overflowed and the reader fell back to reading from Redis. */
  readonly onOverflow: () => void
  /** The largest an entry can be (a run's `maxChunkBytes`): sizes the first catch-up page. */
  readonly maxEntryBytes: number
  /** Ticks at the interval at which a quiet run is checked: after a tick interval without any message. */
  readonly clock: LiveTail.Clock
  readonly producerTimeout: Duration.Duration
  /** How long retryable Redis failures are retried before the reader fails. */
  readonly outageTimeout: Duration.Duration
  /** Reason when the run's keys do not exist: `Expired` for a verified token, else `NotFound`. */
  readonly missing: typeof Reasons.NotFound | typeof Reasons.Expired
  /** How the run's end becomes the end of the stream (completed) or its failure. */
  readonly onEnd: (terminal: Terminal, entryId: string) => Effect.Effect<void, ResumableStreamError>
  /** Decodes a chunk entry (synchronously: readers decode whole pages at once). */
  readonly decode: (chunk: RawChunk) => Result.Result<A, ResumableStreamError>
}

/**
 * Where a reader is in a run (the last entry delivered) and what stops it: it takes entries in order and decodes
 * them, up to the end marker or the first failure (a hole in the sequence: `Truncated`; a chunk that does not
 * decode), which it keeps as `pending` for the next pull, so the chunks before it are delivered first.
 */
const makeCursor = <A>(options: ReadOptions<A>) => {
  const cursor = {
    lastId: "0-0",
    lastSeq: 0,
    /** How the stream goes on after the chunks already taken: the end marker, or a failure found in a page. */
    pending: undefined as Effect.Effect<void, ResumableStreamError> | undefined,
    deliver: (entries: ReadonlyArray<RawEntry>): Array<A> => {
      const chunks: Array<A> = []
      for (const entry of entries) {
        if (cursor.pending !== undefined) break
        if (entry.seq !== 0 && entry.seq <= cursor.lastSeq) continue
        if (entry.seq !== 0 && entry.seq !== cursor.lastSeq + 1) {
          cursor.pending = fail(
            Reasons.Truncated,
            `entries ${cursor.lastSeq + 1}…${entry.seq - 1} were trimmed`,
            options.runId
          )
          break
        }
        if (entry._tag === "End") {
          cursor.pending = options.onEnd(entry.terminal, entry.id)
          break
        }
        const decoded = options.decode(entry)
        if (Result.isFailure(decoded)) {
          cursor.pending = Effect.fail(decoded.failure)
          break
        }
        cursor.lastId = entry.id
        cursor.lastSeq = entry.seq
        chunks.push(decoded.success)
      }
      return chunks
    }
  }
  return cursor
}

/** The decoded chunk entries of a run, from `after` to its end marker. */
export const read = <A>(options: ReadOptions<A>): Stream.Stream<A, ResumableStreamError> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const { redis, keys, runId } = options
      const redisError = fromRedis(runId)
      /** When the reader last had trouble reaching Redis (a failed call, a reconnect of the subscriber). */
      let troubleAt = 0
      const noteTrouble = () => {
        troubleAt = Date.now()
      }
      // a dropped connection or a failover: retried while the producer buffers; a reconnect makes it catch up
      const rideOut = <A, R>(effect: Effect.Effect<A, RedisError, R>) =>
        Outage.retryAfterFailure(
          Effect.tapError(effect, (error) => Effect.sync(() => error.isRetryable && noteTrouble())),
          {
            schedule: () => Schedule.upTo(Outage.backoff, { duration: options.outageTimeout }),
            while: (error) => error.isRetryable
          }
        ).pipe(Effect.mapError(redisError))
      const runStatus = rideOut(redis.eval(Scripts.status, [keys.meta], []))
      const range = (start: string, end: string, count: number) =>
        rideOut(redis.send<RedisClient.StreamEntries>("XRANGE", keys.stream, start, end, "COUNT", count)).pipe(
          Effect.map((reply) => reply.map(parseEntry))
        )
      const cursor = makeCursor(options)

      /** The largest entry of the previous page; before any, the largest there can be. */
      let largestEntry = options.maxEntryBytes
      const catchUp = Effect.gen(function* () {
        const count = Math.max(1, Math.min(options.pageSize, Math.floor(options.pageBytes / largestEntry)))
        const page = yield* range(cursor.lastId === "0-0" ? "-" : `(${cursor.lastId}`, "+", count)
        largestEntry = page.reduce(
          (largest, entry) => Math.max(largest, entry._tag === "Chunk" ? entry.data.length : 0),
          page.length > 0 ? 1 : largestEntry
        )
        return { items: cursor.deliver(page), behind: page.length === count }
      })

      const judgeQuietRun = Effect.gen(function* () {
        const sentAt = Date.now()
        const state = yield* runStatus
        if (state.length === 0) return yield* fail(Reasons.Expired, "the run's data expired while it was read", runId)
        // a reply held up longer than a tick: the node hung or failed over, and the producer's heartbeat, sent to the
        // same node, may have been held up as long
        if (Date.now() - sentAt > Duration.toMillis(options.clock.interval)) noteTrouble()
        const [status, age, chunks] = state
        const timeout = Duration.toMillis(options.producerTimeout)
        if (status !== "running" || Number(chunks) > cursor.lastSeq) return { items: [], behind: true }
        if (Number(age) > timeout && Date.now() - Math.max(troubleAt, redis.lastTroubleAt()) > timeout) {
          return yield* fail(
            Reasons.ProducerLost,
            `no heartbeat from the producer for ${age} ms and no end marker`,
            runId
          )
        }
        return { items: [], behind: false }
      })

      /** Announced entries after the last one delivered, up to the first gap or malformed announcement. */
      const announced = (messages: ReadonlyArray<string>): LiveTail.Step<A> => {
        const fresh: Array<RawEntry> = []
        let expected = cursor.lastSeq + 1
        for (const message of messages) {
          const entries = parseAnnouncement(message)
          if (entries === undefined) return { items: cursor.deliver(fresh), behind: true }
          for (const entry of entries) {
            if (entry.seq < expected) continue
            if (entry.seq !== expected) return { items: cursor.deliver(fresh), behind: true }
            fresh.push(entry)
            expected += 1
          }
        }
        return { items: cursor.deliver(fresh), behind: false }
      }

      // subscribed before anything is read; a reader opened while Redis is away waits for it (up to outageTimeout)
      const tail = yield* rideOut(
        LiveTail.follow(
          {
            redis,
            channel: keys.channel,
            clock: options.clock,
            maxInboxBytes: options.maxInboxBytes,
            onOverflow: options.onOverflow,
            behind: true
          },
          { announced, catchUp, quiet: judgeQuietRun, onReconnect: noteTrouble }
        )
      )

      if ((yield* runStatus).length === 0) {
        return yield* fail(options.missing, "no such run (it never existed, or its data expired)", runId)
      }
      if (options.after !== undefined) {
        const [found] = yield* range(options.after, options.after, 1)
        if (found === undefined) {
          return yield* fail(
            Reasons.Truncated,
            `entry ${options.after} is not in the run (trimmed, or never there)`,
            runId
          )
        }
        cursor.lastId = found.id
        cursor.lastSeq = found.seq
      }

      let finished = false
      const conclude = (then: Effect.Effect<void, ResumableStreamError>) =>
        Effect.as(then.pipe(Effect.ensuring(Effect.sync(() => (finished = true)))), [] as ReadonlyArray<A>)
      const step = Effect.suspend(() => (cursor.pending !== undefined ? conclude(cursor.pending) : tail))
      return Stream.paginate(undefined, () =>
        Effect.map(step, (chunks) => [chunks, finished ? Option.none() : Option.some(undefined)])
      )
    })
  )
