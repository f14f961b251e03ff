/**
 * The writer of one run: chunks are encoded and checked when appended, buffered, and written by one background
 * fiber per run that takes everything buffered (up to a batch limit) and writes it with one script call: group commit.
 * A runner appending tokens one by one therefore costs one round trip per batch, not per token, and readers wake once
 * per batch. Latency stays one round trip: a chunk appended while no write is in flight is written at once.
 *
 * Writes are idempotent: each batch carries the sequence number of its first chunk, so a batch retried after a lost
 * reply is recognised as already written, never duplicated. Transient Redis failures (a dropped connection, a
 * failover) are retried until `outageTimeout` has passed without a successful write; the chunks wait in the buffer
 * meanwhile, so an outage shorter than that loses nothing. A refusal (fenced, cancelled, gone) or a longer outage
 * stops the writer, and appends then fail with that error. When a failover lost the last writes (asynchronous
 * replication: the new master is behind), the script says how far it got and the writer writes the missing chunks
 * again from the ones it keeps (the last `maxBatchChunks`).
 *
 * @internal
 */
import { Cause, Deferred, Duration, Effect, Exit, Fiber, Queue, Schedule, type Scope } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import type { RedisError } from "../../RedisError.js"
import { redisError } from "../reasons.js"
import { issueOf } from "../issue.js"
import { decodeFailure, fail, fromRedis } from "./error.js"
import { ResumableStreamError } from "../../ResumableStreamError.js"
import type { RunKeys } from "./keys.js"
import * as Outage from "../outage.js"
import * as Recent from "./recent.js"
import * as Scripts from "./scripts.js"
import type { Writer } from "../../ResumableStream.js"
import * as Reasons from "../../ResumableStreamError.js"

/** A chunk as written: its entry id and sequence number, the chunk (decoded, and as encoded) and its stored size. */
export interface Written<A> {
  readonly id: string
  readonly seq: number
  readonly chunk: A
  readonly encoded: unknown
  /** Length of its stored JSON. */
  readonly bytes: number
}

/** The writer plus what the service needs: `close` writes what is buffered and stops. */
export interface RunWriter<A> extends Writer<A> {
  readonly close: Effect.Effect<void, ResumableStreamError>
}

/** What a run's writer needs. */
export interface WriterOptions<A> {
  readonly redis: RedisClient.Service
  readonly keys: RunKeys
  readonly runId: string
  readonly generation: string
  /** Chunks the run already has (a takeover continues its sequence). */
  readonly startSeq: number
  readonly maxChunks: number
  readonly maxChunkBytes: number
  /** Chunks buffered before `append` waits. */
  readonly bufferSize: number
  /** Most chunks and bytes per write. */
  readonly maxBatchChunks: number
  readonly maxBatchBytes: number
  /** How long transient Redis failures are retried before the writer gives up. */
  readonly outageTimeout: Duration.Duration
  /** Encodes a chunk for storage (the value inside River's `{"item": …}`), or explains why it cannot be. */
  readonly encode: (chunk: A) => Exit.Exit<unknown, unknown>
  /** Runs with each batch once it is in Redis, in order. */
  readonly onWritten: (batch: ReadonlyArray<Written<A>>) => Effect.Effect<void>
  /** Refusal codes of the scripts as errors. */
  readonly refusal: (refusal: Scripts.Refusal) => ResumableStreamError
}

interface Pending<A> {
  readonly chunk: A
  readonly encoded: unknown
  readonly data: string
}

/** True for a writer's error that means Redis was unavailable for too long (the run is not refused, just unwritten). */
export const isOutage = (error: ResumableStreamError): boolean => error.reason._tag === "Redis" && error.isRetryable

/** Encodes and checks a chunk: River's `{"item": …}` JSON, at most `maxChunkBytes`. */
const prepare = <A>(options: WriterOptions<A>, chunk: A): Pending<A> | ResumableStreamError => {
  const exit = options.encode(chunk)
  if (Exit.isFailure(exit)) {
    return decodeFailure(
      `a chunk does not match the schema: ${issueOf(exit.cause as Cause.Cause<unknown>)}`,
      options.runId
    )
  }
  const data = JSON.stringify({ item: exit.value })
  // a UTF-16 unit is at most 3 UTF-8 bytes: only long strings need counting
  const bytes = data.length * 3 <= options.maxChunkBytes ? 0 : Buffer.byteLength(data)
  if (bytes > options.maxChunkBytes) {
    return fail(Reasons.ChunkTooLarge, `a chunk of ${bytes} bytes exceeds ${options.maxChunkBytes}`, options.runId)
  }
  return { chunk, encoded: exit.value, data }
}

/** Takes what is buffered, up to the batch limits (one chunk at least, whatever its size). */
const takeBatch = <A>(buffer: Queue.Dequeue<Pending<A>, Cause.Done>, options: WriterOptions<A>) =>
  Effect.map(Queue.takeBetween(buffer, 1, options.maxBatchChunks), (items) => {
    let bytes = 0
    let count = 0
    for (const item of items) {
      bytes += item.data.length
      if (count > 0 && bytes > options.maxBatchBytes) break
      count += 1
    }
    return { batch: items.slice(0, count), rest: items.slice(count) }
  })

/** Starts the writer of a run; its fiber lives in the scope. */
export const make = <A>(options: WriterOptions<A>): Effect.Effect<RunWriter<A>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { runId } = options
    const buffer = yield* Queue.bounded<Pending<A>, Cause.Done>(options.bufferSize)
    let appended = options.startSeq // chunks accepted into the buffer, counting those of earlier producers
    let written = options.startSeq // chunks in Redis; also the sequence number of the last one
    let stoppedBy: ResumableStreamError | undefined
    const waiters: Array<{ readonly target: number; readonly done: Deferred.Deferred<void, ResumableStreamError> }> = []

    const settleWaiters = Effect.suspend(() => {
      if (waiters.length === 0) return Effect.void
      const ready = waiters.filter((waiter) => stoppedBy !== undefined || waiter.target <= written)
      for (const waiter of ready) waiters.splice(waiters.indexOf(waiter), 1)
      return Effect.forEach(
        ready,
        (waiter) =>
          stoppedBy === undefined ? Deferred.succeed(waiter.done, undefined) : Deferred.fail(waiter.done, stoppedBy),
        { discard: true }
      )
    })

    /** The stored JSON of the last `maxBatchChunks` chunks written (at least): what a failover may have lost. */
    const recent = Recent.make(options.maxBatchChunks)
    /** Chunks handed to `onWritten` (chunks written again after a failover are not handed on twice). */
    let delivered = options.startSeq
    const retryOutage = () => Schedule.upTo(Outage.backoff, { duration: options.outageTimeout })
    const outageError = (error: RedisError) =>
      fromRedis(runId)(
        redisError(
          error.op,
          "Connection",
          `Redis was unavailable for longer than ${Duration.format(options.outageTimeout)}: ${error.reason.message}`
        )
      )

    /** Writes `again` (chunks written before that a failover lost: JSON only, already handed on), then `batch`. */
    const writeBatch = (
      batch: ReadonlyArray<Pending<A>>,
      again: ReadonlyArray<string> = []
    ): Effect.Effect<void, ResumableStreamError> => {
      const data = batch.map((item) => item.data)
      const attempt = options.redis.eval(
        Scripts.append,
        [options.keys.stream, options.keys.meta],
        [options.generation, options.maxChunks, options.keys.channel, written + 1, ...again, ...data]
      )
      return Outage.retryAfterFailure(attempt, { schedule: retryOutage, while: (error) => error.isRetryable }).pipe(
        Effect.mapError((error) => (error.isRetryable ? outageError(error) : fromRedis(runId)(error))),
        Effect.flatMap((reply) => {
          if (Scripts.isBehind(reply)) return rewriteLost(reply[1], batch, again)
          if (Scripts.isRefusal(reply)) return Effect.fail(options.refusal(reply))
          const ids = reply[1].split(" ")
          const first = written + 1
          written += ids.length
          recent.add(again)
          recent.add(data)
          const fresh = ids.flatMap((id, index) => {
            const seq = first + index
            if (seq <= delivered) return []
            const item = batch[index - again.length] as Pending<A>
            return [{ id, seq, chunk: item.chunk, encoded: item.encoded, bytes: item.data.length }]
          })
          delivered = Math.max(delivered, written)
          return Effect.andThen(options.onWritten(fresh), settleWaiters)
        })
      )
    }

    /**
     * Redis has only `stored` of the chunks written (a failover lost the rest): writes them again, then what was being
     * written (`again`, `batch`).
     */
    const rewriteLost = (stored: number, batch: ReadonlyArray<Pending<A>>, again: ReadonlyArray<string>) => {
      const lost = written - stored
      const lostData = lost > 0 ? recent.takeLast(lost) : undefined
      if (lostData === undefined) {
        return Effect.fail(
          fail(
            Reasons.Truncated,
            `Redis lost ${lost} written chunks after a failover, more than the writer keeps`,
            runId
          )
        )
      }
      written = stored
      return writeBatch(batch, [...lostData, ...again])
    }

    /**
     * Writes what is buffered, batch after batch (`carried`: what the last take left over), until the buffer is closed
     * and empty. A recursion rather than a loop in a generator: a generator's frame would keep the last batch (its
     * chunks and their JSON) alive while the writer waits for the next, for as long as a run stays open.
     */
    const writeFrom = (carried: ReadonlyArray<Pending<A>>): Effect.Effect<void, ResumableStreamError> =>
      carried.length > 0
        ? writeThen({ batch: carried, rest: [] })
        : Effect.matchEffect(takeBatch(buffer, options), {
            onFailure: () => Effect.void, // the buffer was closed and is empty
            onSuccess: writeThen
          })
    const writeThen = ({
      batch,
      rest
    }: {
      readonly batch: ReadonlyArray<Pending<A>>
      readonly rest: ReadonlyArray<Pending<A>>
    }): Effect.Effect<void, ResumableStreamError> =>
      Effect.andThen(
        writeBatch(batch),
        Effect.suspend(() => writeFrom(rest))
      )
    const loop = Effect.suspend(() => writeFrom([])).pipe(
      Effect.tapError((error) =>
        Effect.andThen(
          Effect.sync(() => {
            stoppedBy = error
          }),
          Effect.andThen(settleWaiters, Queue.shutdown(buffer))
        )
      )
    )
    const fiber = yield* Effect.forkScoped(loop)

    const appendAll = (chunks: Iterable<A>) =>
      Effect.suspend(() => {
        if (stoppedBy !== undefined) return Effect.fail(stoppedBy)
        const items: Array<Pending<A>> = []
        for (const chunk of chunks) {
          const item = prepare(options, chunk)
          if (item instanceof ResumableStreamError) return Effect.fail(item)
          items.push(item)
        }
        appended += items.length
        return Effect.flatMap(Queue.offerAll(buffer, items), (rest) =>
          rest.length > 0
            ? Effect.fail(stoppedBy ?? fail(Reasons.Cancelled, "the run's writer is closed", runId))
            : Effect.void
        )
      })

    const flush = Effect.suspend(() => {
      if (stoppedBy !== undefined) return Effect.fail(stoppedBy)
      if (written >= appended) return Effect.void
      return Effect.flatMap(Deferred.make<void, ResumableStreamError>(), (done) => {
        waiters.push({ target: appended, done })
        return Deferred.await(done)
      })
    })

    const close = Effect.andThen(Queue.end(buffer), Fiber.join(fiber))

    return { runId, append: (chunk: A) => appendAll([chunk]), appendAll, flush, close }
  })
