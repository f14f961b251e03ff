/**
 * The Lua scripts of Durable Streams. A stream is four keys under one hash tag (see `keys.ts`), passed in this order
 * as KEYS to every script of a stream: its metadata hash, its Redis stream of entries (the entry ending at position `p`
 * has id `p-0`), its producers' hash and the hash of the forks referencing it. Every write is
 * one script, so the checks of the protocol (closed, content type, `Stream-Seq`, producer epoch and sequence) and the
 * write they guard are atomic, whichever instance runs them; each write that moves the tail announces the new tail on
 * the stream's channel.
 *
 * Metadata fields: `ct` content type as created, `mt` its media type (compared), `ttl` seconds, `exp` expiry (ms since
 * the epoch) and `expAt` as given, `tail` position, `closed`, `closer` (the producer request that closed it), `seq`
 * last `Stream-Seq`, `id` the stream's incarnation (for ETags), `src`/`fo` the source and offset of a fork,
 * `gone` soft-deleted. The forks referencing a stream are in its `forks` hash.
 *
 * @internal
 */
import { make as script } from "../../RedisScript.js"

/** Keys of one stream: metadata, entries, producers, forks referencing it. */
type StreamKeys = [meta: string, data: string, producers: string, forks: string]

/** Resets the sliding TTL of a stream's keys (no-op without one). */
const touch = `
local function expire_keys(command, value)
  for i = 1, 4 do redis.call(command, KEYS[i], value) end
end
local function touch(ttl)
  if ttl and ttl ~= '' then expire_keys('PEXPIRE', tonumber(ttl) * 1000) end
end
local function expire_at(exp)
  if exp and exp ~= '' then expire_keys('PEXPIREAT', exp) end
end
`

/**
 * Appends items at the tail (`json`: each counts 1, else its bytes); returns the new tail. `retain` keeps the last
 * `keep` entries ("": all), recording in `first` where the kept data starts.
 */
const write = `
local function retain(json, keep)
  if keep == '' or redis.call('XLEN', KEYS[2]) <= tonumber(keep) then return end
  redis.call('XTRIM', KEYS[2], 'MAXLEN', tonumber(keep))
  local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
  local ends = tonumber(string.match(oldest[1], '^(%d+)'))
  redis.call('HSET', KEYS[1], 'first', json and ends - 1 or ends - #oldest[2][2])
end
local function write(tail, json, first, last)
  for i = first, last do
    local item = ARGV[i]
    if json then tail = tail + 1 else tail = tail + #item end
    redis.call('XADD', KEYS[2], string.format('%d-0', tail), 'd', item)
  end
  return tail
end
`

/**
 * Creates a stream, or finds it as asked (idempotent `PUT`).
 * KEYS meta, data, producers, forks; ARGV[1] incarnation id, ARGV[2] content type, ARGV[3] media type, ARGV[4] ttl s or
 * "", ARGV[5] expiry ms or "", ARGV[6] expiry as given, ARGV[7] "1" to create closed, ARGV[8] "1" for JSON,
 * ARGV[9] fork source or "", ARGV[10] fork offset as asked or "", ARGV[11] the fork's start position (0 when not a
 * fork), ARGV[12] where its data starts (a fork of a trimmed source: the source's first kept position), ARGV[13] how
 * many entries to keep ("": all), ARGV[14] how many entries are copied from the source, ARGV[15…] the items: first the
 * copied ones as `position, item` pairs, then the stream's own.
 * Reply: `{"created"|"exists", tail, closed}`, `{"conflict"}` (other configuration), `{"gone"}` (soft-deleted path).
 */
export const create = script<
  StreamKeys,
  [
    id: string,
    contentType: string,
    mediaType: string,
    ttl: string,
    expiresMs: string,
    expiresAt: string,
    closed: string,
    json: string,
    source: string,
    forkOffset: string,
    forkPosition: number,
    first: number,
    keep: string,
    copied: number,
    ...items: Array<string | Buffer>
  ],
  readonly ["created" | "exists", number, string] | readonly ["conflict" | "gone"]
>()(
  "DurableStreams.create",
  `${touch}${write}
local m = redis.call('HMGET', KEYS[1], 'mt', 'ttl', 'expAt', 'closed', 'tail', 'gone', 'src', 'fo')
if m[5] then
  if m[6] then return {'gone'} end
  if m[1] == ARGV[3] and (m[2] or '') == ARGV[4] and (m[3] or '') == ARGV[6] and (m[4] or '') == ARGV[7]
    and (m[7] or '') == ARGV[9] and (m[8] or '') == ARGV[10] then
    return {'exists', tonumber(m[5]), m[4] or ''}
  end
  return {'conflict'}
end
-- a new incarnation: nothing of an earlier one under this name (expired, deleted) may show through
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
local copied = tonumber(ARGV[14])
for i = 0, copied - 1 do
  redis.call('XADD', KEYS[2], ARGV[15 + 2 * i] .. '-0', 'd', ARGV[16 + 2 * i])
end
local tail = write(tonumber(ARGV[11]), ARGV[8] == '1', 15 + 2 * copied, #ARGV)
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'ct', ARGV[2], 'mt', ARGV[3], 'tail', tail, 'first', ARGV[12])
retain(ARGV[8] == '1', ARGV[13])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'ttl', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'exp', ARGV[5], 'expAt', ARGV[6]) end
if ARGV[7] == '1' then redis.call('HSET', KEYS[1], 'closed', '1') end
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'src', ARGV[9], 'fo', ARGV[10]) end
touch(ARGV[4])
expire_at(ARGV[5])
return {'created', tail, ARGV[7]}
`
)

/** Byte-wise `a <= b` (Lua's `<=` on strings follows the server's locale). */
const atMost = `
local function at_most(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a <= #b
end
`

/** What an append did, or why it was refused (see {@link append}). */
export type AppendReply =
  | readonly ["ok" | "duplicate", tail: number, closed: string, epoch: string, seq: string]
  | readonly ["closed", tail: number]
  | readonly ["stale", epoch: string]
  | readonly ["gap", expected: string, received: string]
  | readonly ["notfound" | "gone" | "contentType" | "streamSeq" | "epochStart"]

/**
 * Appends to a stream and/or closes it, checking in the protocol's order: closed (a retry of the request that closed
 * it is a duplicate), content type, producer epoch and sequence, `Stream-Seq`.
 * KEYS meta, data, producers, forks; ARGV[1] media type of the body ("" when empty), ARGV[2] `Stream-Seq` or "", ARGV[3]
 * producer id or "", ARGV[4] epoch, ARGV[5] producer seq, ARGV[6] "1" to close, ARGV[7] channel, ARGV[8] how many
 * entries to keep ("": all), ARGV[9…] items.
 * Reply: see {@link AppendReply}.
 */
export const append = script<
  StreamKeys,
  [
    mediaType: string,
    streamSeq: string,
    producer: string,
    epoch: string,
    producerSeq: string,
    close: string,
    channel: string,
    keep: string,
    ...items: Array<string | Buffer>
  ],
  AppendReply
>()(
  "DurableStreams.append",
  `${touch}${write}${atMost}
local m = redis.call('HMGET', KEYS[1], 'mt', 'ttl', 'tail', 'closed', 'closer', 'seq', 'gone', 'exp')
if not m[3] then return {'notfound'} end
if m[7] then return {'gone'} end
local tail = tonumber(m[3])
local pid = ARGV[3]
local request = pid .. ' ' .. ARGV[4] .. ' ' .. ARGV[5]
local has_items = #ARGV >= 9
if m[4] then
  if pid ~= '' and m[5] == request then return {'duplicate', tail, '1', ARGV[4], ARGV[5]} end
  if not has_items and ARGV[6] == '1' then return {'duplicate', tail, '1', ARGV[4], ARGV[5]} end
  return {'closed', tail}
end
if has_items and ARGV[1] ~= m[1] then return {'contentType'} end
if pid ~= '' then
  local epoch, seq = tonumber(ARGV[4]), tonumber(ARGV[5])
  local state = redis.call('HGET', KEYS[3], pid)
  if state then
    local space = string.find(state, ' ')
    local known_epoch_text = string.sub(state, 1, space - 1)
    local known_epoch, last = tonumber(known_epoch_text), tonumber(string.sub(state, space + 1))
    if epoch < known_epoch then return {'stale', known_epoch_text} end
    if epoch == known_epoch then
      if seq <= last then return {'duplicate', tail, m[4] or '', ARGV[4], string.sub(state, space + 1)} end
      if seq > last + 1 then return {'gap', string.format('%.0f', last + 1), ARGV[5]} end
    elseif seq ~= 0 then
      return {'epochStart'}
    end
  elseif seq ~= 0 then
    return {'gap', '0', ARGV[5]}
  end
end
if ARGV[2] ~= '' then
  if m[6] and at_most(ARGV[2], m[6]) then return {'streamSeq'} end
  redis.call('HSET', KEYS[1], 'seq', ARGV[2])
end
local moved = has_items
tail = write(tail, m[1] == 'application/json', 9, #ARGV)
redis.call('HSET', KEYS[1], 'tail', tail)
retain(m[1] == 'application/json', ARGV[8])
if pid ~= '' then redis.call('HSET', KEYS[3], pid, ARGV[4] .. ' ' .. ARGV[5]) end
local closed = m[4] or ''
if ARGV[6] == '1' then
  redis.call('HSET', KEYS[1], 'closed', '1', 'closer', request)
  closed = '1'
  moved = true
end
touch(m[2])
-- keys this write created (the first entry, a producer's state) expire with the stream
expire_at(m[8])
if moved then redis.call('PUBLISH', ARGV[7], tail) end
return {'ok', tail, closed, ARGV[4], ARGV[5]}
`
)

/** A stream's metadata as a read finds it (see {@link read}). */
export type ReadHead = readonly [
  status: "ok",
  contentType: string,
  tail: number,
  closed: string,
  ttl: string,
  expiresAt: string,
  id: string,
  first: number
]

/**
 * Reads a stream's metadata and its entries after an entry id, as many as fit `maxBytes` (at least one), and resets
 * its sliding TTL when asked.
 * KEYS meta, data, producers, forks; ARGV[1] entry id to read after, ARGV[2] max bytes, ARGV[3] max entries (0: none), ARGV[4]
 * "1" to reset the TTL, ARGV[5] "start" for a read from the start (then from the first position kept), "now" for one
 * at the tail (metadata only), "" for a read after ARGV[1] (refused when that is before the first position kept).
 * Reply: `{"ok", content type, tail, closed, ttl, expires at, id, first position kept, [entry id, bytes]…}`,
 * `{"notfound"}`, `{"gone"}`, `{"trimmed", first}` (the position read from is no longer kept).
 */
export const read = script<
  StreamKeys,
  [after: string, maxBytes: number, maxEntries: number, touch: string, from: "start" | "now" | ""],
  readonly [...ReadHead, ...Array<Buffer>] | readonly ["notfound" | "gone"] | readonly ["trimmed", number]
>()(
  "DurableStreams.read",
  `${touch}
local m = redis.call('HMGET', KEYS[1], 'ct', 'tail', 'closed', 'ttl', 'expAt', 'id', 'gone', 'first')
if not m[2] then return {'notfound'} end
if m[7] then return {'gone'} end
local first = tonumber(m[8] or '0')
local from = '(' .. ARGV[1]
if ARGV[5] == 'start' then
  from = '(' .. string.format('%d-0', first)
elseif ARGV[5] == '' and tonumber(string.match(ARGV[1], '^(%d+)')) < first then
  return {'trimmed', first}
end
if ARGV[4] == '1' then touch(m[4]) end
local reply = {'ok', m[1], tonumber(m[2]), m[3] or '', m[4] or '', m[5] or '', m[6], first}
local remaining = tonumber(ARGV[3])
local budget = tonumber(ARGV[2])
-- in growing batches, so that a page of a few large entries never pulls many more into the script
local batch = 8
while remaining > 0 do
  local entries = redis.call('XRANGE', KEYS[2], from, '+', 'COUNT', math.min(batch, remaining))
  for _, entry in ipairs(entries) do
    local item = entry[2][2]
    if #reply > 8 and #item > budget then return reply end
    budget = budget - #item
    reply[#reply + 1] = entry[1]
    reply[#reply + 1] = item
  end
  if #entries < math.min(batch, remaining) then break end
  remaining = remaining - #entries
  from = '(' .. entries[#entries][1]
  batch = math.min(batch * 2, 256)
end
return reply
`
)

/**
 * Deletes a stream: entirely, or, while forks reference it, soft (its data gone, its metadata kept as a tombstone
 * answering 410 until the last fork is deleted).
 * KEYS meta, data, producers, forks; ARGV[1] channel.
 * Reply: `{"deleted", source or ""}` (the caller releases the source's reference), `{"soft"}`, `{"notfound"}`,
 * `{"gone", source or ""}` (soft-deleted already; when no fork references it any more, it is collected now, and its
 * source is named for the caller to release).
 */
export const remove = script<
  StreamKeys,
  [channel: string],
  readonly ["deleted" | "gone", string] | readonly ["soft" | "notfound"]
>()(
  "DurableStreams.delete",
  `
local m = redis.call('HMGET', KEYS[1], 'tail', 'gone', 'src')
if not m[1] then return {'notfound'} end
if m[2] then
  if redis.call('HLEN', KEYS[4]) > 0 then return {'gone', ''} end
  redis.call('DEL', KEYS[1], KEYS[4])
  return {'gone', m[3] or ''}
end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('PUBLISH', ARGV[1], 'deleted')
if redis.call('HLEN', KEYS[4]) > 0 then
  redis.call('HSET', KEYS[1], 'gone', '1')
  return {'soft'}
end
redis.call('DEL', KEYS[1], KEYS[4])
return {'deleted', m[3] or ''}
`
)

/** The source's metadata when a fork took a reference on it (see {@link reference}). */
export type Referenced = readonly [
  status: "ok",
  contentType: string,
  mediaType: string,
  tail: number,
  ttl: string,
  expiresMs: string,
  expiresAt: string,
  added: number,
  first: number
]

/**
 * Takes a fork's reference on its source, after checking the fork's content type (a refused fork takes none).
 * KEYS meta, forks; ARGV[1] the fork's media type, or "" to inherit the source's, ARGV[2] the fork's name, ARGV[3]
 * now (ms).
 * Reply: {@link Referenced} (`added` 0 when the fork held its reference already: an idempotent re-create),
 * `{"notfound"}`, `{"gone"}` (soft-deleted), `{"contentType"}`.
 */
export const reference = script<
  [meta: string, forks: string],
  [mediaType: string, fork: string, now: number],
  Referenced | readonly ["notfound" | "gone" | "contentType"]
>()(
  "DurableStreams.reference",
  `
local m = redis.call('HMGET', KEYS[1], 'ct', 'mt', 'tail', 'ttl', 'exp', 'expAt', 'gone', 'first')
if not m[3] then return {'notfound'} end
if m[7] then return {'gone'} end
if ARGV[1] ~= '' and ARGV[1] ~= m[2] then return {'contentType'} end
local added = redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return {'ok', m[1], m[2], tonumber(m[3]), m[4] or '', m[5] or '', m[6] or '', added, tonumber(m[8] or '0')}
`
)

/**
 * Releases a fork's reference on its source; a soft-deleted source with no reference left is deleted.
 * KEYS meta, data, producers, forks; ARGV[1] the fork's name.
 * Reply: `{"collected", its own source or ""}` (continue up the chain), `{"kept"}`.
 */
export const release = script<StreamKeys, [fork: string], readonly ["collected", string] | readonly ["kept"]>()(
  "DurableStreams.release",
  `
redis.call('HDEL', KEYS[4], ARGV[1])
local m = redis.call('HMGET', KEYS[1], 'gone', 'src')
if not m[1] or redis.call('HLEN', KEYS[4]) > 0 then return {'kept'} end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return {'collected', m[2] or ''}
`
)
