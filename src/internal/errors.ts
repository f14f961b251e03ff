/**
 * The one place where ioredis failures become `RedisError`s.
 *
 * ioredis reports failures as `ReplyError`s (the server's `-CODE message` line), socket errors (`ECONNREFUSED`…), or
 * plain `Error`s with fixed texts. Everything is classified here, and every message is scrubbed of the secrets the
 * connection knows (passwords), so no error or log can leak them.
 *
 * @internal
 */
import { RedisError, type RedisErrorReason } from "../RedisError.js"

const replyCodeReasons: Readonly<Record<string, RedisErrorReason>> = {
  WRONGPASS: "Auth",
  NOAUTH: "Auth",
  NOPERM: "Auth",
  CROSSSLOT: "CrossSlot",
  READONLY: "ReadOnly",
  LOADING: "Loading",
  CLUSTERDOWN: "ClusterDown",
  TRYAGAIN: "ClusterDown",
  MASTERDOWN: "ClusterDown",
  OOM: "OutOfMemory",
  BUSY: "Busy",
  NOSCRIPT: "Script"
}

const socketCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "ECONNABORTED"
])

const connectionTexts = [
  "Connection is closed",
  "Cluster is ended",
  "Stream isn't writeable",
  "isn't ready and enableOfflineQueue",
  "max retries per request",
  "None of startup nodes is available",
  "Failed to refresh slots cache",
  "Connection is in subscriber mode",
  "All sentinels are unreachable",
  "Redis is already connecting",
  "socket closed"
]

const scriptTexts = ["Error running script", "user_script", "ERR Error compiling script"]

interface ErrorLike {
  readonly message?: unknown
  readonly code?: unknown
  readonly name?: unknown
}

const asErrorLike = (cause: unknown): ErrorLike =>
  typeof cause === "object" && cause !== null ? (cause as ErrorLike) : { message: String(cause) }

/** The leading upper-case word of a Redis reply error (`WRONGTYPE Operation…` → `WRONGTYPE`). */
const replyCode = (message: string): string | undefined => {
  const match = /^([A-Z][A-Z_]+)\b/.exec(message)
  return match?.[1]
}

const reasonOf = (error: ErrorLike, message: string, code: string | undefined): RedisErrorReason => {
  const errno = typeof error.code === "string" ? error.code : undefined
  if (errno === "ETIMEDOUT" || /timed? ?out/i.test(message)) return "Timeout"
  if (errno !== undefined && socketCodes.has(errno)) return "Connection"
  if (connectionTexts.some((text) => message.includes(text))) return "Connection"
  if (error.name === "MaxRetriesPerRequestError" || error.name === "ClusterAllFailedError") return "Connection"
  if (message.includes("Too many Cluster redirections")) return "ClusterDown"
  if (scriptTexts.some((text) => message.includes(text))) return "Script"
  if (code !== undefined && code in replyCodeReasons) return replyCodeReasons[code] as RedisErrorReason
  if (/invalid (username-)?password|AUTH failed/i.test(message)) return "Auth"
  return "Command"
}

/** Replaces every occurrence of each secret in `text` with `<redacted>`. */
export const scrub = (text: string, secrets: ReadonlyArray<string>): string =>
  secrets.reduce((out, secret) => (secret.length === 0 ? out : out.split(secret).join("<redacted>")), text)

/**
 * Turns anything an ioredis call rejected with into a `RedisError` for operation `op`, with secrets scrubbed.
 * A `RedisError` passes through unchanged.
 */
export const classify = (cause: unknown, op: string, secrets: ReadonlyArray<string> = []): RedisError => {
  if (cause instanceof RedisError) return cause
  const error = asErrorLike(cause)
  const raw = typeof error.message === "string" && error.message.length > 0 ? error.message : String(cause)
  const message = scrub(raw, secrets)
  const code = replyCode(message)
  const reason = reasonOf(error, message, code)
  const errno = typeof error.code === "string" ? error.code : undefined
  return new RedisError({ reason, op, message: `${op}: ${message}`, code: code ?? errno })
}
