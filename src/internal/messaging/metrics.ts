/**
 * Metrics that more than one part of messaging updates.
 *
 * @internal
 */
import { Metric } from "effect"

/** Messages deleted from a topic (trimmed) before a group handled them, by topic and group. */
export const dropped = Metric.counter("messaging_dropped", {
  description: "messages deleted from the stream (trimmed) before the group handled them"
})
