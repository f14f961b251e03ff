/**
 * The protocol's request headers, read and checked: a malformed one is a message for a 400, never a guess.
 *
 * @internal
 */
import type { HttpServerRequest } from "effect/http"
import type { Producer } from "../../DurableStreams.js"

/** A header's value (a repeated one joined by `, `), if present. */
export const header = (request: HttpServerRequest.HttpServerRequest, name: string): string | undefined => {
  const value = request.headers[name]
  return value === undefined ? undefined : String(value)
}

/** A non-negative decimal integer without sign, leading zeros or exponent, at most 2^53 − 1. */
const integer = /^(0|[1-9]\d{0,15})$/

/** Reads a header that must be such an integer: undefined when absent, a message when malformed. */
export const integerHeader = (
  request: HttpServerRequest.HttpServerRequest,
  name: string
): number | undefined | { readonly invalid: string } => {
  const value = header(request, name)
  if (value === undefined) return undefined
  if (!integer.test(value) || !Number.isSafeInteger(Number(value))) {
    return { invalid: `${name} must be a non-negative integer, got "${value}"` }
  }
  return Number(value)
}

/** Whether `Stream-Closed` says `true` (any case); every other value counts as absent. */
export const closedHeader = (request: HttpServerRequest.HttpServerRequest): boolean =>
  header(request, "stream-closed")?.toLowerCase() === "true"

const rfc3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/

/** Reads `Stream-Expires-At`: undefined when absent, a message when not RFC 3339. */
export const expiresAtHeader = (
  request: HttpServerRequest.HttpServerRequest
): Date | undefined | { readonly invalid: string } => {
  const value = header(request, "stream-expires-at")
  if (value === undefined) return undefined
  const time = Date.parse(value)
  return rfc3339.test(value) && !Number.isNaN(time)
    ? new Date(time)
    : { invalid: `Stream-Expires-At must be an RFC 3339 timestamp, got "${value}"` }
}

/** Reads the producer headers: none, all three valid, or a message. */
export const producerHeaders = (
  request: HttpServerRequest.HttpServerRequest
): Producer | undefined | { readonly invalid: string } => {
  const id = header(request, "producer-id")
  const epoch = integerHeader(request, "producer-epoch")
  const seq = integerHeader(request, "producer-seq")
  if (id === undefined && epoch === undefined && seq === undefined) return undefined
  if (id === undefined || epoch === undefined || seq === undefined) {
    return { invalid: "Producer-Id, Producer-Epoch and Producer-Seq go together" }
  }
  if (typeof epoch === "object") return epoch
  if (typeof seq === "object") return seq
  if (id === "") return { invalid: "Producer-Id must not be empty" }
  return { id, epoch, seq }
}

/** Whether a parsed header is a malformed one. */
export const isInvalid = (value: unknown): value is { readonly invalid: string } =>
  typeof value === "object" && value !== null && "invalid" in value
