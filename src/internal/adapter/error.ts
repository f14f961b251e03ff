/**
 * Making the errors of the `StreamAdapter` module (`StreamAdapterError`, its reasons declared in
 * StreamAdapterError.ts).
 *
 * @internal
 */
import type { OutcomeUnknown, RedisError } from "../../RedisError.js"
import { failureReason, type DescribedReason } from "../reasons.js"
import { StreamAdapterError, type StreamAdapterErrorReason } from "../../StreamAdapterError.js"

/** An error of stream `stream` (and group, item) with `reason`. */
const of = (reason: StreamAdapterErrorReason, stream: string, groupId?: string, id?: string): StreamAdapterError =>
  new StreamAdapterError({
    reason,
    stream,
    ...(groupId === undefined ? {} : { groupId }),
    ...(id === undefined ? {} : { id })
  })

/** A `StreamAdapterError` of `stream` (and group, item) with `reason` made from `message`. */
export const fail = (
  reason: DescribedReason<StreamAdapterErrorReason>,
  message: string,
  stream: string,
  groupId?: string,
  id?: string
): StreamAdapterError => of(new reason({ message }), stream, groupId, id)

/** Wraps a `RedisError` (or an `OutcomeUnknown`) of `stream` (and group). */
export const fromRedis =
  (stream: string, groupId?: string) =>
  (cause: RedisError | OutcomeUnknown): StreamAdapterError =>
    of(failureReason(cause), stream, groupId)
