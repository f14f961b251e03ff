/**
 * The metrics of `StreamAdapter`.
 *
 * @internal
 */
import { Effect, Metric } from "effect"

const liveOverflows = Metric.counter("stream_adapter_live_overflows", {
  description: "times a slow subscriber's live buffer filled up and it went on reading the change log"
})

/** Counts a live buffer that filled up (its subscriber goes on from the change log). */
export const countOverflow = (): void => Effect.runSync(Metric.update(liveOverflows, 1))
