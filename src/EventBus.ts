/**
 * Typed events over `Publisher` / `Subscriber`: events are values of Schema types, marshaled to JSON with their type
 * name in metadata `name`. Any number of subscribers per event type: each `subscribe` is its own consumer group (its
 * `group` names it), so each receives every event, and handles the types it has handlers for (the others are
 * acknowledged and skipped).
 *
 * ```ts
 * class UserCreated extends Schema.TaggedClass<UserCreated>()("UserCreated", { name: Schema.String }) {}
 * const Users = EventBus.define({ topic: "user-events", events: { UserCreated, UserDeleted } })
 * const bus = yield* EventBus.make(Users)
 * yield* bus.publish("UserCreated", new UserCreated({ name: "Ann" }))
 * yield* bus.subscribe({ UserCreated: (event) => sendWelcomeMail(event) }, { group: "welcome-mails" })
 * ```
 *
 * An event of a type the bus does not know, or whose payload does not decode, is moved to the dead letters with the
 * reason and the subscriber keeps going.
 *
 * @since 0.1.0
 */

import { Effect } from "effect"
import * as Bus from "./internal/messaging/bus.js"
import type { MessagingError } from "./Message.js"
import * as Publisher from "./Publisher.js"
import * as Subscriber from "./Subscriber.js"

/**
 * An event bus's definition: its topic and its event schemas by type name.
 *
 * @since 0.1.0
 */
export interface Definition<Events extends Bus.Definitions> {
  readonly topic: string
  readonly events: Events
}

/**
 * Declares an event bus.
 *
 * @since 0.1.0
 */
export const define = <const Events extends Bus.Definitions>(definition: Definition<Events>): Definition<Events> =>
  definition

/**
 * An event bus.
 *
 * @since 0.1.0
 */
export interface EventBus<Events extends Bus.Definitions> {
  readonly topic: string
  /** Publishes an event of type `name`; returns its entry id. Fails `InvalidMessage` when it does not match. */
  readonly publish: <K extends keyof Events & string>(
    name: K,
    event: Events[K]["Type"]
  ) => Effect.Effect<string, MessagingError>
  /** Handles the events of the types in `handlers` as the consumer group `options.group`, until interrupted. */
  readonly subscribe: <E, R>(
    handlers: Partial<Bus.Handlers<Events, E, R>>,
    options: Subscriber.ConsumeOptions
  ) => Effect.Effect<never, MessagingError, R>
}

/**
 * The bus of `definition`, on the `Publisher` and `Subscriber` in context.
 *
 * @since 0.1.0
 */
export const make = <Events extends Bus.Definitions>(
  definition: Definition<Events>
): Effect.Effect<EventBus<Events>, never, Publisher.Publisher | Subscriber.Subscriber> =>
  Effect.map(Bus.make(definition.topic, definition.events, "EventBus.publish", true), (bus): EventBus<Events> => ({
    topic: definition.topic,
    publish: bus.send,
    subscribe: bus.consume
  }))
