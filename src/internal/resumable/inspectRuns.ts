/**
 * The runs of `ResumableStream` under a key prefix: found by SCAN (`{prefix}{name}:{runId}:meta`, type hash), each
 * read with one script (its meta hash, TTL and the server's time) per node in one pipeline; and their cancel.
 *
 * A cancel goes through the `ResumableStream` service when one is given and accepts the run (a token the inspector
 * issues, signed with the secrets it was given): a producer in this process then stops at once. Otherwise (no
 * service, or it refuses the token or does not know the stream) it runs the library's own `finish` script with the
 * `cancelled` status, as `ResumableStream.cancel` does: readers get `Cancelled` at once, and the producer, wherever it
 * runs, stops at its next heartbeat.
 *
 * @internal
 */
import { Duration, Effect, Result } from "effect"
import type { InspectedRun } from "../../Inspector.js"
import type * as RedisClient from "../../RedisClient.js"
import type { RedisError } from "../../RedisError.js"
import type * as ResumableStream from "../../ResumableStream.js"
import { isSafe } from "../names.js"
import { runKeys } from "./keys.js"
import * as ResumableScripts from "./scripts.js"
import * as Token from "./token.js"
import type { Terminal } from "./wire.js"
import { fieldsOf, globLiteral, numberOf, regexLiteral, textOf } from "../replies.js"
import { make as script } from "../../RedisScript.js"

/**
 * A resumable run's meta hash, its TTL and the server's time (heartbeats are server times).
 * KEYS[1] meta. Reply: `{}` when the run is gone, else `{now ms, PTTL ms, field, value, …}`.
 */
export const runInfo = script<[meta: string], [], Array<string | number>>()(
  "Inspector.runInfo",
  `local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return {} end
local t = redis.call('TIME')
local reply = {t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000)), redis.call('PTTL', KEYS[1])}
for _, value in ipairs(fields) do reply[#reply + 1] = value end
return reply`
)

/** The `SCAN MATCH` pattern of the runs' meta hashes under `prefix`. */
export const runPattern = (prefix: string): string => `${globLiteral(prefix)}*:{*}:meta`

/** The stream name and run id of a scanned meta key; undefined for other keys. */
export const runOfKey = (prefix: string) => {
  const pattern = new RegExp(`^${regexLiteral(prefix)}([A-Za-z0-9_.:-]+):\\{([A-Za-z0-9_.:-]+)\\}:meta$`)
  return (key: string): { readonly stream: string; readonly runId: string } | undefined => {
    const match = pattern.exec(key)
    return match === null ? undefined : { stream: match[1] as string, runId: match[2] as string }
  }
}

const timeOf = (value: unknown): string | null => {
  const ms = numberOf(value, Number.NaN)
  return Number.isFinite(ms) && ms > 0 ? new Date(ms).toISOString() : null
}

/** A run as the inspector shows it, from its meta reply (`{now, pttl, field, value, …}`). */
const runOf = (
  stream: string,
  runId: string,
  reply: ReadonlyArray<string | number>,
  producerTimeoutMs: number
): InspectedRun => {
  const now = numberOf(reply[0])
  const ttl = numberOf(reply[1], -1)
  const meta = fieldsOf(reply.slice(2))
  const status = textOf(meta.get("status"), "running")
  const heartbeat = numberOf(meta.get("heartbeat"), Number.NaN)
  const heartbeatAgeMs = status === "running" && Number.isFinite(heartbeat) ? Math.max(0, now - heartbeat) : null
  const state = status === "running" && (heartbeatAgeMs ?? Infinity) > producerTimeoutMs ? "lost" : status
  return {
    stream,
    runId,
    state: state as ResumableStream.RunState,
    status,
    chunks: numberOf(meta.get("chunks")),
    generation: numberOf(meta.get("generation")),
    producer: textOf(meta.get("producer")),
    heartbeatAgeMs,
    createdAt: timeOf(meta.get("createdAt")),
    finishedAt: timeOf(meta.get("finishedAt")),
    expiresInMs: ttl >= 0 ? ttl : null
  }
}

/** Running runs first, then the newest. */
const order = (a: InspectedRun, b: InspectedRun) =>
  Number(b.state === "running") - Number(a.state === "running") ||
  (b.createdAt ?? "").localeCompare(a.createdAt ?? "") ||
  a.runId.localeCompare(b.runId)

/** One page of runs: scanned, then read (one pipeline of scripts per node). */
export const listRuns = (
  redis: RedisClient.Service,
  prefix: string,
  producerTimeout: Duration.Duration,
  scan: Omit<RedisClient.ScanOptions, "match" | "type">,
  cursor: string | undefined
): Effect.Effect<{ readonly runs: ReadonlyArray<InspectedRun>; readonly cursor: string | null }, RedisError> =>
  Effect.gen(function* () {
    const page = yield* redis.scan({ ...scan, match: runPattern(prefix), type: "hash" }, cursor)
    const parse = runOfKey(prefix)
    const found = page.keys.flatMap((key) => {
      const run = parse(key)
      return run === undefined ? [] : [{ ...run, key }]
    })
    const replies = yield* redis.evalMany(
      runInfo,
      found.map(({ key }) => [[key], []] as const)
    )
    const timeoutMs = Duration.toMillis(producerTimeout)
    const runs: Array<InspectedRun> = []
    for (const [index, reply] of replies.entries()) {
      if (Result.isFailure(reply)) return yield* Effect.fail(reply.failure)
      const run = found[index]
      // gone since the scan
      if (run === undefined || reply.success.length === 0) continue
      runs.push(runOf(run.stream, run.runId, reply.success, timeoutMs))
    }
    return { runs: runs.sort(order), cursor: page.cursor }
  })

/** How a cancel ended: the run's final status, or `gone` when its data is not there (expired, or never was). */
export type CancelOutcome = ResumableStream.RunStatus | "gone"

/** What a cancel needs besides the run. */
export interface CancelOptions {
  readonly redis: RedisClient.Service
  readonly prefix: string
  /** How long the cancelled run stays readable (the finish script's TTL). */
  readonly completedTtl: Duration.Duration
  /** The `ResumableStream` service of this process, if any, and the secrets its tokens are signed with. */
  readonly service: ResumableStream.Service | undefined
  readonly secrets: ReadonlyArray<string>
}

/** Cancels run `runId` of stream `stream` (see the module header). */
export const cancelRun = (
  options: CancelOptions,
  stream: string,
  runId: string,
  reason: string | undefined
): Effect.Effect<CancelOutcome, RedisError> =>
  Effect.gen(function* () {
    if (!isSafe(stream) || !isSafe(runId)) return "gone" as const
    if (options.service !== undefined) {
      const token = Token.issue(
        {
          name: stream,
          runId,
          issuedAt: Date.now(),
          expiresAt: options.secrets.length === 0 ? undefined : Date.now() + 60_000
        },
        options.secrets
      )
      const viaService = yield* Effect.result(options.service.cancel(token, reason))
      if (Result.isSuccess(viaService)) return viaService.success
      // a Redis failure would fail the script too; anything else (a token it refuses, a stream it does not know,
      // another key prefix): the script decides
      if (viaService.failure.reason._tag === "Redis") {
        return yield* Effect.fail(viaService.failure.reason.cause)
      }
    }
    const keys = runKeys(options.prefix, stream, runId)
    const terminal: Terminal = { status: "cancelled", ...(reason === undefined ? {} : { reason }) }
    const reply = yield* options.redis.eval(
      ResumableScripts.finish,
      [keys.stream, keys.meta],
      ["", "cancelled", JSON.stringify(terminal), Duration.toMillis(options.completedTtl), keys.channel]
    )
    if (!ResumableScripts.isRefusal(reply)) return "cancelled" as const
    if (reply[0] === "FINISHED") return reply[1] as ResumableStream.RunStatus
    return "gone" as const
  })
