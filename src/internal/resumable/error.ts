/**
 * The error of the `ResumableStream` module: `ResumableStreamError`, whose `reason` is one of the tagged classes
 * below (match one with `Effect.catchReason("ResumableStreamError", tag, …)`).
 *
 * @internal
 */
import { type RedisError, RedisFailure } from "../../RedisError.js"
import {
  InvalidToken,
  NotFound,
  Expired,
  InvalidOffset,
  Truncated,
  ProducerLost,
  Cancelled,
  Failed,
  LifetimeExceeded,
  ChunkTooLarge,
  Fenced,
  AlreadyRunning,
  AlreadyFinished,
  InvalidInput,
  Decode,
  ResumableStreamErrorReason,
  ResumableStreamError
} from "../../ResumableStreamError.js"

export {
  InvalidToken,
  NotFound,
  Expired,
  InvalidOffset,
  Truncated,
  ProducerLost,
  Cancelled,
  Failed,
  LifetimeExceeded,
  ChunkTooLarge,
  Fenced,
  AlreadyRunning,
  AlreadyFinished,
  InvalidInput,
  Decode,
  ResumableStreamErrorReason,
  ResumableStreamError
} from "../../ResumableStreamError.js"

const describedReasons = {
  InvalidToken,
  NotFound,
  Expired,
  InvalidOffset,
  Truncated,
  ProducerLost,
  Cancelled,
  LifetimeExceeded,
  ChunkTooLarge,
  Fenced,
  AlreadyRunning,
  AlreadyFinished,
  InvalidInput
}

/** The tags of the reasons that carry only a message. */
export type DescribedReason = keyof typeof describedReasons

/** True for the tag of a reason that carries only a message (as a terminal entry records it). */
export const isDescribedReason = (tag: string | undefined): tag is DescribedReason =>
  tag !== undefined && Object.hasOwn(describedReasons, tag)

const withRun = (reason: ResumableStreamErrorReason, runId: string | undefined) =>
  new ResumableStreamError({ reason, ...(runId === undefined ? {} : { runId }) })

/** A `ResumableStreamError` with the reason `tag`, its `message`, and the run id. */
export const fail = (tag: DescribedReason, message: string, runId?: string): ResumableStreamError =>
  withRun(new describedReasons[tag]({ message }), runId)

/** The runner failed with `error` (decoded, or as stored). */
export const failed = (message: string, runId: string, error: unknown): ResumableStreamError =>
  withRun(new Failed({ message, ...(error === undefined ? {} : { error }) }), runId)

/** A chunk that does not match its schema; `entryId` names a stored one. */
export const decodeFailure = (message: string, runId?: string, entryId?: string): ResumableStreamError =>
  withRun(new Decode({ message, ...(entryId === undefined ? {} : { entryId }) }), runId)

/** Wraps a `RedisError` of run `runId`. */
export const fromRedis =
  (runId?: string) =>
  (cause: RedisError): ResumableStreamError =>
    withRun(new RedisFailure({ cause }), runId)
