/**
 * Reading one run: backfill from Redis, then the live tail, with no gap and no duplicate between the two.
 *
 * The reader subscribes to the run's channel first (confirmed by Redis), then reads the stream with XRANGE from its
 * offset. Announcements carry the entries themselves, so the live tail costs no read; an announcement whose first
 * sequence number is not the next one expected (a message dropped, or a reconnect) makes the reader catch up with
 * XRANGE from its last entry id, and entries already seen are skipped by sequence number. No connection is held per
 * reader: all readers of a process share the client's one subscriber connection and its shared connection.
 *
 * A quiet run is judged by its heartbeat, not by counting empty reads: when nothing arrives for `checkInterval`,
 * the reader reads the run's meta (server time) and fails with `ProducerLost` when the producer's heartbeat is older
 * than `producerTimeout`, `Expired` when the run's keys are gone, and catches up when the run has ended.
 *
 * @internal
 */
import { Duration, Effect, Option, Queue, Stream } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import * as Lua from "../lua.js"
import { fail, fromRedis, type ResumableStreamError } from "./error.js"
import type { RunKeys } from "./keys.js"
import * as Scripts from "./scripts.js"
import { parseAnnouncement, parseEntry, type RawEntry, type Terminal } from "./wire.js"

/** A chunk entry as read, not decoded yet. */
export type RawChunk = Extract<RawEntry, { readonly _tag: "Chunk" }>

/** What a reader needs. */
export interface ReadOptions {
  readonly redis: RedisClient.Service
  readonly keys: RunKeys
  readonly runId: string
  /** Read entries after this id; from the start when undefined. */
  readonly after: string | undefined
  readonly pageSize: number
  readonly checkInterval: Duration.Duration
  readonly producerTimeout: Duration.Duration
  /** Reason when the run's keys do not exist: `Expired` for a verified token, else `NotFound`. */
  readonly missing: "NotFound" | "Expired"
  /** How the run's end becomes the end of the stream (completed) or its failure. */
  readonly onEnd: (terminal: Terminal, entryId: string) => Effect.Effect<void, ResumableStreamError>
}

type XRangeReply = Array<[string, Array<string>]>

/** The chunk entries of a run, from `after` to its end marker. */
export const read = (options: ReadOptions): Stream.Stream<RawChunk, ResumableStreamError> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const { redis, keys, runId } = options
      const redisError = fromRedis(runId)
      const inbox = yield* Effect.mapError(redis.subscribe(keys.channel), redisError)

      const runStatus = Lua.run(redis.client, Scripts.status, [keys.meta], []).pipe(Effect.mapError(redisError))
      const range = (start: string, end: string, count: number) =>
        redis
          .use("xrange", (c) => c.xrange(keys.stream, start, end, "COUNT", count) as Promise<XRangeReply>)
          .pipe(
            Effect.mapError(redisError),
            Effect.map((reply) => reply.map(parseEntry))
          )

      if ((yield* runStatus).length === 0) {
        return yield* fail(options.missing, "no such run (it never existed, or its data expired)", runId)
      }

      let lastId = "0-0"
      let lastSeq = 0
      if (options.after !== undefined) {
        const [found] = yield* range(options.after, options.after, 1)
        if (found === undefined) {
          return yield* fail("Truncated", `entry ${options.after} is not in the run (trimmed, or never there)`, runId)
        }
        lastId = found.id
        lastSeq = found.seq
      }
      let behind = true // entries may be in Redis that were not delivered yet
      let end: Extract<RawEntry, { readonly _tag: "End" }> | undefined
      let finished = false

      /**
       * Takes entries in order, up to the end marker, which is kept for the next pull (so the chunks before it are
       * delivered even when the run failed); fails `Truncated` on a hole in the sequence.
       */
      const deliver = (entries: ReadonlyArray<RawEntry>) =>
        Effect.gen(function* () {
          const chunks: Array<RawChunk> = []
          for (const entry of entries) {
            if (end !== undefined || (entry.seq !== 0 && entry.seq <= lastSeq)) continue
            if (entry.seq !== 0 && entry.seq !== lastSeq + 1) {
              return yield* fail("Truncated", `entries ${lastSeq + 1}…${entry.seq - 1} were trimmed`, runId)
            }
            lastId = entry.id
            lastSeq = entry.seq
            if (entry._tag === "End") end = entry
            else chunks.push(entry)
          }
          return chunks
        })

      const conclude = (marker: Extract<RawEntry, { readonly _tag: "End" }>) =>
        Effect.as(
          options.onEnd(marker.terminal, marker.id).pipe(Effect.ensuring(Effect.sync(() => (finished = true)))),
          [] as Array<RawChunk>
        )

      const catchUp = Effect.gen(function* () {
        const page = yield* range(lastId === "0-0" ? "-" : `(${lastId}`, "+", options.pageSize)
        behind = page.length === options.pageSize
        return yield* deliver(page)
      })

      const judgeQuietRun = Effect.gen(function* () {
        const state = yield* runStatus
        if (state.length === 0) return yield* fail("Expired", "the run's data expired while it was read", runId)
        const [status, age] = state
        if (status !== "running") behind = true
        else if (Number(age) > Duration.toMillis(options.producerTimeout)) {
          return yield* fail("ProducerLost", `no heartbeat from the producer for ${age} ms and no end marker`, runId)
        }
        return [] as Array<RawChunk>
      })

      const listen = Effect.gen(function* () {
        const events = yield* Queue.takeAll(inbox).pipe(Effect.timeoutOption(options.checkInterval))
        if (Option.isNone(events)) return yield* judgeQuietRun
        const announced: Array<RawEntry> = []
        for (const event of events.value) {
          const entries = event._tag === "Message" ? parseAnnouncement(event.message) : undefined
          if (entries === undefined)
            behind = true // a reconnect (messages lost) or a malformed message
          else announced.push(...entries)
        }
        const fresh = announced.filter((entry) => entry.seq > lastSeq)
        if (behind || (fresh[0] !== undefined && fresh[0].seq !== lastSeq + 1)) {
          behind = true
          return [] as Array<RawChunk>
        }
        return yield* deliver(fresh)
      })

      const step = Effect.suspend(() => (end !== undefined ? conclude(end) : behind ? catchUp : listen))
      return Stream.paginate(undefined, () =>
        Effect.map(step, (chunks) => [chunks, finished ? Option.none() : Option.some(undefined)])
      )
    })
  )
