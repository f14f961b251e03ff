/**
 * Typed commands over `Publisher` / `Subscriber`: commands are values of Schema types, marshaled to JSON with their
 * type name in metadata `name`; each command type has exactly one handler, and the handlers of a bus form one
 * consumer group, so each command is handled once (at least once, under failures).
 *
 * ```ts
 * class CreateUser extends Schema.TaggedClass<CreateUser>()("CreateUser", { name: Schema.String }) {}
 * const Users = CommandBus.define({ topic: "user-commands", commands: { CreateUser } })
 * const bus = yield* CommandBus.make(Users)
 * yield* bus.send("CreateUser", new CreateUser({ name: "Ann" }))
 * yield* bus.handle({ CreateUser: (command) => createUser(command) }, { group: "user-service" })
 * ```
 *
 * A message of an unknown type, or whose payload does not decode, is moved to the dead letters with the reason and
 * the bus keeps going; a handler's failure is retried and dead-lettered after `maxDeliveries` (see `Subscriber`).
 *
 * @since 0.1.0
 */

import { Effect } from "effect"
import * as Bus from "./internal/messaging/bus.js"
import type { MessagingError } from "./Message.js"
import * as Publisher from "./Publisher.js"
import * as Subscriber from "./Subscriber.js"

/**
 * A command bus's definition: its topic and its command schemas by type name.
 *
 * @since 0.1.0
 */
export interface Definition<Commands extends Bus.Definitions> {
  readonly topic: string
  readonly commands: Commands
}

/**
 * Declares a command bus.
 *
 * @since 0.1.0
 */
export const define = <const Commands extends Bus.Definitions>(
  definition: Definition<Commands>
): Definition<Commands> => definition

/**
 * A command bus.
 *
 * @since 0.1.0
 */
export interface CommandBus<Commands extends Bus.Definitions> {
  readonly topic: string
  /** Sends a command of type `name`; returns its entry id. Fails `InvalidMessage` when it does not match its schema. */
  readonly send: <K extends keyof Commands & string>(
    name: K,
    command: Commands[K]["Type"]
  ) => Effect.Effect<string, MessagingError>
  /** Handles the bus's commands, one handler per type, until interrupted (see `Subscriber.consume`). */
  readonly handle: <E, R>(
    handlers: Bus.Handlers<Commands, E, R>,
    options: Subscriber.ConsumeOptions
  ) => Effect.Effect<never, MessagingError, R>
}

/**
 * The bus of `definition`, on the `Publisher` and `Subscriber` in context.
 *
 * @since 0.1.0
 */
export const make = <Commands extends Bus.Definitions>(
  definition: Definition<Commands>
): Effect.Effect<CommandBus<Commands>, never, Publisher.Publisher | Subscriber.Subscriber> =>
  Effect.map(
    Bus.make(definition.topic, definition.commands, "CommandBus.send", false),
    (bus): CommandBus<Commands> => ({
      topic: definition.topic,
      send: bus.send,
      handle: bus.consume
    })
  )
