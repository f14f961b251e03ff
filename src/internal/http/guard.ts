/**
 * What every route set of the library checks before a handler runs, so that reaching the port is not enough to use
 * it from a browser:
 *
 * - the `Host` header must name a host the server answers for (a page on a rebinding domain gets 403);
 * - an `Origin`, when the browser sends one, must be the page's own (same host and port as `Host`) or one of the
 *   allowed origins (a cross-site page gets 403, whatever it sends);
 * - a state-changing request (`POST`, `PUT`, `PATCH`) must say `content-type: application/json`, which a cross-site
 *   form or a `no-cors` fetch cannot send (415 otherwise), unless the route set takes other bodies (a protocol of
 *   bytes): a cross-site browser request then still carries its `Origin`, refused above;
 * - a CORS preflight is answered only for an allowed origin; the responses to one carry its CORS headers. `"*"`
 *   among the allowed origins allows every origin, without credentials (a public API).
 *
 * Every response gets `x-content-type-options: nosniff` and `cache-control: no-store` (answers are of the moment),
 * unless the route set lets its responses set their own (a protocol with cacheable reads).
 *
 * @internal
 */
import { Effect, type Layer } from "effect"
import { HttpRouter, type HttpServerRequest, HttpServerResponse } from "effect/http"
import type { SecurityOptions } from "../../ResumableStreamHttp.js"
import { refusal, under } from "./request.js"

/** The hosts a server answers for by default: this machine's loopback names. */
const loopbackHosts: ReadonlyArray<string> = ["localhost", "127.0.0.1", "[::1]"]

/**
 * Fails at once (a defect) for route options without an access decision: a JavaScript caller, or a cast, can leave
 * one out; the routes are then never open by accident.
 */
export const requireAccessDecision = (module: string, authorize: unknown, publicChoice: string): void => {
  if (typeof authorize !== "function") {
    throw new Error(
      `${module}.routes needs an access decision: an authorize hook, or authorize: ${publicChoice} to let every request in`
    )
  }
}

/** The host name of a `Host` header (`example.com:3000` → `example.com`, `[::1]:3000` → `[::1]`), lower case. */
const hostName = (host: string): string => {
  const lower = host.trim().toLowerCase()
  if (lower.startsWith("[")) return lower.slice(0, lower.indexOf("]") + 1)
  const colon = lower.lastIndexOf(":")
  return colon === -1 ? lower : lower.slice(0, colon)
}

/** The `host[:port]` of an origin, or undefined when it is not a web origin (`null`, a file…). */
const originHost = (origin: string): string | undefined => {
  try {
    const url = new URL(origin)
    return url.protocol === "http:" || url.protocol === "https:" ? url.host.toLowerCase() : undefined
  } catch {
    return undefined
  }
}

const forbidden = (message: string) => refusal(403, "Forbidden", message)

const stateChanging = new Set(["POST", "PUT", "PATCH"])

/** Headers every response of the routes carries. */
const baseHeaders = { "x-content-type-options": "nosniff" }

/** What a route set's CORS answers allow, beyond the defaults of the JSON route sets. */
export interface CorsProfile {
  /** The methods a preflight allows. Default `GET, POST, DELETE`. */
  readonly methods?: string | undefined
  /** The request headers a preflight allows. Default `content-type, last-event-id, authorization`. */
  readonly headers?: string | undefined
  /** The response headers a browser may read. Default none beyond the safelisted ones. */
  readonly exposeHeaders?: string | undefined
  /** Whether `POST`/`PUT`/`PATCH` bodies must be JSON. Default true. */
  readonly requireJson?: boolean | undefined
  /** Whether a response may set its own `cache-control` (else every response is `no-store`). Default false. */
  readonly ownCacheControl?: boolean | undefined
}

/** Makes a response `no-store`. */
const noStore = (response: HttpServerResponse.HttpServerResponse) =>
  HttpServerResponse.setHeader(response, "cache-control", "no-store")

/** Adds `cache-control: no-store` to a response that did not set its own. */
const noStoreUnlessSet = (response: HttpServerResponse.HttpServerResponse) =>
  response.headers["cache-control"] === undefined ? noStore(response) : response

/** The guard of one route set. */
export interface Guard {
  /**
   * Runs `handle` when the request passes the checks (see the module header), else answers the refusal; adds the
   * common headers, and the CORS headers for an allowed cross-site origin.
   */
  readonly check: <E, R>(
    request: HttpServerRequest.HttpServerRequest,
    handle: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  ) => Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  /** The answer to a CORS preflight (a route set that routes `OPTIONS` itself). */
  readonly answerPreflight: (
    request: HttpServerRequest.HttpServerRequest
  ) => Effect.Effect<HttpServerResponse.HttpServerResponse>
  /** The route answering CORS preflights under `base`. */
  readonly preflight: (base: string) => Layer.Layer<never, never, HttpRouter.HttpRouter>
}

/**
 * Makes the guard of a route set: its allowed hosts (default: the loopback names) and origins (default: none), and
 * its CORS profile.
 */
export const make = (options: SecurityOptions, profile: CorsProfile = {}): Guard => {
  const hosts = new Set((options.allowedHosts ?? loopbackHosts).map(hostName))
  const anyOrigin = (options.allowedOrigins ?? []).includes("*")
  const origins = new Set((options.allowedOrigins ?? []).map((origin) => originHost(origin) ?? origin.toLowerCase()))
  const requireJson = profile.requireJson ?? true
  const cacheControl = profile.ownCacheControl === true ? noStoreUnlessSet : noStore

  /** The refusal of a request that fails a check, and the cross-site origin it comes from when it is allowed. */
  const inspect = (request: HttpServerRequest.HttpServerRequest) => {
    const host = request.headers.host ?? ""
    if (!hosts.has(hostName(host))) {
      return { refused: forbidden(`this server does not answer for host "${hostName(host)}" (allowedHosts)`) }
    }
    const origin = request.headers.origin
    if (origin === undefined) return {}
    const from = originHost(origin)
    if (from === host.trim().toLowerCase()) return {}
    if (from !== undefined && (anyOrigin || origins.has(from))) return { crossSite: origin }
    return { refused: forbidden(`requests from ${origin} are not allowed (allowedOrigins)`) }
  }

  const exposed = profile.exposeHeaders === undefined ? {} : { "access-control-expose-headers": profile.exposeHeaders }
  const corsHeaders = (origin: string): Record<string, string> =>
    anyOrigin
      ? { "access-control-allow-origin": "*", ...exposed }
      : {
          "access-control-allow-origin": origin,
          "access-control-allow-credentials": "true",
          vary: "origin",
          ...exposed
        }

  const answerPreflight = (request: HttpServerRequest.HttpServerRequest) => {
    const { refused, crossSite } = inspect(request)
    if (refused !== undefined || crossSite === undefined) {
      return Effect.succeed(refused ?? forbidden("no cross-site requests are allowed here (allowedOrigins)"))
    }
    return Effect.succeed(
      HttpServerResponse.empty({
        status: 204,
        headers: {
          ...corsHeaders(crossSite),
          "access-control-allow-methods": profile.methods ?? "GET, POST, DELETE",
          "access-control-allow-headers": profile.headers ?? "content-type, last-event-id, authorization",
          "access-control-max-age": "600"
        }
      })
    )
  }

  return {
    check: (request, handle) => {
      const { refused, crossSite } = inspect(request)
      if (refused !== undefined)
        return Effect.succeed(cacheControl(HttpServerResponse.setHeaders(refused, baseHeaders)))
      if (requireJson && stateChanging.has(request.method) && !isJson(request)) {
        const unsupported = refusal(415, "InvalidInput", "the request must be JSON (content-type: application/json)")
        return Effect.succeed(cacheControl(HttpServerResponse.setHeaders(unsupported, baseHeaders)))
      }
      const headers = crossSite === undefined ? baseHeaders : { ...baseHeaders, ...corsHeaders(crossSite) }
      return Effect.map(handle, (response) => cacheControl(HttpServerResponse.setHeaders(response, headers)))
    },
    answerPreflight,
    preflight: (base) => HttpRouter.add("OPTIONS", under(base, "/*"), answerPreflight)
  }
}

/** Whether the request says its body is JSON. */
export const isJson = (request: HttpServerRequest.HttpServerRequest): boolean =>
  (request.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() === "application/json"
