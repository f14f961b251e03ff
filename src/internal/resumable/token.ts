/**
 * Resume tokens: opaque, URL-safe, versioned, optionally HMAC-SHA256 signed and expiring.
 *
 * `v1.<base64url(payload)>` unsigned, `v1.<base64url(payload)>.<base64url(hmac)>` signed, where the payload is
 * `{ n: stream name, r: run id, iat: issued at (ms), exp?: expiry (ms) }`. With secrets configured, only a token
 * signed by one of them (the first signs; all verify, for rotation) and not expired is accepted, compared in constant
 * time. A token can never name a key outside the stream's layout: name and run id are checked against strict
 * patterns before any key is built.
 *
 * @internal
 */
import { createHmac, timingSafeEqual } from "node:crypto"
import { isSafe } from "../names.js"

/** What a token says. */
export interface TokenPayload {
  readonly name: string
  readonly runId: string
  readonly issuedAt: number
  readonly expiresAt: number | undefined
}

/** Why a token was refused. */
export type TokenProblem = "Malformed" | "BadSignature" | "Unsigned" | "Expired"

const encode = (text: string | Buffer) => Buffer.from(text).toString("base64url")

const sign = (secret: string, body: string) => createHmac("sha256", secret).update(`v1.${body}`).digest()

/** Makes a token; signed with the first secret when there is one. */
export const issue = (payload: TokenPayload, secrets: ReadonlyArray<string>): string => {
  const body = encode(
    JSON.stringify({
      n: payload.name,
      r: payload.runId,
      iat: payload.issuedAt,
      ...(payload.expiresAt === undefined ? {} : { exp: payload.expiresAt })
    })
  )
  const secret = secrets[0]
  return secret === undefined ? `v1.${body}` : `v1.${body}.${encode(sign(secret, body))}`
}

const parsePayload = (body: string): TokenPayload | undefined => {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(body, "base64url").toString("utf8"))
  } catch {
    return undefined
  }
  if (typeof value !== "object" || value === null) return undefined
  const { n, r, iat, exp } = value as Record<string, unknown>
  if (typeof n !== "string" || !isSafe(n) || typeof r !== "string" || !isSafe(r)) return undefined
  if (typeof iat !== "number" || (exp !== undefined && typeof exp !== "number")) return undefined
  return { name: n, runId: r, issuedAt: iat, expiresAt: exp }
}

const signatureMatches = (signature: string, body: string, secrets: ReadonlyArray<string>): boolean => {
  const given = Buffer.from(signature, "base64url")
  let matched = false
  for (const secret of secrets) {
    const expected = sign(secret, body)
    // constant time per secret; every secret is checked so timing does not tell which one matched
    if (given.length === expected.length && timingSafeEqual(given, expected)) matched = true
  }
  return matched
}

/** True for base64url text that decodes and encodes back to itself. */
const isCanonical = (text: string): boolean =>
  /^[A-Za-z0-9_-]+$/.test(text) && Buffer.from(text, "base64url").toString("base64url") === text

/** Reads and checks a token at time `now` (ms). */
export const verify = (
  token: string,
  secrets: ReadonlyArray<string>,
  now: number
): { readonly payload: TokenPayload } | { readonly problem: TokenProblem } => {
  const parts = token.split(".")
  if (parts[0] !== "v1" || parts.length < 2 || parts.length > 3 || token.length > 4096) return { problem: "Malformed" }
  const body = parts[1] as string
  const signature = parts[2]
  // base64url exactly as `issue` writes it: no other characters, no padding, nothing a decoder would skip
  if (!isCanonical(body) || (signature !== undefined && !/^[A-Za-z0-9_-]{43}$/.test(signature))) {
    return { problem: "Malformed" }
  }
  if (secrets.length > 0) {
    if (signature === undefined) return { problem: "Unsigned" }
    if (!signatureMatches(signature, body, secrets)) return { problem: "BadSignature" }
  }
  const payload = parsePayload(body)
  if (payload === undefined) return { problem: "Malformed" }
  if (payload.expiresAt !== undefined && now > payload.expiresAt) return { problem: "Expired" }
  return { payload }
}
