/**
 * Stream cursors (the protocol's section 10.1): the number of the 20-second interval since 2024-10-09T00:00:00Z,
 * never at or below the cursor the client echoed (then that one plus a random 1 s–1 h, in intervals), so responses
 * cached by a CDN under one cursor are never served again for the next request.
 *
 * @internal
 */

const epochMs = Date.UTC(2024, 9, 9)
const intervalMs = 20_000
const maxJitterSeconds = 3600

/** The cursor of a live response, given the one the client sent (if any). */
export const next = (clientCursor: string | undefined, nowMs: number = Date.now()): string => {
  const current = Math.floor((nowMs - epochMs) / intervalMs)
  const echoed = clientCursor === undefined ? Number.NaN : Number.parseInt(clientCursor, 10)
  if (!Number.isSafeInteger(echoed) || echoed < current) return String(current)
  const jitterSeconds = 1 + Math.floor(Math.random() * maxJitterSeconds)
  return String(echoed + Math.max(1, Math.ceil(jitterSeconds / (intervalMs / 1000))))
}
