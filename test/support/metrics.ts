import { Effect, Metric } from "effect"

/** The count of the counter `id` in this process so far (0 before its first update). */
export const counterCount = (id: string): Effect.Effect<number> =>
  Effect.map(
    Metric.snapshot,
    (metrics) => (metrics.find((metric) => metric.id === id)?.state as { count?: number } | undefined)?.count ?? 0
  )
