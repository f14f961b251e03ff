/**
 * Making the errors of the `ResumableStream` module (`ResumableStreamError`, its reasons declared in
 * ResumableStreamError.ts).
 *
 * @internal
 */
import { type RedisError, RedisFailure } from "../../RedisError.js"
import { describedByTag, type DescribedReason } from "../reasons.js"
import { Decode, Failed, ResumableStreamError, ResumableStreamErrorReason } from "../../ResumableStreamError.js"

export type { ResumableStreamError } from "../../ResumableStreamError.js"

/** The reasons made from a message alone, by tag (a run's terminal entry records the tag). */
const described = describedByTag<ResumableStreamErrorReason>(ResumableStreamErrorReason)

/** The reason made from a message alone that a stored `tag` names, if it is one. */
export const describedReasonOf = (tag: string | undefined): DescribedReason<ResumableStreamErrorReason> | undefined =>
  tag === undefined ? undefined : described.get(tag)

const withRun = (reason: ResumableStreamErrorReason, runId: string | undefined) =>
  new ResumableStreamError({ reason, ...(runId === undefined ? {} : { runId }) })

/** A `ResumableStreamError` with `reason` made from `message`, and the run id. */
export const fail = (
  reason: DescribedReason<ResumableStreamErrorReason>,
  message: string,
  runId?: string
): ResumableStreamError => withRun(new reason({ message }), runId)

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
