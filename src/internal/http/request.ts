/**
 * What the HTTP routes share around a request: route paths under a base, query parameters, a JSON body read within a
 * size limit, and the refusal responses (`{ reason, message }` with a status).
 *
 * @internal
 */
import { ByteSize, type Duration, Effect, Result } from "effect"
import { HttpIncomingMessage, type HttpServerRequest, HttpServerResponse } from "effect/http"

/** The route path of `suffix` under `base`: `("/x/", "/:name")` → `/x/:name`, `("/", "/:name")` → `/:name`. */
export const under = (base: string, suffix: `/${string}`): `/${string}` => {
  const trimmed = base.replace(/^\/+|\/+$/g, "")
  return trimmed === "" ? suffix : `/${trimmed}${suffix}`
}

/** A query parameter of the request, if present. */
export const searchParam = (request: HttpServerRequest.HttpServerRequest, name: string): string | undefined =>
  new URL(request.url, "http://localhost").searchParams.get(name) ?? undefined

/** A refusal: `{ reason, message }` with `status`. */
export const refusal = (status: number, reason: string, message: string) =>
  HttpServerResponse.jsonUnsafe({ reason, message }, { status })

/** 400 `InvalidInput`. */
export const badRequest = (message: string) => refusal(400, "InvalidInput", message)

const tooLarge = (limit: number) =>
  refusal(413, "InvalidInput", `the body is larger than ${limit} bytes (maxBodyBytes)`)

/** How large a request body may be, and how long it may take to arrive. */
export interface BodyLimits {
  readonly maxBodyBytes: number
  readonly bodyTimeout: Duration.Duration
}

/**
 * Reads a request body within `limits`, or answers the refusal: 413 beyond `maxBodyBytes`, 408 when it takes longer
 * than `bodyTimeout` (a client sending slowly holds nothing for long), `invalid` when `read` fails otherwise.
 */
const readWithin = <A, E>(
  request: HttpServerRequest.HttpServerRequest,
  limits: BodyLimits,
  read: Effect.Effect<A, E>,
  invalid: HttpServerResponse.HttpServerResponse
): Effect.Effect<Result.Result<A, HttpServerResponse.HttpServerResponse>> => {
  const { maxBodyBytes } = limits
  if (Number(request.headers["content-length"] ?? 0) > maxBodyBytes) {
    return Effect.succeed(Result.fail(tooLarge(maxBodyBytes)))
  }
  return read.pipe(
    Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodyBytes)),
    Effect.result,
    Effect.map(
      Result.mapError((error) =>
        String((error as { readonly cause?: unknown }).cause).includes("maxBytes exceeded")
          ? tooLarge(maxBodyBytes)
          : invalid
      )
    ),
    Effect.timeoutOrElse({
      duration: limits.bodyTimeout,
      orElse: () => Effect.succeed(Result.fail(refusal(408, "InvalidInput", "the body took too long to arrive")))
    })
  )
}

/** The request's JSON body, or the response refusing it (see `readWithin`; 400 when it is not JSON). */
export const jsonBody = (
  request: HttpServerRequest.HttpServerRequest,
  limits: BodyLimits,
  expected: string
): Effect.Effect<Result.Result<unknown, HttpServerResponse.HttpServerResponse>> =>
  readWithin(request, limits, request.json, badRequest(`the body must be ${expected}`))

/** The request's body as bytes, or the response refusing it (see `readWithin`). */
export const bytesBody = (
  request: HttpServerRequest.HttpServerRequest,
  limits: BodyLimits
): Effect.Effect<Result.Result<Uint8Array, HttpServerResponse.HttpServerResponse>> =>
  Effect.map(
    readWithin(request, limits, request.arrayBuffer, badRequest("the body could not be read")),
    Result.map((buffer) => new Uint8Array(buffer))
  )
