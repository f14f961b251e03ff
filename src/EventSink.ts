/**
 * Fire-and-forget events into a Redis Stream, so that an outage of Redis never blocks or breaks the application and
 * loses nothing it did not have to (StreamLL's RedisSink, done as its README promises).
 *
 * - `emit` only encodes the event and puts it into a bounded local buffer (an Effect `Queue`); it never waits on
 *   Redis. When the buffer is full the overflow strategy drops the oldest or the newest event (counted), or refuses
 *   the new one with a typed `BufferFull`.
 * - One background fiber takes batches (up to `maxBatchSize`, or what arrived within `flushInterval`, whichever
 *   first) and writes each with one script call: one round trip per batch, atomically, trimmed by `MAXLEN ~` or
 *   `MINID ~`.
 * - Behind a circuit breaker: after `failureThreshold` failed writes in a row no Redis call is made while it is open;
 *   a single probe then closes it or opens it for longer. Events stay buffered, in order, meanwhile. Data errors
 *   (`WRONGTYPE`) are reported and do not trip it.
 * - Closing the layer flushes within `shutdownTimeout` and reports (log and metric) what could not be written.
 *
 * Wire format (StreamLL's): each event is one entry of the stream `streamKey` with one field `event` holding the
 * event's JSON (`event_id`, `event_type`, `timestamp`, `execution_id`, `operation`, `data`, `tags`).
 *
 * @since 0.1.0
 */

import { Context, Duration, Effect, Layer, Logger, Result, Schedule, type Scope, Stream, Tracer } from "effect"
import * as RedisClient from "./RedisClient.js"
import * as SinkBuffer from "./internal/sink/buffer.js"
import { fail, fromRedis } from "./internal/sink/error.js"
import { EventSinkError } from "./EventSinkError.js"
import { encodeAll, type Event, type EventInput } from "./internal/sink/event.js"
import * as Read from "./internal/sink/read.js"
import type * as Script from "./internal/sink/script.js"
import * as Telemetry from "./internal/sink/telemetry.js"
import * as Writer from "./internal/sink/writer.js"
import * as Reasons from "./EventSinkError.js"

export * from "./EventSinkError.js"
export { Event, type EventInput } from "./internal/sink/event.js"

/**
 * What `emit` does when the buffer is full: drop the oldest buffered event (`dropOldest`), drop the new one
 * (`dropNewest`), or refuse it with a typed `BufferFull` error (`fail`).
 *
 * @since 0.1.0
 */
export type OverflowStrategy = "dropOldest" | "dropNewest" | "fail"

/**
 * A state of the sink's circuit breaker.
 *
 * @since 0.1.0
 */
export type BreakerState = "Closed" | "Open" | "HalfOpen"

/**
 * A change of the breaker's state, and when it happened.
 *
 * @since 0.1.0
 */
export interface BreakerTransition {
  readonly from: BreakerState
  readonly to: BreakerState
  readonly at: Date
}

/**
 * Options of {@link layer}. Defaults follow StreamLL where it has one.
 *
 * @since 0.1.0
 */
export interface Options {
  /** The stream events go to. Default `streamll_events` (StreamLL's). */
  readonly streamKey?: string | undefined
  /** Events the local buffer holds while Redis is slow or down. Default 10,000. */
  readonly bufferSize?: number | undefined
  /**
   * Bytes of encoded events (their JSON text) the local buffer holds; the overflow strategy applies beyond either
   * limit. Default 64 MiB.
   */
  readonly bufferBytes?: number | undefined
  /** What `emit` does when the buffer is full. Default `dropOldest`. */
  readonly overflowStrategy?: OverflowStrategy | undefined
  /** Most events per write. Default 500. */
  readonly maxBatchSize?: number | undefined
  /**
   * How long a batch may wait to fill before it is written anyway (a `flush` does not wait). Default 250 ms; zero
   * writes whatever is buffered as soon as the previous write is done.
   */
  readonly flushInterval?: Duration.Input | undefined
  /** Trim the stream to about this many entries (`MAXLEN`). Default: no trimming. */
  readonly maxStreamLength?: number | undefined
  /** Trim entries older than this (`MINID`, by the server's clock); exclusive with `maxStreamLength`. */
  readonly maxStreamAge?: Duration.Input | undefined
  /** Trim approximately (`~`, cheap, whole radix-tree nodes) rather than exactly. Default true. */
  readonly approximateTrimming?: boolean | undefined
  /** Failed writes in a row that open the breaker. Default 3. */
  readonly failureThreshold?: number | undefined
  /**
   * How long the breaker stays open: a duration, or a schedule whose n-th delay is the n-th opening in a row.
   * Default: 1 s, doubling, capped at 30 s.
   */
  readonly openDuration?: Duration.Input | Schedule.Schedule<unknown, number> | undefined
  /** A write with no reply in this time fails (and counts towards the breaker). Default 5 seconds. */
  readonly writeTimeout?: Duration.Input | undefined
  /** How long closing the layer may spend writing what is buffered. Default 5 seconds. */
  readonly shutdownTimeout?: Duration.Input | undefined
  /**
   * A consumer group to create on the stream at start (MKSTREAM; an existing group is fine), and again with the stream
   * whenever a write finds the stream gone (Redis restarted without persistence, the key was deleted). Default: none.
   */
  readonly consumerGroup?: string | undefined
  /** Where the group starts when created at start: `0` (the whole stream, the default) or `$` (new entries only). */
  readonly consumerGroupStart?: "0" | "$" | undefined
  /** Tags added to every event (an event's own tags win). */
  readonly tags?: Readonly<Record<string, string>> | undefined
  /** Largest encoded event, in bytes; larger ones are refused `InvalidEvent`. Default 1 MiB. */
  readonly maxEventBytes?: number | undefined
}

/**
 * What the sink has done since it started.
 *
 * @since 0.1.0
 */
export interface Stats {
  /** Events taken into the buffer. */
  readonly emitted: number
  /** Events written to Redis. */
  readonly written: number
  /** Events waiting to be written (buffered, and the batch being written). */
  readonly buffered: number
  /** Events dropped: by the overflow strategy, refused by Redis for good (a data error), unwritten at shutdown. */
  readonly dropped: { readonly overflow: number; readonly rejected: number; readonly shutdown: number }
  /** Events refused with `BufferFull` (strategy `fail`). */
  readonly refused: number
  /** Events refused as `InvalidEvent` (not encodable, too large). */
  readonly invalid: number
  /** Writes that failed (each retried until written or rejected). */
  readonly failedWrites: number
  /** The breaker's state now. */
  readonly breaker: BreakerState
  /** The breaker's latest transitions (at most 100), oldest first. */
  readonly transitions: ReadonlyArray<BreakerTransition>
}

/**
 * A consumer group of the stream, as `XINFO GROUPS` reports it.
 *
 * @since 0.1.0
 */
export interface GroupHealth {
  readonly name: string
  readonly consumers: number
  /** Entries delivered and not acknowledged. */
  readonly pending: number
  /** Entries not yet delivered to the group (null when Redis cannot tell, e.g. after deletions). */
  readonly lag: number | null
  readonly lastDeliveredId: string
}

/**
 * A health snapshot: the stream's length, its consumer groups, and this sink's breaker and buffer.
 *
 * @since 0.1.0
 */
export interface Health {
  readonly streamKey: string
  readonly length: number
  readonly groups: ReadonlyArray<GroupHealth>
  readonly breaker: BreakerState
  readonly buffered: number
}

/**
 * A stored event and its stream entry id (whose first part is the time it was written, in ms).
 *
 * @since 0.1.0
 */
export interface StoredEvent {
  readonly id: string
  readonly event: Event
}

/**
 * A time range of {@link Service.events}: entries written from `from` to `to` (inclusive, by entry id time).
 *
 * @since 0.1.0
 */
export interface Range {
  readonly from?: Date | number | undefined
  readonly to?: Date | number | undefined
  /** Entries per XRANGE call. Default 1,000. */
  readonly pageSize?: number | undefined
  /** What an entry that is not a sink event does: skipped with a warning naming it (default), or fails `Decode`. */
  readonly onInvalid?: "skip" | "fail" | undefined
}

/**
 * The `EventSink` service.
 *
 * @since 0.1.0
 */
export interface Service {
  readonly streamKey: string
  /** Buffers an event; never waits on Redis. Fails `BufferFull` (strategy `fail`), `InvalidEvent` or `Closed`. */
  readonly emit: (event: EventInput) => Effect.Effect<void, EventSinkError>
  /** Buffers events, all or none: an invalid one, or too little room under strategy `fail`, refuses them all. */
  readonly emitAll: (events: Iterable<EventInput>) => Effect.Effect<void, EventSinkError>
  /** `emit` for synchronous callers (callbacks, tracers, loggers): never throws; refusals are only counted. */
  readonly emitUnsafe: (event: EventInput) => void
  /**
   * Waits until every event emitted before the call is written (or dropped: see `stats`). Fails `CircuitOpen` when the
   * breaker is or goes open meanwhile: the events stay buffered and are written once Redis is back.
   */
  readonly flush: Effect.Effect<void, EventSinkError>
  /** What the sink has done so far. */
  readonly stats: Effect.Effect<Stats>
  /** The stream's events written within `range` (all by default), oldest first, paged. */
  readonly events: (range?: Range) => Stream.Stream<StoredEvent, EventSinkError>
  /** The stream's length and consumer groups (pending, lag), and this sink's breaker state and buffer. */
  readonly health: Effect.Effect<Health, EventSinkError>
}

/**
 * The event-sink service.
 *
 * @since 0.1.0
 */
export class EventSink extends Context.Service<EventSink, Service>()("effect-redis-streams/EventSink") {}

/** Breaker openings: 1 s, doubling, capped at 30 s (StreamLL's recovery timeout). */
const defaultOpenDuration = Schedule.min([Schedule.exponential("1 second"), Schedule.spaced("30 seconds")])

const trimOf = (options: Options): Script.Trim => {
  const approximate = options.approximateTrimming ?? true
  if (options.maxStreamLength !== undefined) {
    return { kind: "maxlen", maxLength: options.maxStreamLength, approximate }
  }
  if (options.maxStreamAge !== undefined) {
    return { kind: "minid", maxAgeMs: Duration.toMillis(Duration.fromInputUnsafe(options.maxStreamAge)), approximate }
  }
  return { kind: "none" }
}

/** `XINFO GROUPS` rows (flat name/value arrays under RESP2) as group health. */
const parseGroups = (reply: unknown): ReadonlyArray<GroupHealth> =>
  (Array.isArray(reply) ? reply : []).map((row: ReadonlyArray<unknown>) => {
    const info = new Map<string, unknown>()
    for (let i = 0; i + 1 < row.length; i += 2) info.set(String(row[i]), row[i + 1])
    const lag = info.get("lag")
    return {
      name: String(info.get("name")),
      consumers: Number(info.get("consumers") ?? 0),
      pending: Number(info.get("pending") ?? 0),
      lag: lag === null || lag === undefined ? null : Number(lag),
      lastDeliveredId: String(info.get("last-delivered-id") ?? "0-0")
    }
  })

/**
 * Builds the sink: buffer, writer and breaker live in the scope; closing it flushes within `shutdownTimeout` and logs
 * (and counts, as `dropped.shutdown`) what could not be written.
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<Service, never, RedisClient.RedisClient | Scope.Scope> =>
  Effect.gen(function* () {
    const redis = yield* RedisClient.RedisClient
    if (options.maxStreamLength !== undefined && options.maxStreamAge !== undefined) {
      return yield* Effect.die(new Error("EventSink: maxStreamLength and maxStreamAge exclude each other"))
    }
    const streamKey = options.streamKey ?? "streamll_events"
    const maxBatchSize = Math.max(1, options.maxBatchSize ?? 500)
    const maxEventBytes = options.maxEventBytes ?? 1024 * 1024
    const shutdownTimeout = Duration.fromInputUnsafe(options.shutdownTimeout ?? "5 seconds")
    const tags = options.tags ?? {}
    const counters: SinkBuffer.Counters = {
      accepted: 0,
      written: 0,
      droppedOverflow: 0,
      droppedRejected: 0,
      droppedShutdown: 0,
      refused: 0,
      failedWrites: 0
    }
    let invalid = 0
    let closed = false

    const buffer = yield* SinkBuffer.make({
      capacity: Math.max(1, options.bufferSize ?? 10_000),
      capacityBytes: Math.max(1, options.bufferBytes ?? 64 * 1024 * 1024),
      strategy: options.overflowStrategy ?? "dropOldest",
      maxBatchSize,
      linger: Duration.fromInputUnsafe(options.flushInterval ?? "250 millis"),
      counters
    })

    // the group exists from the start when Redis is up; the writer also creates it with the stream whenever a write
    // finds no stream (the first write, or after Redis lost its data)
    const group = options.consumerGroup
    if (group !== undefined) {
      yield* redis
        .send("XGROUP", "CREATE", streamKey, group, options.consumerGroupStart ?? "0", "MKSTREAM")
        .pipe(
          Effect.catch((error) =>
            error.code === "BUSYGROUP" || error.isRetryable
              ? Effect.void
              : Effect.logError(`EventSink: cannot create group ${group} on ${streamKey}`, error)
          )
        )
    }

    const writer = yield* Writer.start({
      redis,
      streamKey,
      trim: trimOf(options),
      buffer,
      counters,
      maxBatchSize,
      failureThreshold: Math.max(1, options.failureThreshold ?? 3),
      openDuration: options.openDuration ?? defaultOpenDuration,
      writeTimeout: Duration.fromInputUnsafe(options.writeTimeout ?? "5 seconds"),
      group: group ?? ""
    })

    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        closed = true
        const unwritten = yield* writer.close(shutdownTimeout)
        if (unwritten > 0) {
          yield* Effect.logWarning(
            `EventSink: ${unwritten} events for ${streamKey} could not be written within ${Duration.format(shutdownTimeout)} of closing`
          )
        }
      })
    )

    const closedError = fail(Reasons.Closed, `the sink for ${streamKey} is closed`)

    const offer = (events: ReadonlyArray<EventInput>): EventSinkError | undefined => {
      if (closed) return closedError
      const encoded = encodeAll(events, tags, maxEventBytes)
      if (encoded instanceof EventSinkError) {
        invalid += events.length
        return encoded
      }
      return buffer.offer(encoded)
    }

    const emit = (event: EventInput) =>
      Effect.suspend(() => {
        const error = offer([event])
        return error === undefined ? Effect.void : Effect.fail(error)
      })

    const emitAll = (events: Iterable<EventInput>) =>
      Effect.suspend(() => {
        const error = offer(Array.from(events))
        return error === undefined ? Effect.void : Effect.fail(error)
      })

    const buffered = () => buffer.pending()

    const flush = Effect.suspend(() => {
      if (writer.state() === "Open" && buffered() > 0) {
        return Effect.fail(fail(Reasons.CircuitOpen, `Redis is failing: the breaker is open for ${streamKey}`))
      }
      return buffer.drained
    }).pipe(Effect.withSpan("EventSink.flush"))

    const stats = Effect.sync((): Stats => ({
      emitted: counters.accepted,
      written: counters.written,
      buffered: buffered(),
      dropped: {
        overflow: counters.droppedOverflow,
        rejected: counters.droppedRejected,
        shutdown: counters.droppedShutdown
      },
      refused: counters.refused,
      invalid,
      failedWrites: counters.failedWrites,
      breaker: writer.state(),
      transitions: writer.transitions()
    }))

    const health = redis
      .pipeline([
        { name: "XLEN", args: [streamKey], key: streamKey },
        { name: "XINFO", args: ["GROUPS", streamKey], key: streamKey }
      ])
      .pipe(
        Effect.flatMap(([length, groups]) =>
          length !== undefined && Result.isFailure(length)
            ? Effect.fail(fromRedis(length.failure))
            : Effect.succeed<Health>({
                streamKey,
                length: Number(length === undefined ? 0 : length.success),
                // XINFO GROUPS fails on a missing stream: no groups
                groups: groups === undefined || Result.isFailure(groups) ? [] : parseGroups(groups.success),
                breaker: writer.state(),
                buffered: buffered()
              })
        ),
        Effect.withSpan("EventSink.health")
      )

    return {
      streamKey,
      emit,
      emitAll,
      emitUnsafe: (event) => void offer([event]),
      flush,
      stats,
      events: (range) => Read.events(redis, streamKey, range),
      health
    } satisfies Service
  })

/**
 * The event sink on the `RedisClient` in context.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<EventSink, never, RedisClient.RedisClient> =>
  Layer.effect(EventSink, make(options))

/**
 * Records every span of the program as sink events: `start` when a span starts, `end` (or `error`, with
 * `error_type` and `error_message`) when it ends, with `span_id`, `parent_span_id`, `duration_ms` and the span's
 * attributes in `data`; `execution_id` is the trace id, `operation` the span name. Whatever tracer was in place
 * still gets every span. The sink's own spans (`EventSink.*`) and writes are not recorded.
 *
 * @since 0.1.0
 */
export const layerTracer: Layer.Layer<never, never, EventSink> = Layer.effect(
  Tracer.Tracer,
  Effect.gen(function* () {
    const sink = yield* EventSink
    const base = yield* Tracer.Tracer
    return Telemetry.tracer(base, sink.emitUnsafe)
  })
)

/**
 * Records every log line of the program as a `log` event (`data.level`, `data.message`, `data.cause`), in the trace
 * of the span it was logged in; the loggers in place keep logging.
 *
 * @since 0.1.0
 */
export const layerLogger: Layer.Layer<never, never, EventSink> = Layer.unwrap(
  Effect.map(EventSink, (sink) => Logger.layer([Telemetry.logger(sink.emitUnsafe)], { mergeWithExisting: true }))
)
