/**
 * The error of the `StreamAdapter` module.
 *
 * @internal
 */
import { OutcomeUnknown, type RedisError } from "../../RedisError.js"
import { failureReason } from "../reasons.js"
import {
  Decode,
  InvalidItem,
  InvalidQuery,
  StreamAdapterErrorReason,
  StreamAdapterError
} from "../../StreamAdapterError.js"

export {
  Decode,
  InvalidItem,
  InvalidQuery,
  StreamAdapterErrorReason,
  StreamAdapterError
} from "../../StreamAdapterError.js"

const describedReasons = { Decode, InvalidItem, InvalidQuery }

/** An error of stream `stream` (and group, item) with `reason`. */
const of = (reason: StreamAdapterErrorReason, stream: string, groupId?: string, id?: string): StreamAdapterError =>
  new StreamAdapterError({
    reason,
    stream,
    ...(groupId === undefined ? {} : { groupId }),
    ...(id === undefined ? {} : { id })
  })

/** A `StreamAdapterError` of `stream` (and group, item) with the reason `tag`. */
export const fail = (
  tag: keyof typeof describedReasons,
  message: string,
  stream: string,
  groupId?: string,
  id?: string
): StreamAdapterError => of(new describedReasons[tag]({ message }), stream, groupId, id)

/** Wraps a `RedisError` (or an `OutcomeUnknown`) of `stream` (and group). */
export const fromRedis =
  (stream: string, groupId?: string) =>
  (cause: RedisError | OutcomeUnknown): StreamAdapterError =>
    of(failureReason(cause), stream, groupId)
