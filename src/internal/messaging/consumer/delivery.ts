/**
 * Handing read entries to the subscriber: each entry decoded into a received message and put in the consumer's
 * queue (its slot taken); an entry that is not a message, or was delivered more than `maxDeliveries` times, goes to
 * the dead letters; a pending entry deleted from the stream meanwhile is acknowledged, counted and logged. What cannot
 * be delivered is settled first, so the entries behind it are handled after it, in stream order.
 *
 * @internal
 */
import { Effect, Queue } from "effect"
import type { MessagingError } from "../../../Message.js"
import type { Received } from "../../../Subscriber.js"
import * as Metrics from "../metrics.js"
import { decode, type RawEntry } from "../wire.js"
import { type Context, noteDropped, send } from "./context.js"
import { ReceivedMessage } from "./received.js"
import type { Settler } from "./settle.js"

/** Delivers `entries`, each with the delivery count `deliveriesOf` gives it. */
export const deliver = (
  context: Context,
  settler: Settler,
  entries: ReadonlyArray<RawEntry>,
  deliveriesOf: (id: string) => number
): Effect.Effect<void, MessagingError> =>
  Effect.suspend(() => {
    const { maxDeliveries } = context.options
    const rejected: Array<readonly [id: string, reason: string, deliveries: number]> = []
    const deleted: Array<string> = []
    const accepted: Array<Received> = []
    for (const [rawId, fields] of entries) {
      const id = rawId.toString()
      const deliveries = deliveriesOf(id)
      // a pending entry deleted from the stream: nothing to deliver, nothing to keep (counted and logged)
      if (fields === null || fields.length === 0) {
        deleted.push(id)
        continue
      }
      const decoded = decode(fields)
      if ("problem" in decoded) {
        rejected.push([id, `not a message: ${decoded.problem}`, deliveries])
      } else if (maxDeliveries !== undefined && deliveries > maxDeliveries) {
        rejected.push([id, `delivered ${deliveries} times, more than ${maxDeliveries}`, deliveries])
      } else {
        accepted.push(new ReceivedMessage(settler.settle, id, decoded.message, deliveries, decoded.deadLettered))
      }
    }
    const deliverAccepted = Effect.sync(() => {
      const now = Date.now()
      for (const received of accepted) {
        context.slots.inFlight.set(received.id, now)
        Queue.offerUnsafe(context.messages, received)
      }
    })
    if (rejected.length === 0 && deleted.length === 0) {
      return Effect.andThen(deliverAccepted, context.count(Metrics.delivered, accepted.length))
    }
    return Effect.all(
      [
        deleted.length === 0
          ? Effect.void
          : send(context, "XACK", context.key, context.group, ...deleted).pipe(
              Effect.andThen(noteDropped(context, deleted.length, "read again from the pending list"))
            ),
        Effect.forEach(rejected, ([id, reason, deliveries]) => settler.deadLetter(id, reason, deliveries), {
          discard: true
        }),
        deliverAccepted,
        context.count(Metrics.delivered, accepted.length)
      ],
      { discard: true }
    )
  })

/** Entries with their delivery counts, as the claim and retry scripts return them, delivered. */
export const deliverCounted = (
  context: Context,
  settler: Settler,
  entries: ReadonlyArray<RawEntry>,
  counts: ReadonlyArray<number>
): Effect.Effect<void, MessagingError> => {
  if (entries.length === 0) return Effect.void
  const byId = new Map(entries.map((entry, i) => [entry[0].toString(), counts[i] ?? 1]))
  return deliver(context, settler, entries, (id) => byId.get(id) ?? 1)
}
