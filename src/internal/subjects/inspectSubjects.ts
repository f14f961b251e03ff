/**
 * Counting the subjects of `SubjectStorage` under a key prefix (hashes `s:{prefix}{subject}`): a SCAN of bounded cost
 * per request, continued from a cursor; the caller adds the pages' counts up until the cursor comes back `null`.
 *
 * @internal
 */
import { Effect } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import type { RedisError } from "../../RedisError.js"
import { globLiteral } from "../replies.js"

/** The `SCAN MATCH` pattern of the subjects' hashes under `prefix`. */
export const subjectPattern = (prefix: string): string => `s:${globLiteral(prefix)}*`

/** The subjects found in one bounded stretch of the scan, and where the next stretch starts. */
export const countSubjects = (
  redis: RedisClient.Service,
  prefix: string,
  scan: Omit<RedisClient.ScanOptions, "match" | "type" | "limit">,
  cursor: string | undefined
): Effect.Effect<{ readonly count: number; readonly cursor: string | null }, RedisError> =>
  Effect.map(
    redis.scan({ ...scan, limit: Number.POSITIVE_INFINITY, match: subjectPattern(prefix), type: "hash" }, cursor),
    (page) => ({ count: page.keys.length, cursor: page.cursor })
  )
