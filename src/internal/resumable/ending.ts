/**
 * How a run ends, as a record and as an error: the terminal record a runner's exit writes (completed, failed with its
 * reason or encoded error, lost at shutdown, over its lifetime), the error a reader or the starter gets for a
 * terminal record, and the errors of the run scripts' refusals.
 *
 * @internal
 */
import { Cause, Exit, Schema } from "effect"
import type { AnyDefinition } from "../../ResumableStream.js"
import * as Reasons from "../../ResumableStreamError.js"
import { ResumableStreamError } from "../../ResumableStreamError.js"
import { redisError } from "../reasons.js"
import { describedReasonOf, fail, failed, fromRedis } from "./error.js"
import type * as Scripts from "./scripts.js"
import type { Terminal } from "./wire.js"
import * as RunWriter from "./writer.js"

/** The error of a run script's refusal (the run is gone, fenced, live elsewhere, or over). */
export const refusalError = (refusal: Scripts.Refusal, runId: string): ResumableStreamError => {
  switch (refusal[0]) {
    case "GONE":
      return fail(Reasons.Expired, "the run's data is gone", runId)
    case "FENCED":
      return fail(Reasons.Fenced, "another producer took this run over", runId)
    case "RUNNING":
      return fail(Reasons.AlreadyRunning, "a live producer holds this run", runId)
    case "FINISHED":
      return refusal[1] === "cancelled"
        ? fail(Reasons.Cancelled, "the run was cancelled", runId)
        : fail(Reasons.AlreadyFinished, `the run is already ${refusal[1]}`, runId)
  }
}

/** The writer's error that means the run was ended by someone else (no marker to write), if any. */
export const endedElsewhereBy = (exit: Exit.Exit<void, unknown>): ResumableStreamError | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const failure = exit.cause.reasons.find(Cause.isFailReason)
  const error = failure?.error
  return error instanceof ResumableStreamError && ["Fenced", "Cancelled", "Expired"].includes(error.reason._tag)
    ? error
    : undefined
}

/** The terminal record of a runner's exit (`timedOut`: it ran past its lifetime). */
export const terminalOf = (exit: Exit.Exit<void, unknown>, definition: AnyDefinition, timedOut: boolean): Terminal => {
  if (timedOut) return { status: "failed", reason: "LifetimeExceeded", message: "the run exceeded its max lifetime" }
  if (Exit.isSuccess(exit)) return { status: "completed" }
  const failure = exit.cause.reasons.find(Cause.isFailReason)
  if (failure !== undefined) {
    const error = failure.error
    if (error instanceof ResumableStreamError) {
      // the writer's own failure (a chunk too large, an outage…): readers get the same reason
      const reason = RunWriter.isOutage(error) ? "RedisUnavailable" : error.reason._tag
      return { status: "failed", reason, message: error.message }
    }
    if (definition.error !== undefined) {
      const encoded = Schema.encodeExit(definition.error)(error)
      if (Exit.isSuccess(encoded)) return { status: "failed", error: encoded.value }
    }
    const message = error instanceof Error ? error.message : String(error)
    return { status: "failed", message: `the runner failed: ${message}`, error: { message } }
  }
  if (Cause.hasInterruptsOnly(exit.cause)) {
    return { status: "lost", reason: "ProducerShutdown", message: "the producer shut down" }
  }
  return { status: "failed", reason: "Defect", message: "the runner died unexpectedly" }
}

/** The error a reader (or the starter) gets for a run that ended with `terminal`. */
export const terminalError = (terminal: Terminal, definition: AnyDefinition, runId: string): ResumableStreamError => {
  switch (terminal.status) {
    case "completed":
      return failed("completed", runId, undefined)
    case "cancelled":
      return fail(Reasons.Cancelled, `the run was cancelled${terminal.reason ? `: ${terminal.reason}` : ""}`, runId)
    case "lost":
      return fail(Reasons.ProducerLost, terminal.message ?? "the producer stopped", runId)
    case "failed": {
      const described = describedReasonOf(terminal.reason)
      if (described !== undefined) return fail(described, terminal.message ?? "", runId)
      if (terminal.reason === "RedisUnavailable") {
        const message = terminal.message ?? "Redis was unavailable for too long"
        return fromRedis(runId)(redisError("ResumableStream.append", "Connection", message))
      }
      const decoded =
        definition.error === undefined || terminal.error === undefined
          ? undefined
          : Schema.decodeUnknownExit(definition.error)(terminal.error)
      const error = decoded !== undefined && Exit.isSuccess(decoded) ? decoded.value : terminal.error
      return failed(terminal.message ?? "the runner failed", runId, error)
    }
  }
}
