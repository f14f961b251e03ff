/**
 * The event sinks of this process, as the inspector shows them: each one's `stats` (buffered, written, dropped by
 * reason, breaker state and latest transitions; all local, no Redis call) and, for a sink that offers `health`, its
 * stream's length and consumer groups (one pipelined round trip; `null` when Redis cannot answer).
 *
 * @internal
 */
import { Effect, Option } from "effect"
import type * as EventSink from "../../EventSink.js"
import type { InspectedSink, SinkSource } from "../../Inspector.js"

/** Transitions shown per sink, the newest last. */
const shownTransitions = 10

/** One sink's figures. */
export const inspectSink = (source: SinkSource): Effect.Effect<InspectedSink> =>
  Effect.gen(function* () {
    const stats: EventSink.Stats = yield* source.stats
    const health =
      source.health === undefined
        ? Option.none()
        : yield* Effect.option(source.health.pipe(Effect.timeout("2 seconds")))
    return {
      streamKey: source.streamKey,
      emitted: stats.emitted,
      written: stats.written,
      buffered: stats.buffered,
      dropped: stats.dropped,
      refused: stats.refused,
      invalid: stats.invalid,
      failedWrites: stats.failedWrites,
      breaker: stats.breaker,
      transitions: stats.transitions
        .slice(-shownTransitions)
        .map((t) => ({ from: t.from, to: t.to, at: t.at.toISOString() })),
      stream: Option.match(health, {
        onNone: () => null,
        onSome: (h) => ({ length: h.length, groups: h.groups })
      })
    }
  })

/** Every sink's figures, in the order given. */
export const inspectSinks = (sources: ReadonlyArray<SinkSource>): Effect.Effect<ReadonlyArray<InspectedSink>> =>
  Effect.forEach(sources, inspectSink, { concurrency: "unbounded" })
