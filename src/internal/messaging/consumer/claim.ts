/**
 * A consumer's periodic pass (every `claimInterval`): it claims entries other consumers left idle longer than
 * `claimIdleTime` (they died), as many as it has free slots, passing over those waiting for a retry; it renews the
 * leases of the messages it has held for a while (their idle time reset, so nobody claims them meanwhile); and it
 * updates the group's gauges (pending and lag in entries, ages of the oldest unread and pending entries).
 *
 * @internal
 */
import { Duration, Effect } from "effect"
import type { MessagingError } from "../../../Message.js"
import * as Metrics from "../metrics.js"
import * as Scripts from "../scripts.js"
import { idTime, retryHolder } from "../wire.js"
import { type Context, noteDropped } from "./context.js"
import { deliverCounted } from "./delivery.js"
import type { Settler } from "./settle.js"

/** One pass of claims, lease renewals and gauges. */
export const make = (context: Context, settler: Settler): Effect.Effect<void, MessagingError> => {
  const { redis, key, group, consumer, options, slots } = context
  let claimCursor = "-"

  const claimOnce = Effect.gen(function* () {
    const free = slots.free()
    if (free <= 0) return
    const [cursor, entries, counts, deleted] = yield* redis
      .evalBytes(
        Scripts.claimIdle,
        [key, context.retryKey],
        [group, consumer, Duration.toMillis(options.claimIdleTime), claimCursor, free, retryHolder]
      )
      .pipe(Effect.mapError(context.toError))
    claimCursor = cursor.toString()
    yield* noteDropped(context, deleted, "found by a claim")
    yield* deliverCounted(context, settler, entries, counts)
    yield* context.count(Metrics.claimed, entries.length)
  })

  // only the messages it still holds: one settled meanwhile is not renewed
  const extendLeases = Effect.suspend(() => {
    const threshold = Date.now() - Duration.toMillis(options.claimIdleTime) / 2
    const held = Array.from(slots.inFlight).flatMap(([id, since]) => (since < threshold ? [id] : []))
    if (held.length === 0) return Effect.void
    return redis.eval(Scripts.renewLeases, [key], [group, consumer, ...held]).pipe(
      Effect.mapError(context.toError),
      Effect.tap(() =>
        Effect.sync(() => {
          const now = Date.now()
          for (const id of held) if (slots.inFlight.has(id)) slots.inFlight.set(id, now)
        })
      )
    )
  })

  const reportGroup = Effect.flatMap(
    redis.eval(Scripts.groupLag, [key], [group]).pipe(Effect.mapError(context.toError)),
    ([pending, lag, oldestUnread, oldestPending, now]) => {
      const ageOf = (id: string | null) => (id === null ? 0 : Math.max(0, now - idTime(id)))
      return Effect.all(
        [
          context.gauge(Metrics.pending, pending),
          lag < 0 ? Effect.void : context.gauge(Metrics.lag, lag),
          context.gauge(Metrics.unreadAge, ageOf(oldestUnread)),
          context.gauge(Metrics.pendingAge, ageOf(oldestPending))
        ],
        { discard: true }
      )
    }
  )

  return Effect.all([claimOnce, extendLeases, reportGroup], { discard: true })
}
