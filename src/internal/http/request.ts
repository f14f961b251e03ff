/**
 * What the HTTP routes share around a request: route paths under a base, query parameters, a JSON body read within a
 * size limit, and the refusal responses (`{ reason, message }` with a status).
 *
 * @internal
 */
import { ByteSize, Effect, Result } from "effect"
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

/** The request's JSON body, or the response refusing it: 413 beyond `maxBodyBytes`, 400 when it is not JSON. */
export const jsonBody = (
  request: HttpServerRequest.HttpServerRequest,
  maxBodyBytes: number,
  expected: string
): Effect.Effect<Result.Result<unknown, HttpServerResponse.HttpServerResponse>> => {
  if (Number(request.headers["content-length"] ?? 0) > maxBodyBytes) {
    return Effect.succeed(Result.fail(tooLarge(maxBodyBytes)))
  }
  return Effect.map(
    Effect.result(
      request.json.pipe(Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodyBytes)))
    ),
    Result.mapError((error) =>
      String(error.cause).includes("maxBytes exceeded")
        ? tooLarge(maxBodyBytes)
        : badRequest(`the body must be ${expected}`)
    )
  )
}
