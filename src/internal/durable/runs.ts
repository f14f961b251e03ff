/**
 * A ResumableStream run as a read-only Durable Stream: its chunks are JSON messages (content type `application/json`),
 * its offsets its entry ids (`ms_seq`, zero-padded), and it is closed once the run has ended, however it ended. A
 * catch-up read is a page of the run as it is now; a read that waits follows the run live (`resumeEncoded`) until its
 * next chunk or its end, then reads the page.
 *
 * @internal
 */
import { createHash } from "node:crypto"
import { type Duration, Effect, Stream } from "effect"
import type { ReadResult } from "../../DurableStreams.js"
import * as Reasons from "../../DurableStreamsError.js"
import type { DurableStreamsError } from "../../DurableStreamsError.js"
import type { RunPage, Service as ResumableStreams } from "../../ResumableStream.js"
import type { ResumableStreamError } from "../../ResumableStreamError.js"
import { RedisFailure } from "../../RedisError.js"
import { fail, failWith } from "./errors.js"
import * as Offsets from "./offsets.js"
import type { Source } from "./responses.js"

/** The durable-streams error of a run's reading error: what a client of the protocol may be told. */
const asDurable =
  (name: string) =>
  (error: ResumableStreamError): Effect.Effect<never, DurableStreamsError> => {
    switch (error.reason._tag) {
      case "Redis":
        return failWith(name, new RedisFailure({ cause: error.reason.cause }))
      case "ProducerLost":
        return fail(name, Reasons.Gone, "the run's producer was lost before it ended the run")
      case "InvalidToken":
      case "NotFound":
      case "Expired":
        return fail(name, Reasons.NotFound, "no such run (or its data expired)")
      default:
        return fail(name, Reasons.Conflict, `the run could not be read: ${error.reason._tag}`)
    }
  }

/** How a run ending with a failure or a cancellation counts for the view: the end of the stream, like a completion. */
const endsTheRun = (error: ResumableStreamError) => error.reason._tag === "Failed" || error.reason._tag === "Cancelled"

/** The read-only stream of the run of `token`. */
export const source = (runs: ResumableStreams, token: string, maxEntries: number): Source => {
  const name = "run"
  const id = createHash("sha256").update(token).digest("base64url").slice(0, 12)
  /** The entry id a read from `start` reads after (none: from the run's first entry). */
  const afterOf = (start: string) =>
    start === Offsets.format(Offsets.start) ? undefined : Offsets.entryId(Offsets.parse(start)!)

  const resultOf = (page: RunPage, start: string): ReadResult => {
    const last = page.entries.at(-1)
    const next = last === undefined ? start : Offsets.format(Offsets.ofEntryId(last.id))
    const tail = Offsets.format(Offsets.ofEntryId(page.tail))
    return {
      contentType: "application/json",
      id,
      ttlSeconds: undefined,
      expiresAt: undefined,
      closed: page.ended,
      offset: start,
      nextOffset: next,
      entries: page.entries.map((entry) => Buffer.from(JSON.stringify(entry.chunk) ?? "null", "utf8")),
      upToDate: next >= tail
    }
  }

  const pageAfter = (start: string) =>
    runs.readPage(token, { after: afterOf(start), maxEntries }).pipe(Effect.catch(asDurable(name)))

  const startOf = (offset: string | undefined): Effect.Effect<string, DurableStreamsError> => {
    const requested = Offsets.requested(offset)
    if (requested === undefined) return fail(name, Reasons.InvalidRequest, `malformed offset ${offset}`)
    if (requested._tag === "Start") return Effect.succeed(Offsets.format(Offsets.start))
    if (requested._tag === "At") return Effect.succeed(Offsets.format(requested.position))
    return Effect.map(runs.readPage(token, { maxEntries: 1 }).pipe(Effect.catch(asDurable(name))), (page) =>
      Offsets.format(Offsets.ofEntryId(page.tail))
    )
  }

  /** Waits until the run has a chunk after `start`, or ends, or `wait` passes. */
  const follow = (start: string, wait: Duration.Duration) =>
    runs.resumeEncoded(token, { after: afterOf(start) }).pipe(
      Stream.runHead,
      Effect.asVoid,
      Effect.catchIf(endsTheRun, () => Effect.void),
      Effect.catch(asDurable(name)),
      Effect.timeoutOption(wait),
      Effect.asVoid
    )

  return {
    read: (offset, wait) =>
      Effect.gen(function* () {
        const start = yield* startOf(offset)
        const first = resultOf(yield* pageAfter(start), start)
        if (wait === undefined || first.entries.length > 0 || first.closed || !first.upToDate) return first
        yield* follow(start, wait)
        return resultOf(yield* pageAfter(start), start)
      })
  }
}
