/**
 * A subscription to a group's changes that survives disconnections: live events come by pub/sub, and the group's
 * change log fills whatever pub/sub missed.
 *
 * The group's live tail (`liveTail.ts`) listens on the channel first; then the log is read from the subscriber's
 * `after` version (or the subscription starts at the current version); then live events follow. Each event has a
 * version, one more than the last: a gap (a message pub/sub lost), a malformed message or a reconnect of the
 * subscriber connection triggers a read of the log from the last version seen, and a version already seen is skipped,
 * so each event is delivered once, in order. When a tick of the layer's clock (every `checkInterval`) finds the group
 * quiet, its version is checked: that catches a lost message that no later one revealed. A subscriber that does not
 * keep up reads the log instead of holding more than `liveBufferBytes` of messages. Versions belong to an epoch (the
 * group's data generation): when Redis lost the group's data (a restart without persistence) or the log no longer
 * holds what a resuming subscriber needs, the subscriber gets a `reset` event (reload the group) and goes on. Each
 * event also names the write that made it (`w`) and the one before it (`p`): when the history changed under the
 * subscriber (a failover lost the last writes it saw, and the new master numbers new writes the same, or its version
 * went back), the links do not follow, and it gets a `reset` instead of skipping an event it took for one seen.
 *
 * @internal
 */
import { Array as Arr, Effect, type Pull, Schedule, Stream } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import type { RedisError } from "../../RedisError.js"
import { StreamAdapterError } from "../../StreamAdapterError.js"
import type { GroupKeys } from "./keys.js"
import type { Position } from "../../StreamAdapter.js"
import * as LiveTail from "../liveTail.js"
import { countOverflow } from "./metrics.js"

/** An event as stored and published (see `scripts.ts`), or a `reset` made here. */
export interface RawEvent {
  readonly epoch: string
  readonly version: number
  /** The write call that made the event, and the one that made the event before it (absent on older events). */
  readonly w?: string
  readonly p?: string
  readonly type: string
  readonly id?: string
  readonly data?: unknown
  readonly previous?: unknown
  /** For `reset`: why. */
  readonly reason?: "restarted" | "truncated"
}

/** What a subscription needs. */
export interface SubscriptionOptions<B> {
  readonly redis: RedisClient.Service
  readonly keys: GroupKeys
  /** Where to resume from; none: from now. */
  readonly after: Position | undefined
  readonly pageSize: number
  /** Ticks at the interval at which a quiet group's version is checked (a change whose message pub/sub lost). */
  readonly clock: LiveTail.Clock
  /** Most bytes of change messages waiting for a subscriber that does not keep up; beyond, it reads the log. */
  readonly maxInboxBytes: number
  readonly toError: (cause: RedisError) => StreamAdapterError
  /** What the subscriber gets of a batch of events (typed, filtered). */
  readonly deliver: (events: ReadonlyArray<RawEvent>) => Effect.Effect<ReadonlyArray<B>>
}

const isEvent = (value: unknown): value is RawEvent =>
  typeof value === "object" &&
  value !== null &&
  typeof (value as RawEvent).version === "number" &&
  typeof (value as RawEvent).epoch === "string"

/** The events of a published message (a JSON array of events), or of a log entry (one event); none when malformed. */
const parse = (text: string): ReadonlyArray<RawEvent> | undefined => {
  try {
    const value: unknown = JSON.parse(text)
    return Array.isArray(value) ? value.filter(isEvent) : isEvent(value) ? [value] : undefined
  } catch {
    return undefined
  }
}

/** A group's meta and change log as a subscription reads them. */
const groupLog = <B>(options: SubscriptionOptions<B>) => {
  const { redis, keys, toError } = options
  return {
    /** The group's current epoch, version and last write (none: never written). */
    current: redis.send<ReadonlyArray<string | null>>("HMGET", keys.meta, "epoch", "version", "last").pipe(
      Effect.mapError(toError),
      Effect.map(([epoch, version, last]) =>
        epoch === null || epoch === undefined
          ? undefined
          : { epoch, version: Number(version ?? 0), last: last ?? undefined }
      )
    ),

    /** The write that made the log's event at `version`, if the log holds it. */
    writeAt: (version: number) =>
      redis.send<RedisClient.StreamEntries>("XRANGE", keys.log, `0-${version}`, `0-${version}`).pipe(
        Effect.mapError(toError),
        Effect.map((page) => {
          const fields = page[0]?.[1]
          return fields?.[1] === undefined ? undefined : parse(fields[1])?.at(-1)?.w
        })
      ),

    /** Log entries after `version`, page by page. */
    logAfter: (version: number) =>
      Effect.gen(function* () {
        const events: Array<RawEvent> = []
        let start = `(0-${version}`
        for (;;) {
          const page = yield* redis
            .send<RedisClient.StreamEntries>("XRANGE", keys.log, start, "+", "COUNT", options.pageSize)
            .pipe(Effect.mapError(toError))
          for (const [, fields] of page) if (fields[1] !== undefined) events.push(...(parse(fields[1]) ?? []))
          const last = page.at(-1)
          if (last === undefined || page.length < options.pageSize) return events
          start = `(${last[0]}`
        }
      })
  }
}

/** The group's events, from `after` (or now) on, live, until the stream is interrupted, as `deliver` makes them. */
export const subscribe = <B>(options: SubscriptionOptions<B>): Stream.Stream<B, StreamAdapterError> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const { current, writeAt, logAfter } = groupLog(options)

      let position: Position = { epoch: "", version: 0 }
      /** The write that made the last event delivered (undefined: not known, as before the first). */
      let lastWrite: string | undefined
      const reset = (
        at: { readonly epoch: string; readonly version: number; readonly last?: string | undefined },
        reason: "restarted" | "truncated"
      ): RawEvent => {
        position = { epoch: at.epoch, version: at.version }
        lastWrite = at.last
        return { epoch: at.epoch, version: at.version, type: "reset", reason }
      }
      /** Whether `event` comes right after the last one delivered (its link names that one's write, when known). */
      const follows = (event: RawEvent) => lastWrite === undefined || event.p === undefined || event.p === lastWrite

      /**
       * Everything after the last version seen, per the log; a reset when the group's epoch changed, or when its
       * history is not the one the subscriber followed (its version went back, or the events no longer link to the
       * last one delivered: a failover lost writes).
       */
      const catchUp: Effect.Effect<ReadonlyArray<RawEvent>, StreamAdapterError> = Effect.gen(function* () {
        const now = yield* current
        if (now === undefined) return []
        if (now.epoch !== position.epoch) {
          if (position.epoch !== "") return [reset(now, "restarted")]
          position = { epoch: now.epoch, version: 0 } // the group's first data since the subscription started
        }
        if (now.version < position.version) return [reset(now, "restarted")]
        if (lastWrite !== undefined && position.version > 0) {
          const seen = yield* writeAt(position.version)
          if (seen !== undefined && seen !== lastWrite) return [reset(now, "restarted")]
        }
        const events = yield* logAfter(position.version)
        const first = events[0]
        if (first !== undefined && first.version > position.version + 1) return [reset(now, "truncated")]
        if (first !== undefined && first.version === position.version + 1 && !follows(first)) {
          return [reset(now, "restarted")]
        }
        return accept(events)
      })

      /** The events that come next, in order, dropping those already seen. */
      const accept = (events: ReadonlyArray<RawEvent>) =>
        events.filter((event) => {
          if (event.epoch !== position.epoch || event.version <= position.version) return false
          position = { epoch: event.epoch, version: event.version }
          lastWrite = event.w
          return true
        })

      /**
       * The announced events that come next. The next version of the same epoch goes straight through; an event
       * already seen is skipped; a gap, a new epoch, a changed history or a malformed message stops there, and the
       * log (which holds everything published so far) is read.
       */
      const announced = (messages: ReadonlyArray<string>): LiveTail.Step<RawEvent> => {
        const events: Array<RawEvent> = []
        for (const message of messages) {
          const parsed = parse(message)
          if (parsed === undefined) return { items: events, behind: true }
          for (const event of parsed) {
            const sameEpoch = event.epoch === position.epoch
            // an event of the version last delivered, but of another write: the history changed under us
            const rewritten =
              sameEpoch &&
              event.version === position.version &&
              lastWrite !== undefined &&
              event.w !== undefined &&
              event.w !== lastWrite
            if (sameEpoch && event.version <= position.version && !rewritten) continue
            if (rewritten || !sameEpoch || event.version !== position.version + 1 || !follows(event)) {
              return { items: events, behind: true }
            }
            position = { epoch: event.epoch, version: event.version }
            lastWrite = event.w
            events.push(event)
          }
        }
        return { items: events, behind: false }
      }

      const caughtUp = (events: ReadonlyArray<RawEvent>): LiveTail.Step<RawEvent> => ({ items: events, behind: false })
      const tail = yield* LiveTail.follow(
        {
          redis: options.redis,
          channel: options.keys.channel,
          clock: options.clock,
          maxInboxBytes: options.maxInboxBytes,
          onOverflow: countOverflow,
          behind: false
        },
        {
          announced,
          // after a reconnect the servers may still be loading or electing: retried for a moment
          catchUp: catchUp.pipe(
            Effect.retry({
              schedule: Schedule.exponential("50 millis"),
              times: 8,
              while: (error) => error.isRetryable
            }),
            Effect.map(caughtUp)
          ),
          // a check while Redis is unreachable finds nothing to do: the next one, or the reconnect, catches up
          quiet: catchUp.pipe(
            Effect.catchIf(
              (error) => error.isRetryable,
              () => Effect.succeed([])
            ),
            Effect.map(caughtUp)
          )
        }
      ).pipe(Effect.mapError(options.toError))

      // where the subscription starts (subscribed first): after the given position, or at the current one
      const now = yield* current
      const start: Array<RawEvent> = []
      if (options.after === undefined) {
        position = now === undefined ? { epoch: "", version: 0 } : { epoch: now.epoch, version: now.version }
        lastWrite = now?.last
      } else if (now !== undefined && options.after.epoch !== "" && now.epoch !== options.after.epoch) {
        start.push(reset(now, "restarted"))
      } else {
        position = options.after
        if (now !== undefined) start.push(...(yield* catchUp))
      }

      const first = yield* options.deliver(start)
      // pulls until something is delivered (a pull of the tail may deliver nothing: a tick, events already seen)
      const next: Pull.Pull<Arr.NonEmptyReadonlyArray<B>, StreamAdapterError> = Effect.flatMap(tail, (events) =>
        Effect.flatMap(options.deliver(events), (delivered) =>
          Arr.isReadonlyArrayNonEmpty(delivered) ? Effect.succeed(delivered) : next
        )
      )
      return Stream.concat(Stream.fromIterable(first), Stream.fromPull(Effect.succeed(next)))
    })
  )
