/**
 * The metrics of messaging (attributes `topic` and `group`).
 *
 * @internal
 */
import { Metric } from "effect"

/** Messages deleted from a topic (trimmed) before a group handled them, by topic and group. */
export const dropped = Metric.counter("messaging_dropped", {
  description: "messages deleted from the stream (trimmed) before the group handled them"
})

/** Messages delivered to a consumer. */
export const delivered = Metric.counter("messaging_delivered", { description: "messages delivered to a consumer" })
/** Messages acknowledged. */
export const acked = Metric.counter("messaging_acked", { description: "messages acknowledged" })
/** Messages given back (nacked). */
export const nacked = Metric.counter("messaging_nacked", { description: "messages given back" })
/** Messages claimed from consumers that left them idle. */
export const claimed = Metric.counter("messaging_claimed", { description: "messages claimed from dead consumers" })
/** Messages moved to the dead letters. */
export const deadLettered = Metric.counter("messaging_dead_lettered", { description: "messages moved to dead letters" })

/** Entries delivered to the group and not acknowledged. */
export const pending = Metric.gauge("messaging_pending", { description: "entries delivered and not acknowledged" })
/** Entries not yet delivered to the group. */
export const lag = Metric.gauge("messaging_lag", { description: "entries not yet delivered to the group" })
/** Age of the oldest entry the group has not read yet, in ms. */
export const unreadAge = Metric.gauge("messaging_oldest_unread_age_ms", {
  description: "age of the oldest entry the group has not read yet (0: none)"
})
/** Age of the oldest entry delivered to the group and not acknowledged, in ms. */
export const pendingAge = Metric.gauge("messaging_oldest_pending_age_ms", {
  description: "age of the oldest entry delivered to the group and not acknowledged (0: none)"
})
