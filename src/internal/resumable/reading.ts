/**
 * Reading a run by its token: the token checked, the run's entries read from Redis (catch-up, then live) and each
 * stored chunk decoded, as the stream's schema says or as stored JSON; the run's end as the stream's end or its error.
 *
 * @internal
 */
import { Effect, Exit, Result, Schema, Stream } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import type { AnyDefinition, Definition, Entry, ResumeOptions } from "../../ResumableStream.js"
import * as Reasons from "../../ResumableStreamError.js"
import type { ResumableStreamError } from "../../ResumableStreamError.js"
import { issueOf } from "../issue.js"
import type { Access } from "./access.js"
import { terminalError } from "./ending.js"
import { decodeFailure, fail } from "./error.js"
import { runKeys } from "./keys.js"
import { countOverflow } from "./metrics.js"
import type { Clock } from "../liveTail.js"
import { read } from "./reader.js"
import type { Settings } from "./settings.js"
import { isEntryId, isStartId } from "../entryIds.js"

/** Reading the runs of a layer. */
export interface Reading {
  /** A run's entries with their chunks as stored JSON values. */
  readonly resumeEncoded: (
    token: string,
    options?: ResumeOptions
  ) => Stream.Stream<Entry<unknown>, ResumableStreamError>
  /** A run's entries with their chunks decoded by `definition`'s schema (the token must be of that stream). */
  readonly resume: <I, A, E, R>(
    definition: Definition<I, A, E, R>,
    token: string,
    options?: ResumeOptions
  ) => Stream.Stream<Entry<A>, ResumableStreamError>
}

/** Reading on `redis` with the layer's settings, tokens and shared clock. */
export const make = (redis: RedisClient.Service, settings: Settings, access: Access, clock: Clock): Reading => {
  /** Reads a run as entries whose chunk is `decode`d from its stored JSON (`{"item": …}`'s item). */
  const readDecoded = <A>(
    token: string,
    readOptions: ResumeOptions | undefined,
    decode: (definition: AnyDefinition) => (item: unknown) => Result.Result<A, string>,
    expectedName?: string
  ): Stream.Stream<Entry<A>, ResumableStreamError> =>
    Stream.unwrap(
      Effect.gen(function* () {
        const after = readOptions?.after
        const bufferBytes = readOptions?.bufferBytes
        const payload = yield* expectedName === undefined ? access.verify(token) : access.verifyFor(token, expectedName)
        if (after !== undefined && !isEntryId(after)) {
          return yield* fail(
            Reasons.InvalidOffset,
            "`after` must be an entry id such as 1700000000000-0",
            payload.runId
          )
        }
        const definition = settings.definitions.get(payload.name) as AnyDefinition
        const decodeItem = decode(definition)
        const decodeError = (entryId: string, message: string) => decodeFailure(message, payload.runId, entryId)
        return read({
          redis,
          keys: runKeys(settings.prefix, payload.name, payload.runId),
          runId: payload.runId,
          after: after === undefined || isStartId(after) ? undefined : after,
          pageSize: settings.pageSize,
          pageBytes: Math.min(settings.pageBytes, bufferBytes ?? settings.pageBytes),
          maxInboxBytes: bufferBytes ?? settings.liveBufferBytes,
          maxEntryBytes: settings.maxChunkBytes,
          onOverflow: countOverflow,
          clock,
          producerTimeout: settings.producerTimeout,
          outageTimeout: settings.outageTimeout,
          missing: settings.secrets.length > 0 ? Reasons.Expired : Reasons.NotFound,
          onEnd: (terminal) =>
            terminal.status === "completed"
              ? Effect.void
              : Effect.fail(terminalError(terminal, definition, payload.runId)),
          decode: (raw) => {
            let item: unknown
            try {
              item = (JSON.parse(raw.data) as { item?: unknown }).item
            } catch {
              return Result.fail(decodeError(raw.id, "a stored chunk is not JSON"))
            }
            return Result.mapBoth(decodeItem(item), {
              onFailure: (message) => decodeError(raw.id, message),
              onSuccess: (chunk) => ({ id: raw.id, seq: raw.seq, chunk })
            })
          }
        })
      })
    )

  return {
    resumeEncoded: (token, options) => readDecoded(token, options, () => Result.succeed),
    resume: (definition, token, options) => {
      const decodeChunk = Schema.decodeUnknownExit(definition.chunk)
      return readDecoded(
        token,
        options,
        () => (item) => {
          const decoded = decodeChunk(item)
          return Exit.isSuccess(decoded)
            ? Result.succeed(decoded.value)
            : Result.fail(`a stored chunk does not match the schema: ${issueOf(decoded.cause)}`)
        },
        definition.name
      )
    }
  }
}
