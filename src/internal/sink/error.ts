/**
 * The error of the `EventSink` module: `EventSinkError`, whose `reason` is one of the tagged classes below (match one
 * with `Effect.catchReason("EventSinkError", tag, …)`).
 *
 * @internal
 */
import { type RedisError, RedisFailure } from "../../RedisError.js"
import { BufferFull, InvalidEvent, CircuitOpen, Closed, Decode, EventSinkError } from "../../EventSinkError.js"

export {
  BufferFull,
  InvalidEvent,
  CircuitOpen,
  Closed,
  Decode,
  EventSinkErrorReason,
  EventSinkError
} from "../../EventSinkError.js"

const describedReasons = { BufferFull, InvalidEvent, CircuitOpen, Closed }

/** An `EventSinkError` with the reason `tag` and `message`. */
export const fail = (tag: keyof typeof describedReasons, message: string): EventSinkError =>
  new EventSinkError({ reason: new describedReasons[tag]({ message }) })

/** A stored entry that is not a sink event. */
export const decodeFailure = (message: string, entryId: string): EventSinkError =>
  new EventSinkError({ reason: new Decode({ message, entryId }) })

/** Wraps a `RedisError`. */
export const fromRedis = (cause: RedisError): EventSinkError =>
  new EventSinkError({ reason: new RedisFailure({ cause }) })
