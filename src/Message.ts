/**
 * The message of `Publisher` and `Subscriber`: a unique id, a payload of bytes and string metadata; and the one error
 * of the messaging modules (`Publisher`, `Subscriber`, `CommandBus`, `EventBus`).
 *
 * @since 0.1.0
 */
import { randomUUID } from "node:crypto"
import { Schema } from "effect"
import { RedisError } from "./RedisError.js"

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
 * The payload as UTF-8 text.
 *
 * @since 0.1.0
 */
export const text = (message: Message): string => Buffer.from(message.payload).toString("utf8")

/**
 * Why a messaging operation failed.
 *
 * - `Decode`: a stream entry is not a message, or a payload does not decode (with the entry id).
 * - `UnknownType`: a bus received a message type it has no handler or schema for.
 * - `InvalidMessage`: a message cannot be encoded (a command or event that does not match its schema).
 * - `Redis`: Redis failed; `cause` is the `RedisError`.
 *
 * @since 0.1.0
 */
export const MessagingErrorReason = Schema.Literals(["Decode", "UnknownType", "InvalidMessage", "Redis"])

/**
 * A reason of {@link MessagingError}.
 *
 * @since 0.1.0
 */
export type MessagingErrorReason = typeof MessagingErrorReason.Type

/**
 * A failed messaging operation: `reason` says why, `topic` and `entryId` where they are known.
 *
 * @since 0.1.0
 */
export class MessagingError extends Schema.TaggedError<MessagingError>()("MessagingError", {
  reason: MessagingErrorReason,
  message: Schema.String,
  topic: Schema.optional(Schema.String),
  entryId: Schema.optional(Schema.String),
  /** The Redis failure, for reason `Redis`. */
  cause: Schema.optional(RedisError)
}) {
  /** True when the same call may succeed later (a retryable Redis failure). */
  get isRetryable(): boolean {
    return this.reason === "Redis" && this.cause?.isRetryable === true
  }
}

/**
 * Wraps a `RedisError` of `topic`.
 *
 * @since 0.1.0
 */
export const fromRedis =
  (topic: string) =>
  (cause: RedisError): MessagingError =>
    new MessagingError({ reason: "Redis", message: cause.message, topic, cause })
