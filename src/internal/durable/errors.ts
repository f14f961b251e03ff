/**
 * Making the errors of the `DurableStreams` module (reasons declared in DurableStreamsError.ts).
 *
 * @internal
 */
import { Effect } from "effect"
import { type RedisError, RedisFailure } from "../../RedisError.js"
import * as Reasons from "../../DurableStreamsError.js"

/** A reason made from a message alone. */
type Described =
  | typeof Reasons.NotFound
  | typeof Reasons.Gone
  | typeof Reasons.Conflict
  | typeof Reasons.InvalidRequest
  | typeof Reasons.ReadOnly

/** Fails with `reason` made from `message`, for stream `stream`. */
export const fail = (stream: string, reason: Described, message: string) =>
  Effect.fail(new Reasons.DurableStreamsError({ stream, reason: new reason({ message }) }))

/** Fails with a reason already made. */
export const failWith = (stream: string, reason: Reasons.DurableStreamsErrorReason) =>
  Effect.fail(new Reasons.DurableStreamsError({ stream, reason }))

/** Wraps the `RedisError` of an operation on `stream`. */
export const fromRedis = (stream: string) => (cause: RedisError) =>
  new Reasons.DurableStreamsError({ stream, reason: new RedisFailure({ cause }) })

/** The stream does not exist. */
export const notFound = (stream: string) => fail(stream, Reasons.NotFound, `no stream ${stream}`)

/** The stream is soft-deleted. */
export const gone = (stream: string) =>
  fail(stream, Reasons.Gone, `stream ${stream} was deleted; forks still reference its data`)
