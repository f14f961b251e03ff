/**
 * The Lua scripts of messaging: a batch publish, the atomic move of a message to its dead-letter stream, the removal
 * of a consumer that holds nothing, and the retry schedule: messages waiting for a redelivery are pending for the
 * group's holder consumer (`~retry`) and listed in a sorted set by when they are due, so no fiber holds a delay and no
 * consumer restart hurries one.
 *
 * @internal
 */
import { make as script } from "../../RedisScript.js"

/**
 * Appends messages, wakes the topic's subscribers (a message on its wake channel), and applies the retention: entries
 * that every group of the topic has handled (delivered and acknowledged: before each group's first pending entry and
 * after none it has yet to read) are trimmed beyond the newest `maxLength` (checked once the stream is 10% over) and
 * when older than `maxAge`; what any group still needs stays. The hard cap trims whatever it must, acknowledging for
 * each group the entries it loses, and says how many each lost. At most 1,000 entries are trimmed per call.
 * KEYS[1] stream; ARGV[1] max length (0: none), ARGV[2] wake channel, ARGV[3] max age in ms (0: none), ARGV[4] hard
 * max length (0: none), ARGV[5…] uuid, payload, metadata of each message.
 * Reply: { entry ids in order, { group, entries it lost to the hard cap, … } }.
 */
export const publish = script<
  [stream: string],
  ReadonlyArray<string | number | Buffer>,
  [ids: Array<string>, dropped: Array<string | number>]
>()(
  "Publisher.publish",
  `local ids = {}
for i = 5, #ARGV, 3 do
  ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', 'uuid', ARGV[i], 'payload', ARGV[i + 1], 'metadata', ARGV[i + 2])
end
redis.call('PUBLISH', ARGV[2], #ids)
local maxLength, maxAge, hardMax = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4])
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local function after(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return ms .. '-' .. string.format('%.0f', tonumber(seq) + 1)
end
-- the groups, and the first entry each still needs (its oldest pending one, else the one after its last delivered)
local function groupsOf()
  local groups = {}
  for _, row in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local info = {}
    for j = 1, #row, 2 do info[row[j]] = row[j + 1] end
    local need = after(info['last-delivered-id'])
    if tonumber(info['pending']) > 0 then need = redis.call('XPENDING', KEYS[1], info['name'])[2] end
    groups[#groups + 1] = { name = info['name'], need = need, last = info['last-delivered-id'] }
  end
  return groups
end
-- at most this many entries are trimmed (and read) per call: a long backlog is trimmed over the next publishes
local trimStep = 1000
local len = redis.call('XLEN', KEYS[1])
local overLength = maxLength > 0 and len > maxLength + math.max(10, math.floor(maxLength / 10))
local ageCut = nil
if maxAge > 0 then
  local time = redis.call('TIME')
  local limit = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) - maxAge
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  if first and parse(first[1]) < limit - math.max(100, math.floor(maxAge / 10)) then
    ageCut = string.format('%.0f', limit) .. '-0'
  end
end
local groups = nil
if overLength or ageCut then
  groups = groupsOf()
  local bound = nil
  for _, group in ipairs(groups) do
    if bound == nil or less(group.need, bound) then bound = group.need end
  end
  local cut = nil
  if overLength then
    local range = redis.call('XRANGE', KEYS[1], '-', bound and ('(' .. bound) or '+', 'COUNT',
      math.min(len - maxLength, trimStep))
    if #range > 0 then cut = after(range[#range][1]) end
  end
  if ageCut then
    if bound and less(bound, ageCut) then ageCut = bound end
    if cut == nil or less(cut, ageCut) then cut = ageCut end
  end
  if cut then redis.call('XTRIM', KEYS[1], 'MINID', cut) end
end
local dropped = {}
if hardMax > 0 then
  len = redis.call('XLEN', KEYS[1])
  if len > hardMax then
    local excess = math.min(len - hardMax, trimStep)
    local range = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)
    local cut = after(range[#range][1])
    for _, group in ipairs(groups or groupsOf()) do
      if less(group.need, cut) then
        local lost = 0
        -- its pending entries below the cut, page by page (ids of entries deleted earlier may come first)
        repeat
          local pending = redis.call('XPENDING', KEYS[1], group.name, '-', '(' .. cut, trimStep)
          if #pending > 0 then
            local pendingIds = {}
            for _, row in ipairs(pending) do pendingIds[#pendingIds + 1] = row[1] end
            redis.call('XACK', KEYS[1], group.name, unpack(pendingIds))
            lost = lost + #pending
          end
        until #pending < trimStep
        lost = lost + #redis.call('XRANGE', KEYS[1], '(' .. group.last, '(' .. cut, 'COUNT', excess)
        if lost > 0 then
          dropped[#dropped + 1] = group.name
          dropped[#dropped + 1] = lost
        end
      end
    end
    redis.call('XTRIM', KEYS[1], 'MINID', cut)
  end
end
return { ids, dropped }`
)

/**
 * Moves one pending message to the dead-letter stream and acknowledges it on the source, in one step. An entry that
 * was trimmed away is only acknowledged.
 * KEYS[1] source stream, KEYS[2] dead-letter stream (same hash tag); ARGV[1] group, ARGV[2] entry id, ARGV[3] reason,
 * ARGV[4] source topic, ARGV[5] consumer, ARGV[6] deliveries, ARGV[7] time (ISO), ARGV[8] dead-letter max length,
 * ARGV[9] the dead-letter topic's wake channel, ARGV[10] the error as JSON (empty: none).
 * Reply: 1 when moved, 0 when the entry was gone.
 */
export const deadLetter = script<
  [source: string, dead: string],
  [
    group: string,
    id: string,
    reason: string,
    topic: string,
    consumer: string,
    deliveries: number,
    at: string,
    maxLength: number,
    wakeChannel: string,
    error: string
  ],
  number
>()(
  "Subscriber.deadLetter",
  `local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])[1]
local moved = 0
if entry then
  local fields = entry[2]
  local extra = { 'dead_reason', ARGV[3], 'dead_topic', ARGV[4], 'dead_id', ARGV[2], 'dead_group', ARGV[1],
    'dead_consumer', ARGV[5], 'dead_deliveries', ARGV[6], 'dead_at', ARGV[7] }
  for _, value in ipairs(extra) do fields[#fields + 1] = value end
  if ARGV[10] ~= '' then
    fields[#fields + 1] = 'dead_error'
    fields[#fields + 1] = ARGV[10]
  end
  local maxlen = tonumber(ARGV[8])
  if maxlen > 0 then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', unpack(fields))
  else
    redis.call('XADD', KEYS[2], '*', unpack(fields))
  end
  redis.call('PUBLISH', ARGV[9], 1)
  moved = 1
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return moved`
)

/**
 * Removes a consumer from its group if it has no pending message (nothing to lose).
 * KEYS[1] stream; ARGV[1] group, ARGV[2] consumer. Reply: 1 when removed, 0 when it still holds messages.
 */
export const removeIdleConsumer = script<[stream: string], [group: string, consumer: string], number>()(
  "Subscriber.removeIdleConsumer",
  `local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #pending > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1`
)

/**
 * Schedules messages for a later delivery: each one the calling consumer still holds is moved (XCLAIM … JUSTID) to
 * the holder consumer, its delivery count set when asked (a message handed back unstarted keeps its count), and added
 * to the retry set, due `delay` ms from now (server time). When one is due at once, the group's consumers are woken
 * ("due" on the wake channel). One another consumer took meanwhile (a claim) is left to it.
 * KEYS[1] stream, KEYS[2] retry set; ARGV[1] group, ARGV[2] holder, ARGV[3] wake channel, ARGV[4] the calling
 * consumer, then triples of entry id, delay (ms) and delivery count to set (-1: keep).
 * Reply: how many were scheduled.
 */
export const retryLater = script<[stream: string, retries: string], ReadonlyArray<string | number>, number>()(
  "Subscriber.retryLater",
  `local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local scheduled = 0
local dueNow = false
for i = 5, #ARGV, 3 do
  local id = ARGV[i]
  local delay = tonumber(ARGV[i + 1])
  local count = tonumber(ARGV[i + 2])
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)[1]
  local claimed = {}
  if pending == nil or pending[2] ~= ARGV[4] then
    -- no longer this consumer's: acknowledged, or taken over
  elseif count >= 0 then
    claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'RETRYCOUNT', count, 'JUSTID')
  else
    claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'JUSTID')
  end
  if #claimed > 0 then
    redis.call('ZADD', KEYS[2], now + delay, id)
    scheduled = scheduled + 1
    if delay <= 0 then dueNow = true end
  end
end
if dueNow then redis.call('PUBLISH', ARGV[3], 'due') end
return scheduled`
)

/**
 * Takes messages whose retry is due: removes them from the retry set and claims them from the holder for the consumer
 * (counting the delivery). An entry the holder no longer holds (acknowledged, or claimed) is only removed; one deleted
 * from the stream is dropped from the pending list by XCLAIM and counted.
 * KEYS[1] stream, KEYS[2] retry set; ARGV[1] group, ARGV[2] consumer, ARGV[3] most entries, ARGV[4] holder (removed
 * from the group once it holds nothing).
 * Reply: { entries, their delivery counts, ms until the next one is due (-1: none), entries found deleted }.
 */
export const takeDue = script<
  [stream: string, retries: string],
  [group: string, consumer: string, count: number, holder: string],
  [entries: Array<[Buffer, Array<Buffer>]>, counts: Array<number>, nextInMs: number, deleted: number]
>()(
  "Subscriber.takeDue",
  `local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local entries = {}
local counts = {}
local deleted = 0
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[2], id)
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if #pending > 0 and pending[1][2] == ARGV[4] then
    local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id)
    if #claimed > 0 and claimed[1] then
      entries[#entries + 1] = claimed[1]
      counts[#counts + 1] = tonumber(pending[1][4]) + 1
    else
      deleted = deleted + 1
    end
  end
end
local nextIn = -1
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #first > 0 then
  nextIn = math.max(0, tonumber(first[2]) - now)
elseif #due > 0 and #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[4]) == 0 then
  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[4]) -- the holder holds nothing: it leaves the group
end
return { entries, counts, nextIn, deleted }`
)

/**
 * Takes over entries idle at least ARGV[3] ms (their consumer died), skipping those waiting for their retry, from
 * the pending list after the cursor; XCLAIM counts the delivery and drops entries deleted from the stream.
 * KEYS[1] stream, KEYS[2] retry set; ARGV[1] group, ARGV[2] consumer, ARGV[3] min idle (ms), ARGV[4] cursor ('-' to
 * start), ARGV[5] most entries, ARGV[6] holder.
 * Reply: { next cursor ('-' when the scan is done), entries, their delivery counts, entries found deleted }.
 */
export const claimIdle = script<
  [stream: string, retries: string],
  [group: string, consumer: string, minIdle: number, cursor: string, count: number, holder: string],
  [cursor: string, entries: Array<[Buffer, Array<Buffer>]>, counts: Array<number>, deleted: number]
>()(
  "Subscriber.claimIdle",
  `local count = tonumber(ARGV[5])
local rows = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', tonumber(ARGV[3]), ARGV[4], '+', count)
local ids = {}
local counts = {}
for _, row in ipairs(rows) do
  if row[2] ~= ARGV[6] or not redis.call('ZSCORE', KEYS[2], row[1]) then
    ids[#ids + 1] = row[1]
    counts[row[1]] = tonumber(row[4]) + 1
  end
end
local entries = {}
local claimedCounts = {}
if #ids > 0 then
  local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), unpack(ids))
  for _, entry in ipairs(claimed) do
    if entry then
      entries[#entries + 1] = entry
      claimedCounts[#claimedCounts + 1] = counts[entry[1]]
    end
  end
end
local cursor = '-'
if #rows == count then cursor = '(' .. rows[#rows][1] end
return { cursor, entries, claimedCounts, #ids - #entries }`
)

/**
 * How far a group is behind: its pending count, its lag (entries not yet delivered; -1 when Redis cannot tell), the id
 * of the oldest entry it has not read yet and of its oldest pending one (false: none), and the server's time (ms).
 * KEYS[1] stream; ARGV[1] group.
 */
export const groupLag = script<
  [stream: string],
  [group: string],
  [pending: number, lag: number, oldestUnread: string | null, oldestPending: string | null, now: number]
>()(
  "Subscriber.groupLag",
  `if redis.call('EXISTS', KEYS[1]) == 0 then return { 0, -1, false, false, 0 } end
for _, row in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for j = 1, #row, 2 do info[row[j]] = row[j + 1] end
  if info['name'] == ARGV[1] then
    local unread = redis.call('XRANGE', KEYS[1], '(' .. info['last-delivered-id'], '+', 'COUNT', 1)[1]
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
    local time = redis.call('TIME')
    local lag = -1
    if type(info['lag']) == 'number' then lag = info['lag'] end
    return { tonumber(info['pending']), lag, unread and unread[1] or false, pending[2] or false,
      tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) }
  end
end
return { 0, -1, false, false, 0 }`
)

/**
 * Resets the idle time of the messages a consumer is still working on (so no claim takes them), only those it still
 * holds: one another consumer took over meanwhile stays with it.
 * KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3…] entry ids. Reply: how many were renewed.
 */
export const renewLeases = script<[stream: string], ReadonlyArray<string>, number>()(
  "Subscriber.renewLeases",
  `local renewed = 0
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)[1]
  if pending and pending[2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    renewed = renewed + 1
  end
end
return renewed`
)

/**
 * A group read (`XREADGROUP` without `BLOCK`) only while a lease holds: a partition's reader that lost its lease reads
 * nothing, so a paused owner coming back cannot take messages from the partition's next owner.
 * KEYS[1] stream, KEYS[2] the lease; ARGV[1] group, ARGV[2] consumer, ARGV[3] count, ARGV[4] from, ARGV[5] the lease's
 * value when it is the reader's. Reply: `XREADGROUP`'s, or nil when the lease is not the reader's.
 */
export const fencedRead = script<
  [stream: string, lease: string],
  [group: string, consumer: string, count: number, from: string, holder: string],
  unknown
>()(
  "PartitionedTopics.read",
  `if redis.call('GET', KEYS[2]) ~= ARGV[5] then return false end
return redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[1], ARGV[4])`
)
