/**
 * The Lua scripts of resumable runs. Every state change of a run is one script, so fencing, cancellation, the
 * terminal marker, TTLs and the live announcement happen atomically. Times come from the server (`TIME`), so clocks
 * of different instances never disagree about a heartbeat.
 *
 * Announcement format (pub/sub message on the run's channel): one record per entry,
 * `<seq> <entry id> <c|t>\n<payload>\n`, where `c` records carry the chunk's `data` field and `t` records the
 * terminal JSON. Payloads are JSON and contain no raw newline.
 *
 * @internal
 */
import { make as script } from "../../RedisScript.js"

/** Server time in milliseconds, as a string (Lua numbers would print in exponent form). */
const nowMs = `
local function now_ms()
  local t = redis.call('TIME')
  return t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
end
`

/** Reply of a state check: an error code and, for FINISHED, the status. */
export type Refusal = readonly ["GONE"] | readonly ["FENCED"] | readonly ["FINISHED", string] | readonly ["RUNNING"]

/** Reply of an append that wrote its batch (or had written it): the entry ids, separated by spaces. */
export type Written = readonly ["WRITTEN", string]

/** Reply of an append to a run that has fewer chunks than the writer wrote (a failover lost some): how many it has. */
export type Behind = readonly ["BEHIND", number]

const refusalCodes = new Set(["GONE", "FENCED", "RUNNING", "FINISHED"])

/** True when a script's reply is a refusal rather than its result. */
export const isRefusal = (reply: ReadonlyArray<unknown>): reply is Refusal =>
  typeof reply[0] === "string" && refusalCodes.has(reply[0])

/** True when an append's reply says the run is behind the writer. */
export const isBehind = (reply: ReadonlyArray<unknown>): reply is Behind => reply[0] === "BEHIND"

/**
 * Claims a run for a producer.
 * KEYS[1] meta; ARGV[1] producer id, ARGV[2] lifetime ms, ARGV[3] stale-after ms.
 * Reply: `{generation, chunks}` (new run: 1, 0; takeover of a run whose producer is stale: previous + 1 and the chunks
 * written so far, where the new producer's writes continue), or a refusal:
 * `{"RUNNING"}` (a live producer holds it), `{"FINISHED", status}`.
 */
export const claim = script<
  [meta: string],
  [producer: string, lifetimeMs: number, staleMs: number],
  [generation: number, chunks: number] | Refusal
>()(
  "ResumableStream.claim",
  `${nowMs}
local now = now_ms()
local status = redis.call('HGET', KEYS[1], 'status')
local generation = 1
if status then
  if status ~= 'running' then return {'FINISHED', status} end
  local heartbeat = tonumber(redis.call('HGET', KEYS[1], 'heartbeat') or '0')
  if tonumber(now) - heartbeat <= tonumber(ARGV[3]) then return {'RUNNING'} end
  generation = tonumber(redis.call('HGET', KEYS[1], 'generation')) + 1
else
  redis.call('HSET', KEYS[1], 'createdAt', now, 'chunks', 0)
end
redis.call('HSET', KEYS[1], 'status', 'running', 'generation', generation, 'producer', ARGV[1], 'heartbeat', now)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {generation, tonumber(redis.call('HGET', KEYS[1], 'chunks'))}
`
)

/**
 * Appends a batch of chunks, if the caller's generation still owns the running run. Idempotent: ARGV[4] is the
 * sequence number of the batch's first chunk, and a batch already written (a retry after a lost reply) is answered
 * with its ids, not written again. A run with fewer chunks than ARGV[4] - 1 lost writes in a failover: the reply says
 * how many it has (`{"BEHIND", chunks}`), for the writer to write the rest again.
 * KEYS[1] stream, KEYS[2] meta; ARGV[1] generation, ARGV[2] max length (MAXLEN ~), ARGV[3] channel, ARGV[4] first
 * sequence number, ARGV[5..] data.
 * Reply: `WRITTEN` and the entry ids separated by spaces (one string: cheaper to read than an array of them),
 * `BEHIND chunks`, or a refusal (`GONE`, `FENCED`, `FINISHED status`).
 */
export const append = script<
  [stream: string, meta: string],
  [generation: string, maxLength: number, channel: string, firstSeq: number, ...data: Array<string>],
  Written | Behind | Refusal
>()(
  "ResumableStream.append",
  `
local m = redis.call('HMGET', KEYS[2], 'status', 'generation', 'chunks')
if not m[1] then return {'GONE'} end
if m[2] ~= ARGV[1] then return {'FENCED'} end
local count = #ARGV - 4
local last = tonumber(m[3])
local first = tonumber(ARGV[4])
if last == first - 1 + count then
  local entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', count)
  local ids = {}
  for i = #entries, 1, -1 do ids[#ids + 1] = entries[i][1] end
  return {'WRITTEN', table.concat(ids, ' ')}
end
if m[1] ~= 'running' then return {'FINISHED', m[1]} end
if last < first - 1 then return {'BEHIND', last} end
if last ~= first - 1 then return {'FENCED'} end
local seq = last
local ids = {}
local message = {}
for i = 5, #ARGV do
  seq = seq + 1
  local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[i], 'seq', seq)
  ids[#ids + 1] = id
  message[#message + 1] = seq .. ' ' .. id .. ' c\\n' .. ARGV[i] .. '\\n'
end
redis.call('HSET', KEYS[2], 'chunks', seq)
if last == 0 then redis.call('PEXPIRE', KEYS[1], redis.call('PTTL', KEYS[2])) end
redis.call('PUBLISH', ARGV[3], table.concat(message))
return {'WRITTEN', table.concat(ids, ' ')}
`
)

/**
 * Ends a running run with a terminal entry (`end: "true"`, `status`, `terminal` JSON) and sets the TTL of its keys.
 * KEYS[1] stream, KEYS[2] meta; ARGV[1] generation ("" = any: a cancel), ARGV[2] status, ARGV[3] terminal JSON,
 * ARGV[4] ttl ms, ARGV[5] channel.
 * Reply: `{entry id}`, or a refusal (`GONE`, `FENCED`, `FINISHED status`).
 */
export const finish = script<
  [stream: string, meta: string],
  [generation: string, status: string, terminal: string, ttlMs: number, channel: string],
  [string] | Refusal
>()(
  "ResumableStream.finish",
  `${nowMs}
local m = redis.call('HMGET', KEYS[2], 'status', 'generation', 'chunks')
if not m[1] then return {'GONE'} end
if ARGV[1] ~= '' and m[2] ~= ARGV[1] then return {'FENCED'} end
if m[1] ~= 'running' then return {'FINISHED', m[1]} end
local seq = tonumber(m[3]) + 1
local id = redis.call('XADD', KEYS[1], '*', 'end', 'true', 'status', ARGV[2], 'terminal', ARGV[3], 'seq', seq)
redis.call('HSET', KEYS[2], 'status', ARGV[2], 'chunks', seq, 'finishedAt', now_ms())
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[5], seq .. ' ' .. id .. ' t\\n' .. ARGV[3] .. '\\n')
return {id}
`
)

/**
 * Refreshes the heartbeat of a run the caller's generation owns.
 * KEYS[1] meta; ARGV[1] generation. Reply: "running", "GONE", "FENCED", or the terminal status.
 */
export const heartbeat = script<[meta: string], [generation: string], string>()(
  "ResumableStream.heartbeat",
  `${nowMs}
local m = redis.call('HMGET', KEYS[1], 'status', 'generation')
if not m[1] then return 'GONE' end
if m[2] ~= ARGV[1] then return 'FENCED' end
if m[1] ~= 'running' then return m[1] end
redis.call('HSET', KEYS[1], 'heartbeat', now_ms())
return 'running'
`
)

/**
 * What a reader needs to judge a quiet run.
 * KEYS[1] meta. Reply: `{}` when the run is gone, else `{status, heartbeat age ms, chunks}`.
 */
export const status = script<[meta: string], [], [] | [string, string, string]>()(
  "ResumableStream.status",
  `${nowMs}
local m = redis.call('HMGET', KEYS[1], 'status', 'heartbeat', 'chunks')
if not m[1] then return {} end
return {m[1], tostring(tonumber(now_ms()) - tonumber(m[2] or '0')), m[3] or '0'}
`
)

/**
 * Makes `ARGV[1]` the active run of a key, unless another run holds it: KEYS[1] the active key; ARGV[1] run id,
 * ARGV[2] ttl ms, ARGV[3] the run id it may replace (one found finished), or "". Reply: nil when claimed, else the run
 * id that holds the key.
 */
export const claimActive = script<[active: string], [runId: string, ttlMs: number, replaces: string], string | null>()(
  "ResumableStream.claimActive",
  `
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[3] then return current end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false`
)

/** Clears the active run of a key if it is still `ARGV[1]`: KEYS[1] the active key. Reply: 1 when cleared, else 0. */
export const releaseActive = script<[active: string], [runId: string], number>()(
  "ResumableStream.releaseActive",
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`
)
