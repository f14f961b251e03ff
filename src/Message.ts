/**
 * The message of `Publisher` and `Subscriber`: a unique id, a payload of bytes and string metadata; and the one error
 * of the messaging modules (`Publisher`, `Subscriber`, `CommandBus`, `EventBus`).
 *
 * @since 0.1.0
 */

import { randomUUID } from "node:crypto"
import { Schema } from "effect"
import { failureReason } from "./internal/reasons.js"
import { OutcomeUnknown, type RedisError, RedisFailure } from "./RedisError.js"

/**
 * A message: `uuid` (unique; consumers deduplicate redeliveries by it), `payload` bytes and `metadata`.
 *
 * @since 0.1.0
 */
export interface Message {
  readonly uuid: string
  readonly payload: Uint8Array
  readonly metadata: Readonly<Record<string, string>>
}

/**
 * Makes a message; a string payload is stored as its UTF-8 bytes. `uuid` defaults to a random UUID.
 *
 * @since 0.1.0
 */
export const make = (
  payload: Uint8Array | string,
  options: { readonly metadata?: Readonly<Record<string, string>> | undefined; readonly uuid?: string | undefined } = {}
): Message => ({
  uuid: options.uuid ?? randomUUID(),
  payload: typeof payload === "string" ? Buffer.from(payload, "utf8") : payload,
  metadata: options.metadata ?? {}
})

/**
 * How a message came to a dead-letter topic: the fields the dead-letter move adds (`dead_reason`, `dead_topic`,
 * `dead_id`, `dead_group`, `dead_consumer`, `dead_deliveries`, `dead_at`).
 *
 * @since 0.1.0
 */
export interface DeadLetterInfo {
  /** Why it was dead-lettered (a handler's failure, too many deliveries, not a message). */
  readonly reason: string
  /** The topic it came from, and its entry id there. */
  readonly topic: string
  readonly id: string
  /** The group and consumer that gave up on it. */
  readonly group: string
  readonly consumer: string
  /** How many times it had been delivered. */
  readonly deliveries: number
  /** When it was moved (ISO time). */
  readonly at: string
  /**
   * The error that put it there, as JSON data (its tag, name, message and fields; credential-like fields redacted),
   * when one was kept: `consume` keeps a handler's failure.
   */
  readonly error: unknown
}

/**
 * The payload as UTF-8 text.
 *
 * @since 0.1.0
 */
export const text = (message: Message): string => Buffer.from(message.payload).toString("utf8")

const described = { message: Schema.String }

/**
 * A stream entry is not a message, or a payload does not decode; `entryId` names the entry.
 *
 * @since 0.1.0
 */
export class Decode extends Schema.TaggedError<Decode>()("Decode", {
  message: Schema.String,
  entryId: Schema.optional(Schema.String)
}) {
  readonly isRetryable = false
}

/**
 * A bus received a message type it has no handler or schema for.
 *
 * @since 0.1.0
 */
export class UnknownType extends Schema.TaggedError<UnknownType>()("UnknownType", described) {
  readonly isRetryable = false
}

/**
 * A message cannot be encoded (a command or event that does not match its schema).
 *
 * @since 0.1.0
 */
export class InvalidMessage extends Schema.TaggedError<InvalidMessage>()("InvalidMessage", described) {
  readonly isRetryable = false
}

/**
 * A partitioned topic is used as one it is not: it has no partitions stored in Redis (never created), or another
 * number of them than the caller declared (`stored` and `expected`; `stored` 0 when there is none).
 *
 * @since 0.1.0
 */
export class PartitionMismatch extends Schema.TaggedError<PartitionMismatch>()("PartitionMismatch", {
  message: Schema.String,
  stored: Schema.Number,
  expected: Schema.optional(Schema.Number)
}) {
  readonly isRetryable = false
}

/**
 * Why a messaging operation failed: one of the tagged classes above, `Redis` (a `RedisFailure`), or
 * `OutcomeUnknown` (a publish whose reply was lost).
 *
 * @since 0.1.0
 */
export const MessagingErrorReason = Schema.Union([
  Decode,
  UnknownType,
  InvalidMessage,
  PartitionMismatch,
  RedisFailure,
  OutcomeUnknown
])

/**
 * A reason of {@link MessagingError}.
 *
 * @since 0.1.0
 */
export type MessagingErrorReason = typeof MessagingErrorReason.Type

/**
 * A failed messaging operation: `reason` says why (`Effect.catchReason("MessagingError", tag, …)`), `topic` where it
 * is known.
 *
 * @since 0.1.0
 */
export class MessagingError extends Schema.TaggedError<MessagingError>()("MessagingError", {
  reason: MessagingErrorReason,
  topic: Schema.optional(Schema.String)
}) {
  /** The reason's message. */
  override get message(): string {
    return this.reason.message
  }
  /** True when the same call may succeed later (a retryable Redis failure). */
  get isRetryable(): boolean {
    return this.reason.isRetryable
  }
}

/**
 * Wraps a `RedisError` (or an `OutcomeUnknown`) of `topic`.
 *
 * @since 0.1.0
 */
export const fromRedis =
  (topic: string) =>
  (cause: RedisError | OutcomeUnknown): MessagingError =>
    new MessagingError({ reason: failureReason(cause), topic })
