/**
 * Making the errors of the `EventSink` module (`EventSinkError`, its reasons declared in EventSinkError.ts).
 *
 * @internal
 */
import { type RedisError, RedisFailure } from "../../RedisError.js"
import { Decode, EventSinkError, type EventSinkErrorReason } from "../../EventSinkError.js"
import type { DescribedReason } from "../reasons.js"

/** An `EventSinkError` with `reason` made from `message`. */
export const fail = (reason: DescribedReason<EventSinkErrorReason>, message: string): EventSinkError =>
  new EventSinkError({ reason: new reason({ message }) })

/** A stored entry that is not a sink event. */
export const decodeFailure = (message: string, entryId: string): EventSinkError =>
  new EventSinkError({ reason: new Decode({ message, entryId }) })

/** Wraps a `RedisError`. */
export const fromRedis = (cause: RedisError): EventSinkError =>
  new EventSinkError({ reason: new RedisFailure({ cause }) })
