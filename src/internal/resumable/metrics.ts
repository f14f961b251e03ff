/**
 * The metrics of `ResumableStream`.
 *
 * @internal
 */
import { Effect, Metric } from "effect"

/** Runs started by this instance. */
export const runsStarted = Metric.counter("resumable_stream_runs_started", { description: "runs started" })

/** Chunks appended by this instance's runs. */
export const chunksAppended = Metric.counter("resumable_stream_chunks_appended", { description: "chunks appended" })

const liveOverflows = Metric.counter("resumable_stream_live_overflows", {
  description: "times a slow consumer's live buffer filled up and it went on reading from Redis"
})

/** Counts a live buffer that filled up (its reader goes on from Redis). */
export const countOverflow = (): void => Effect.runSync(Metric.update(liveOverflows, 1))
