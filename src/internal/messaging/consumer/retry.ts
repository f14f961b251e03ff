/**
 * A consumer's retry loop: messages waiting for a redelivery are pending for the group's holder consumer and listed
 * by due time in the group's retry set (see the `retryLater` and `takeDue` scripts). The loop takes due ones, as many
 * as there are free slots, at the due time it knows of (its own nacks), when woken ("due" on the wake channel: a
 * message handed back), and at the latest every `claimInterval` (retries another consumer scheduled).
 *
 * @internal
 */
import { Duration, Effect } from "effect"
import type { MessagingError } from "../../../Message.js"
import * as Scripts from "../scripts.js"
import { retryHolder } from "../wire.js"
import { type Context, noteDropped } from "./context.js"
import { deliverCounted } from "./delivery.js"
import type { Settler } from "./settle.js"
import type { DueClock } from "./signal.js"

/** Delivers retries as they fall due, for ever. */
export const loop = (context: Context, settler: Settler, due: DueClock): Effect.Effect<never, MessagingError> => {
  const { redis, key, group, consumer, options, slots } = context

  /** Takes the group's due retries, as many as there are free slots; true when there may be more due. */
  const takeDueOnce = Effect.gen(function* () {
    const free = yield* slots.wait
    due.reset() // a poke during the call lowers it again
    const [entries, counts, nextInMs, deleted] = yield* redis
      .evalBytes(Scripts.takeDue, [key, context.retryKey], [group, consumer, free, retryHolder])
      .pipe(Effect.mapError(context.toError))
    if (nextInMs >= 0) due.poke(Date.now() + nextInMs)
    yield* noteDropped(context, deleted, "due for a retry")
    yield* deliverCounted(context, settler, entries, counts)
    return entries.length + deleted === free
  })

  return Effect.gen(function* () {
    const interval = Duration.toMillis(options.claimInterval)
    let lastLook = 0
    for (;;) {
      const now = Date.now()
      if (now >= due.next() || now - lastLook >= interval) {
        lastLook = now
        if (yield* takeDueOnce) continue
      }
      yield* due.sleepUntil(Math.min(due.next(), lastLook + interval))
    }
  })
}
