/**
 * How a consumer runs a handler on a message: in a `Subscriber.handle {topic}` span whose parent is the publisher's
 * span (W3C traceparent in the metadata) when a tracing backend is installed; without one, no span per message (nobody
 * would see it) and the handler runs under the publisher's span context, so what it publishes continues the trace.
 *
 * @internal
 */
import { Effect, Option } from "effect"
import type { Message } from "../../Message.js"
import { isTracing, noStackTrace } from "../spans.js"
import * as Trace from "../trace.js"

/** What the span says about the message. */
export interface Handled {
  readonly topic: string
  readonly group: string
  readonly id: string
  readonly deliveries: number
  readonly message: Message
}

/** `effect` (the handler on `handled`) in its span when anyone sees spans, else under the publisher's span context. */
export const inTrace = <A, E, R>(handled: Handled, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  const parent = Option.getOrUndefined(Trace.parentOf(handled.message.metadata[Trace.traceparentKey]))
  return Effect.withFiber((fiber) => {
    if (!isTracing(fiber)) return parent === undefined ? effect : Effect.withParentSpan(effect, parent)
    return Effect.withSpan(effect, `Subscriber.handle ${handled.topic}`, {
      ...noStackTrace,
      kind: "consumer",
      parent,
      attributes: {
        "messaging.destination.name": handled.topic,
        "messaging.consumer.group.name": handled.group,
        "messaging.message.id": handled.id,
        "messaging.message.delivery_count": handled.deliveries
      }
    })
  })
}
