/**
 * The sink's Effect `Metric`s, all with the attribute `stream` (the stream key). Counters are fed from the running
 * totals by difference, so `emit` itself never touches a metric.
 *
 * @internal
 */
import { Effect, Metric } from "effect"
import type { Counters } from "./buffer.js"
import type { BreakerState } from "../../EventSink.js"

const emitted = Metric.counter("event_sink_events_emitted", { description: "events taken into the buffer" })
const written = Metric.counter("event_sink_events_written", { description: "events written to Redis" })
const dropped = Metric.counter("event_sink_events_dropped", {
  description: "events dropped, by reason: overflow, rejected (a data error), shutdown (unwritten at close)"
})
const refused = Metric.counter("event_sink_events_refused", { description: "events refused with BufferFull" })
const failedWrites = Metric.counter("event_sink_write_failures", { description: "failed batch writes" })
const buffered = Metric.gauge("event_sink_buffered", { description: "events waiting to be written" })
const breakerState = Metric.gauge("event_sink_breaker_state", { description: "0 closed, 1 half-open, 2 open" })
const transitions = Metric.counter("event_sink_breaker_transitions", { description: "breaker transitions" })

const stateValue: Record<BreakerState, number> = { Closed: 0, HalfOpen: 1, Open: 2 }

/** Publishes the change of `counters` since the last call, the buffer depth and the breaker state. */
export const reporter = (
  streamKey: string,
  counters: Counters,
  current: () => { readonly buffered: number; readonly state: BreakerState; readonly transitions: number }
): Effect.Effect<void> => {
  const attributes = { stream: streamKey }
  const tagged = <I, S>(metric: Metric.Metric<I, S>, extra: Record<string, string> = {}) =>
    Metric.withAttributes(metric, { ...attributes, ...extra })
  const series = {
    emitted: tagged(emitted),
    written: tagged(written),
    overflow: tagged(dropped, { reason: "overflow" }),
    rejected: tagged(dropped, { reason: "rejected" }),
    shutdown: tagged(dropped, { reason: "shutdown" }),
    refused: tagged(refused),
    failedWrites: tagged(failedWrites),
    buffered: tagged(buffered),
    breakerState: tagged(breakerState),
    transitions: tagged(transitions)
  }
  const last = { ...counters, transitions: 0 }
  const delta = (metric: Metric.Metric<number, unknown>, now: number, before: number) =>
    now === before ? Effect.void : Metric.update(metric, now - before)
  return Effect.suspend(() => {
    const { buffered: depth, state, transitions: transitionCount } = current()
    const effects = [
      delta(series.emitted, counters.accepted, last.accepted),
      delta(series.written, counters.written, last.written),
      delta(series.overflow, counters.droppedOverflow, last.droppedOverflow),
      delta(series.rejected, counters.droppedRejected, last.droppedRejected),
      delta(series.shutdown, counters.droppedShutdown, last.droppedShutdown),
      delta(series.refused, counters.refused, last.refused),
      delta(series.failedWrites, counters.failedWrites, last.failedWrites),
      delta(series.transitions, transitionCount, last.transitions),
      Metric.update(series.buffered, depth),
      Metric.update(series.breakerState, stateValue[state])
    ]
    Object.assign(last, counters, { transitions: transitionCount })
    return Effect.all(effects, { discard: true })
  })
}
