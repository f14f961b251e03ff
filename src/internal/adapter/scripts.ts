/**
 * The Lua scripts of live state. Each write changes the group's hash, bumps its version, appends its events to the
 * change log and publishes them, in one atomic step: create versus update is decided in Redis, and a write that fails
 * emits nothing.
 *
 * Every script takes KEYS = items, log, meta, expiry (one hash tag; expiry: the items' deadlines, a sorted set of
 * milliseconds since the epoch) and ARGV[1] = channel, ARGV[2] = log max length (events), ARGV[3] = an epoch to adopt
 * if the group has none yet, which is also this write call's id. Event JSON (built from the stored JSON, not
 * re-encoded): `{"epoch":e,"version":v,"w":…,"p":…,"type":t,"id":i,"data":…,"previous":…}`; `type` is `create`,
 * `update`, `delete`, `expired`, `clear` or `event` (a custom event, whose `data` is `{"type":…,"data":…}`); `w` is
 * the id of the write call that made the event and `p` the `w` of the event before it (the group's history as a
 * chain: a subscriber that sees a link not follow the one it holds knows the history changed under it, as when a
 * failover lost the last writes and the new master numbers new ones the same). A script's events go out together, as the JSON
 * array of them: one pub/sub message, and one change log entry whose id is `0-<last version>` (a batch of sets is
 * one of each, not one per item). The log keeps about the last `max length` events (trimmed by id, in the same XADD);
 * the version is read and written once per script.
 *
 * @internal
 */
import { make as script } from "../../RedisScript.js"

/** Reply of a delete, clear or send: its type, version and epoch, and the previous item JSON (nil when none). */
export type WriteReply = readonly [type: string, version: number, epoch: string, previous: string | null]

const prelude = `
local items, log, meta, expiry = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local channel, maxlen = ARGV[1], tonumber(ARGV[2])
redis.call('HSETNX', meta, 'epoch', ARGV[3])
local state = redis.call('HMGET', meta, 'epoch', 'version', 'last')
local epoch = state[1]
local version = tonumber(state[2] or '0')
local write = cjson.encode(ARGV[3])
local link = cjson.encode(state[3] or '')
local eventHead = '{"epoch":' .. cjson.encode(epoch) .. ',"w":' .. write .. ',"version":'
local events = {}
local function record(kind, id, data, previous)
  version = version + 1
  events[#events + 1] = eventHead .. version .. ',"p":' .. link .. ',"type":"' .. kind .. '"'
    .. (id and (',"id":' .. cjson.encode(id)) or '')
    .. (data and (',"data":' .. data) or '')
    .. (previous and (',"previous":' .. previous) or '') .. '}'
  link = write
  return version
end
local function commit()
  redis.call('HSET', meta, 'version', version, 'last', ARGV[3])
  local batch = '[' .. table.concat(events, ',') .. ']'
  if maxlen > 0 and version > maxlen then
    redis.call('XADD', log, 'MINID', '~', '0-' .. (version - maxlen + 1), '0-' .. version, 'events', batch)
  else
    redis.call('XADD', log, '0-' .. version, 'events', batch)
  end
  redis.call('PUBLISH', channel, batch)
end
`

type Keys = [items: string, log: string, meta: string, expiry: string]
type Common = [channel: string, maxLength: number, epoch: string]

/**
 * Creates or updates items, in order, each with its own version and event (an id given twice: the second is an
 * update of the first). ARGV[4…] id, item JSON and deadline of each (ms since the epoch; `drop`: a deadline the item
 * had is dropped; empty: it is kept). Reply: the epoch, the first item's version (the others follow one
 * by one), each item's type as one letter (`c` create, `u` update), and the number of items the group has after them.
 */
export const set = script<
  Keys,
  readonly [...Common, ...items: ReadonlyArray<string | number>],
  readonly [epoch: string, firstVersion: number, types: string, count: number]
>()(
  "StreamAdapter.set",
  `${prelude}
local ids, fields, deadlines, persistent = {}, {}, {}, {}
for i = 4, #ARGV, 3 do
  ids[#ids + 1] = ARGV[i]
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
  if ARGV[i + 2] == 'drop' then
    persistent[#persistent + 1] = ARGV[i]
  elseif ARGV[i + 2] ~= '' then
    deadlines[#deadlines + 1] = ARGV[i + 2]
    deadlines[#deadlines + 1] = ARGV[i]
  end
end
local stored = redis.call('HMGET', items, unpack(ids))
local written, types = {}, {}
local first = version + 1
for n = 1, #ids do
  local id, data = ids[n], ARGV[2 + 3 * n]
  local previous = written[id] or stored[n]
  record(previous and 'update' or 'create', id, data, previous or nil)
  types[n] = previous and 'u' or 'c'
  written[id] = data
end
redis.call('HSET', items, unpack(fields))
if #persistent > 0 then redis.call('ZREM', expiry, unpack(persistent)) end
if #deadlines > 0 then redis.call('ZADD', expiry, unpack(deadlines)) end
commit()
return { epoch, first, table.concat(types), redis.call('HLEN', items) }`
)

/** Deletes an item; nothing happens (no event) when there is none. ARGV[4] id. Reply: a write reply, or nil. */
export const remove = script<Keys, [...Common, id: string], WriteReply | null>()(
  "StreamAdapter.delete",
  `${prelude}
local previous = redis.call('HGET', items, ARGV[4])
if not previous then return nil end
redis.call('HDEL', items, ARGV[4])
redis.call('ZREM', expiry, ARGV[4])
record('delete', ARGV[4], nil, previous)
commit()
return { 'delete', version, epoch, previous }`
)

/** Deletes every item of the group (one `clear` event). Reply: a write reply (previous: the number of items). */
export const clear = script<Keys, Common, WriteReply>()(
  "StreamAdapter.clear",
  `${prelude}
local count = redis.call('HLEN', items)
redis.call('DEL', items, expiry)
record('clear', nil, nil, nil)
commit()
return { 'clear', version, epoch, tostring(count) }`
)

/** Sends a custom event. ARGV[4] item id or empty, ARGV[5] the event JSON (`{"type":…,"data":…}`). */
export const send = script<Keys, [...Common, id: string, event: string], WriteReply>()(
  "StreamAdapter.send",
  `${prelude}
local id = ARGV[4] ~= '' and ARGV[4] or nil
record('event', id, ARGV[5], nil)
commit()
return { 'event', version, epoch, nil }`
)

/**
 * Removes the items whose deadline is due, each with an `expired` event (previous: the item). ARGV[4] now (ms since the
 * epoch), ARGV[5] at most this many items. Reply: the group's next deadline (ms), or nil when no item has one.
 */
export const expire = script<Keys, [...Common, now: number, limit: number], string | null>()(
  "StreamAdapter.expire",
  `${prelude}
local due = redis.call('ZRANGEBYSCORE', expiry, '-inf', ARGV[4], 'LIMIT', 0, tonumber(ARGV[5]))
if #due > 0 then
  for _, id in ipairs(due) do
    local previous = redis.call('HGET', items, id)
    if previous then
      redis.call('HDEL', items, id)
      record('expired', id, nil, previous)
    end
  end
  redis.call('ZREM', expiry, unpack(due))
  if #events > 0 then commit() end
end
local next = redis.call('ZRANGE', expiry, 0, 0, 'WITHSCORES')
return next[2]`
)
