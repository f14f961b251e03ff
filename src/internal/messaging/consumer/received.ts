/**
 * A received message as the subscriber gets it: a class instance whose settling operations are the consumer's.
 *
 * @internal
 */
import type { Duration, Effect } from "effect"
import type { DeadLetterInfo, Message, MessagingError } from "../../../Message.js"
import type { Received } from "../../../Subscriber.js"

/** How a received message is settled: the consumer's operations, shared by all its messages. */
export interface Settle {
  readonly topic: string
  readonly acknowledgement: (id: string) => Effect.Effect<void, MessagingError>
  readonly giveBack: (
    id: string,
    deliveries: number,
    options?: { readonly delay?: Duration.Input | undefined }
  ) => Effect.Effect<void, MessagingError>
  readonly deadLetter: (
    id: string,
    reason: string,
    deliveries: number,
    error?: unknown
  ) => Effect.Effect<void, MessagingError>
}

/**
 * A received message. Its effects are made when used (most messages only ever get a quiet acknowledgement): `ack` is a
 * getter of the class; `nack` and `deadLetter` are own functions, so they may be passed around detached from it.
 */
export class ReceivedMessage implements Received {
  readonly topic: string
  readonly nack: Received["nack"]
  readonly deadLetter: Received["deadLetter"]
  constructor(
    private readonly settle: Settle,
    readonly id: string,
    readonly message: Message,
    readonly deliveries: number,
    readonly deadLettered: DeadLetterInfo | undefined
  ) {
    this.topic = settle.topic
    this.nack = (options) => settle.giveBack(id, deliveries, options)
    this.deadLetter = (reason, options) => settle.deadLetter(id, reason, deliveries, options?.error)
  }
  get ack() {
    return this.settle.acknowledgement(this.id)
  }
}
