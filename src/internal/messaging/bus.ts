/**
 * What `CommandBus` and `EventBus` share: values of Schema types marshaled to messages (the JSON of the schema's
 * canonical JSON form as payload, the type name in metadata `name`), and the dispatch of received messages to typed
 * handlers, where an unknown type or a payload that does not decode goes to the dead letters with the reason.
 *
 * @internal
 */
import { Effect, Exit, Schema } from "effect"
import { spanned } from "../spans.js"
import * as Message from "../../Message.js"
import * as Publisher from "../../Publisher.js"
import * as Subscriber from "../../Subscriber.js"
import { issueOf } from "../issue.js"
import type { Received } from "../../Subscriber.js"

/** The schemas of a bus, by type name. */
export type Definitions = Readonly<Record<string, Schema.Codec<any, any>>>

/** A handler of one type. */
export type Handler<A, E, R> = (value: A, received: Received) => Effect.Effect<void, E, R>

/** Handlers by type name (all of them, or some). */
export type Handlers<D extends Definitions, E, R> = { readonly [K in keyof D]: Handler<D[K]["Type"], E, R> }

/** The metadata key holding the type name. */
const typeKey = "name"

/** Marshals `value` of type `name` into a message; fails `InvalidMessage` when it does not match its schema. */
const marshal = (
  definitions: Definitions,
  topic: string,
  name: string,
  value: unknown
): Effect.Effect<Message.Message, Message.MessagingError> => {
  const schema = definitions[name]
  if (schema === undefined) {
    return Effect.fail(
      new Message.MessagingError({ reason: new Message.UnknownType({ message: `no type named ${name}` }), topic })
    )
  }
  const encoded = Schema.encodeUnknownExit(Schema.toCodecJson(schema))(value)
  if (Exit.isFailure(encoded)) {
    return Effect.fail(
      new Message.MessagingError({
        reason: new Message.InvalidMessage({
          message: `a ${name} does not match its schema: ${issueOf(encoded.cause)}`
        }),
        topic
      })
    )
  }
  return Effect.succeed(
    Message.make(JSON.stringify(encoded.value), { metadata: { [typeKey]: name, content_type: "application/json" } })
  )
}

/** What both buses do: send values of their types to the topic, and run typed handlers on it. */
export interface BusCore {
  readonly send: (name: string, value: unknown) => Effect.Effect<string, Message.MessagingError>
  readonly consume: <E, R>(
    handlers: Readonly<Record<string, Handler<any, E, R> | undefined>>,
    options: Subscriber.ConsumeOptions
  ) => Effect.Effect<never, Message.MessagingError, R>
}

/**
 * The core of a bus on `topic`: `send` marshals and publishes (in a span named `span`) and returns the entry id;
 * `consume` dispatches to the handlers (see {@link dispatch}).
 */
export const make = (
  topic: string,
  definitions: Definitions,
  span: string,
  skipUnhandled: boolean
): Effect.Effect<BusCore, never, Publisher.Publisher | Subscriber.Subscriber> =>
  Effect.gen(function* () {
    const publisher = yield* Publisher.Publisher
    const subscriber = yield* Subscriber.Subscriber
    return {
      send: (name, value) =>
        spanned(
          marshal(definitions, topic, name, value).pipe(
            Effect.flatMap((message) => publisher.publish(topic, message)),
            Effect.map((ids) => ids[0] as string)
          ),
          span,
          { attributes: { topic, name } }
        ),
      consume: (handlers, options) => subscriber.consume(topic, dispatch(definitions, handlers, skipUnhandled), options)
    }
  })

/**
 * The consumer's handler for a bus: decodes each message with the schema its type names and runs that type's handler.
 * An unknown type, or a payload that does not decode, is dead-lettered with the reason; a known type without a handler
 * here is acknowledged and skipped when `skipUnhandled` (another subscriber's business), else dead-lettered.
 */
export const dispatch =
  <E, R>(
    definitions: Definitions,
    handlers: Readonly<Record<string, Handler<any, E, R> | undefined>>,
    skipUnhandled: boolean
  ) =>
  (received: Received): Effect.Effect<void, E, R> => {
    const name = received.message.metadata[typeKey]
    const schema = name === undefined ? undefined : definitions[name]
    if (name === undefined || schema === undefined) {
      return Effect.orDie(received.deadLetter(`unknown type ${name ?? "(none)"}`))
    }
    const handler = handlers[name]
    if (handler === undefined) {
      return Effect.orDie(skipUnhandled ? received.ack : received.deadLetter(`no handler for ${name}`))
    }
    let raw: unknown
    try {
      raw = JSON.parse(Message.text(received.message))
    } catch {
      return Effect.orDie(received.deadLetter(`the payload of a ${name} is not JSON`))
    }
    const decoded = Schema.decodeUnknownExit(Schema.toCodecJson(schema))(raw)
    if (Exit.isFailure(decoded)) return Effect.orDie(received.deadLetter(`the payload does not decode as ${name}`))
    return handler(decoded.value, received)
  }
