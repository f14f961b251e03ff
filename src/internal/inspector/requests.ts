/**
 * What the inspector's routes read from a request: a page's cursor and limit, the topic parameter, and the JSON
 * bodies of the actions (a dead-letter replay or delete, a cancel), each checked, or the 400 response refusing it;
 * and the headers of its responses (never cached; the page's content security policy).
 *
 * @internal
 */
import { Duration, Effect, Result } from "effect"
import type { HttpServerRequest, HttpServerResponse } from "effect/http"
import { badRequest, jsonBody, searchParam } from "../http/request.js"
import { isCursor as isDeadLetterId } from "../messaging/inspectDeadLetters.js"

/** The largest `limit` of a page, and the default. */
const maxLimit = 500
const defaultLimit = 50

/** The largest action body, and how long it may take to arrive. */
const bodyLimits = { maxBodyBytes: 64 * 1024, bodyTimeout: Duration.seconds(10) }

/** Entry ids one action may name. */
const maxIds = 1000

/** Responses are figures of the moment: never cached. */
export const noStore = { "cache-control": "no-store" }

/** The page's headers: its script from this origin (no inline script), inline style, requests to this origin only, no framing. */
export const pageHeaders = {
  ...noStore,
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer"
}

type Parsed<A> = Result.Result<A, HttpServerResponse.HttpServerResponse>

/** The cursor (checked by `isValid`) and limit (1–500, default 50) of a page request. */
export const pageParams = (
  request: HttpServerRequest.HttpServerRequest,
  isValid: (cursor: string) => boolean
): Parsed<{ readonly cursor: string | undefined; readonly limit: number }> => {
  const cursor = searchParam(request, "cursor") || undefined
  if (cursor !== undefined && !isValid(cursor)) return Result.fail(badRequest("cursor is not one this endpoint gave"))
  const limitText = searchParam(request, "limit")
  const limit = limitText === undefined ? defaultLimit : Number(limitText)
  if (!Number.isInteger(limit) || limit < 1 || limit > maxLimit) {
    return Result.fail(badRequest(`limit must be an integer from 1 to ${maxLimit}`))
  }
  return Result.succeed({ cursor, limit })
}

/** The `topic` query parameter. */
export const topicParam = (request: HttpServerRequest.HttpServerRequest): Parsed<string> => {
  const topic = searchParam(request, "topic")
  return topic === undefined || topic === ""
    ? Result.fail(badRequest("the topic query parameter is missing"))
    : Result.succeed(topic)
}

/** A dead-letter action: `{ topic, ids }` or `{ topic, all: true, upTo? }`. */
export interface DeadLetterBody {
  readonly topic: string
  readonly ids: ReadonlyArray<string> | undefined
  readonly upTo: string | undefined
}

const deadLetterBody = (body: unknown): Result.Result<DeadLetterBody, string> => {
  if (typeof body !== "object" || body === null) return Result.fail("the body must be a JSON object")
  const { topic, ids, all, upTo } = body as Record<string, unknown>
  if (typeof topic !== "string" || topic === "") return Result.fail("topic must be a non-empty string")
  if (upTo !== undefined && (typeof upTo !== "string" || !isDeadLetterId(upTo))) {
    return Result.fail("upTo must be an entry id")
  }
  if (all === true && ids === undefined) return Result.succeed({ topic, ids: undefined, upTo })
  if (!Array.isArray(ids) || ids.length > maxIds || !ids.every((id) => typeof id === "string" && isDeadLetterId(id))) {
    return Result.fail(`give ids (at most ${maxIds} entry ids) or all: true`)
  }
  return Result.succeed({ topic, ids: ids as ReadonlyArray<string>, upTo: undefined })
}

/** A cancel: `{ stream, runId, reason? }`. */
export interface CancelBody {
  readonly stream: string
  readonly runId: string
  readonly reason: string | undefined
}

const cancelBody = (body: unknown): Result.Result<CancelBody, string> => {
  if (typeof body !== "object" || body === null) return Result.fail("the body must be a JSON object")
  const { stream, runId, reason } = body as Record<string, unknown>
  if (typeof stream !== "string" || typeof runId !== "string") return Result.fail("stream and runId must be strings")
  if (reason !== undefined && (typeof reason !== "string" || reason.length > 1000)) {
    return Result.fail("reason must be a string of at most 1,000 characters")
  }
  return Result.succeed({ stream, runId, reason })
}

const parsedBody =
  <A>(parse: (body: unknown) => Result.Result<A, string>) =>
  (request: HttpServerRequest.HttpServerRequest): Effect.Effect<Parsed<A>> =>
    Effect.map(jsonBody(request, bodyLimits, "a JSON object"), (body) =>
      Result.flatMap(body, (value) => Result.mapError(parse(value), badRequest))
    )

/** The body of a dead-letter action. */
export const deadLetterAction = parsedBody(deadLetterBody)

/** The body of a cancel. */
export const cancelAction = parsedBody(cancelBody)
