/**
 * A subscription to a group's changes that survives disconnections: live events come by pub/sub, and the group's
 * change log fills whatever pub/sub missed.
 *
 * The channel is subscribed first; then the log is read from the subscriber's `after` version (or the subscription
 * starts at the current version); then live events follow. Each event has a version, one more than the last: a gap
 * (a message pub/sub lost) or a reconnect of the subscriber connection triggers a read of the log from the last
 * version seen, and a version already seen is skipped, so each event is delivered once, in order. A periodic check of
 * the group's version catches a lost message that no later one revealed. Versions belong to
 * an epoch (the group's data generation): when Redis lost the group's data (a restart without persistence) or the log
 * no longer holds what a resuming subscriber needs, the subscriber gets a `reset` event (reload the group) and goes on.
 *
 * @internal
 */
import { type Duration, Effect, Schedule, Semaphore, Stream } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import type { RedisError } from "../../RedisError.js"
import type { PubSubEvent } from "../pubsub.js"
import type { StreamAdapterError } from "./error.js"
import type { GroupKeys } from "./keys.js"
import type { Position } from "../../StreamAdapter.js"

/** An event as stored and published (see `scripts.ts`), or a `reset` made here. */
export interface RawEvent {
  readonly epoch: string
  readonly version: number
  readonly type: string
  readonly id?: string
  readonly data?: unknown
  readonly previous?: unknown
  /** For `reset`: why. */
  readonly reason?: "restarted" | "truncated"
}

/** What a subscription needs. */
export interface SubscriptionOptions {
  readonly redis: RedisClient.Service
  readonly keys: GroupKeys
  /** Where to resume from; none: from now. */
  readonly after: Position | undefined
  readonly pageSize: number
  /** How often the group's version is checked, in case pub/sub lost a message and nothing followed it. */
  readonly checkInterval: Duration.Duration
  readonly toError: (cause: RedisError) => StreamAdapterError
}

const parse = (text: string): RawEvent | undefined => {
  try {
    const event = JSON.parse(text) as RawEvent
    return typeof event.version === "number" && typeof event.epoch === "string" ? event : undefined
  } catch {
    return undefined
  }
}

/** The group's events, from `after` (or now) on, live, until the stream is interrupted. */
export const subscribe = (options: SubscriptionOptions): Stream.Stream<RawEvent, StreamAdapterError> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const { redis, keys, toError } = options
      const live = yield* redis.subscribe(keys.channel).pipe(Effect.mapError(toError))

      /** The group's current epoch and version (none: never written). */
      const current = redis
        .use("hmget", (client) => client.hmget(keys.meta, "epoch", "version"))
        .pipe(
          Effect.mapError(toError),
          Effect.map(([epoch, version]) =>
            epoch === null || epoch === undefined ? undefined : { epoch, version: Number(version ?? 0) }
          )
        )

      /** Log entries after `version`, page by page. */
      const logAfter = (version: number) =>
        Effect.gen(function* () {
          const events: Array<RawEvent> = []
          let start = `(0-${version}`
          for (;;) {
            const page = yield* redis
              .use("xrange", (client) => client.xrange(keys.log, start, "+", "COUNT", options.pageSize))
              .pipe(Effect.mapError(toError))
            for (const [, fields] of page) {
              const event = fields[1] === undefined ? undefined : parse(fields[1])
              if (event !== undefined) events.push(event)
            }
            const last = page.at(-1)
            if (last === undefined || page.length < options.pageSize) return events
            start = `(${last[0]}`
          }
        })

      let position: Position = { epoch: "", version: 0 }
      const reset = (at: Position, reason: "restarted" | "truncated"): RawEvent => {
        position = at
        return { epoch: at.epoch, version: at.version, type: "reset", reason }
      }

      /** Everything after the last version seen, per the log; a reset when the group's epoch changed. */
      const catchUp = Effect.gen(function* () {
        const now = yield* current
        if (now === undefined) return []
        if (now.epoch !== position.epoch) {
          if (position.epoch !== "") return [reset(now, "restarted")]
          position = { epoch: now.epoch, version: 0 } // the group's first data since the subscription started
        }
        const events = yield* logAfter(position.version)
        const first = events[0]
        if (first !== undefined && first.version > position.version + 1) return [reset(now, "truncated")]
        return accept(events)
      })

      /** The events that come next, in order, dropping those already seen. */
      const accept = (events: ReadonlyArray<RawEvent>) =>
        events.filter((event) => {
          if (event.epoch !== position.epoch || event.version <= position.version) return false
          position = { epoch: event.epoch, version: event.version }
          return true
        })

      // where the subscription starts: after the given position, or at the current one
      const now = yield* current
      const start: Array<RawEvent> = []
      if (options.after === undefined) {
        position = now ?? { epoch: "", version: 0 }
      } else if (now !== undefined && options.after.epoch !== "" && now.epoch !== options.after.epoch) {
        start.push(reset(now, "restarted"))
      } else {
        position = options.after
        if (now !== undefined) start.push(...(yield* catchUp))
      }

      const onLive = (event: PubSubEvent): Effect.Effect<ReadonlyArray<RawEvent>, StreamAdapterError> => {
        if (event._tag === "Reconnected") return catchUp
        const parsed = parse(event.message)
        if (parsed === undefined) return Effect.succeed([])
        // the next version of the same epoch goes straight through; a gap or a new epoch asks the log and the meta
        if (parsed.epoch === position.epoch && parsed.version <= position.version) return Effect.succeed([])
        if (parsed.epoch === position.epoch && parsed.version === position.version + 1) {
          return Effect.succeed(accept([parsed]))
        }
        return catchUp
      }

      // live messages and the periodic check both move the position: one at a time
      const turn = Semaphore.makeUnsafe(1)
      // a check while Redis is unreachable finds nothing to do: the next one, or the reconnect, catches up
      const check = catchUp.pipe(
        Effect.catchIf(
          (error) => error.isRetryable,
          () => Effect.succeed([])
        )
      )
      // after a reconnect the servers may still be loading or electing: retry what failed for a moment
      const retried = <A>(effect: Effect.Effect<A, StreamAdapterError>) =>
        effect.pipe(
          Effect.retry({ schedule: Schedule.exponential("50 millis"), times: 8, while: (error) => error.isRetryable })
        )
      return Stream.concat(
        Stream.fromIterable(start),
        Stream.merge(
          Stream.fromQueue(live).pipe(Stream.mapEffect((event) => turn.withPermits(1)(retried(onLive(event))))),
          Stream.tick(options.checkInterval).pipe(
            Stream.drop(1), // the first tick is immediate
            Stream.mapEffect(() => turn.withPermits(1)(check))
          )
        ).pipe(Stream.flatMap((events) => Stream.fromIterable(events)))
      )
    })
  )
