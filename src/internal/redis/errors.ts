/**
 * The one place where ioredis failures become `RedisError`s.
 *
 * ioredis reports failures as `ReplyError`s (the server's `-CODE message` line), socket and TLS errors
 * (`ECONNREFUSED`, `CERT_HAS_EXPIRED`…), or plain `Error`s with fixed texts. The reply code decides first: a script
 * that hit `maxmemory` answers `OOM command not allowed … script: …, on @user_script:6`, which is an out-of-memory
 * condition, not a script bug. Every message is scrubbed of the secrets the connection knows (passwords), so no error
 * or log can leak them.
 *
 * @internal
 */
import * as Reason from "../../RedisError.js"
import { type CallReason, redisError } from "../reasons.js"

const replyCodeReasons: Readonly<Record<string, CallReason>> = {
  WRONGPASS: "Auth",
  NOAUTH: "Auth",
  NOPERM: "Auth",
  CROSSSLOT: "CrossSlot",
  READONLY: "ReadOnly",
  LOADING: "Loading",
  CLUSTERDOWN: "ClusterDown",
  TRYAGAIN: "ClusterDown",
  MASTERDOWN: "ClusterDown",
  NOREPLICAS: "ClusterDown",
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
  "ECONNABORTED",
  // TLS: the handshake failed (a wrong CA, an expired or mismatched certificate, a plain-text server)
  "EPROTO",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "ERR_SSL_WRONG_VERSION_NUMBER"
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
  "socket closed",
  "Client network socket disconnected before secure TLS connection was established"
]

const scriptTexts = ["Error running script", "user_script", "Error compiling script"]

interface ErrorLike {
  readonly message?: unknown
  readonly code?: unknown
  readonly name?: unknown
}

const asErrorLike = (cause: unknown): ErrorLike =>
  typeof cause === "object" && cause !== null ? (cause as ErrorLike) : { message: String(cause) }

/** The leading upper-case word of a Redis reply error (`WRONGTYPE Operation…` → `WRONGTYPE`). */
const replyCode = (message: string): string | undefined => /^([A-Z][A-Z_]+)\b/.exec(message)?.[1]

/** What kind of failure it is: the reply code first, then the socket's code, then ioredis' own texts. */
const reasonOf = (error: ErrorLike, message: string, code: string | undefined): CallReason => {
  const known = code === undefined ? undefined : replyCodeReasons[code]
  if (known !== undefined) return known
  const errno = typeof error.code === "string" ? error.code : undefined
  if (errno === "ETIMEDOUT" || message === "Command timed out") return "Timeout"
  if (errno !== undefined && socketCodes.has(errno)) return "Connection"
  if (connectionTexts.some((text) => message.includes(text))) return "Connection"
  if (error.name === "MaxRetriesPerRequestError" || error.name === "ClusterAllFailedError") return "Connection"
  if (message.includes("Too many Cluster redirections")) return "ClusterDown"
  // a script that reaches a key it did not declare, in another slot
  if (message.includes("attempted to access a non local key")) return "CrossSlot"
  // a reply with a code of its own (WRONGTYPE, NOGROUP…) is the command's fault, even from inside a script
  if (code !== undefined && code !== "ERR") return "Command"
  if (scriptTexts.some((text) => message.includes(text))) return "Script"
  if (/invalid (username-)?password|AUTH failed/i.test(message)) return "Auth"
  return "Command"
}

/** Failures of calls that were never sent: the connection was down, and the client refused to queue them. */
const unsentTexts = ["enableOfflineQueue", "isn't writeable"]

/**
 * True when a failed call may still have been applied: its reply was lost (a timeout, a connection that dropped while
 * the call was on its way), as opposed to a refusal by the server or a call that was never sent.
 */
export const mayHaveRun = (error: Reason.RedisError): boolean =>
  error.reason._tag === "Timeout" ||
  (error.reason._tag === "Connection" && !unsentTexts.some((text) => error.reason.message.includes(text)))

/** Replaces every occurrence of each secret in `text` with `<redacted>`. */
export const scrub = (text: string, secrets: ReadonlyArray<string>): string =>
  secrets.reduce((out, secret) => (secret.length === 0 ? out : out.split(secret).join("<redacted>")), text)

/**
 * Turns anything an ioredis call rejected with into a `RedisError` for operation `op`, with secrets scrubbed.
 * A `RedisError` passes through unchanged.
 */
export const classify = (cause: unknown, op: string, secrets: ReadonlyArray<string> = []): Reason.RedisError => {
  if (cause instanceof Reason.RedisError) return cause
  const error = asErrorLike(cause)
  const raw = typeof error.message === "string" && error.message.length > 0 ? error.message : String(cause)
  const message = scrub(raw, secrets)
  const code = replyCode(message)
  const errno = typeof error.code === "string" ? error.code : undefined
  return redisError(op, reasonOf(error, message, code), message, code ?? errno)
}
