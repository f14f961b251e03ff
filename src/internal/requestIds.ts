/**
 * Ids for idempotent writes: unique across processes and restarts, and cheaper than a UUID per call (a random prefix
 * made once per process, then a counter).
 *
 * @internal
 */
import { randomBytes } from "node:crypto"

const processPrefix = randomBytes(12).toString("base64url")
let counter = 0

/** A new id, never handed out before by any process (96 random bits per process, then a counter). */
export const next = (): string => `${processPrefix}.${(counter++).toString(36)}`
