/**
 * The Lua scripts of live state. Each write changes the group's hash, bumps its version, appends the event to its
 * change log and publishes it, in one atomic step: create versus update is decided in Redis, and a write that fails
 * emits nothing.
 *
 * Every script takes KEYS = items, log, meta (one hash tag) and ARGV[1] = channel, ARGV[2] = log max length,
 * ARGV[3] = an epoch to adopt if the group has none yet. Event JSON (built from the stored JSON, not re-encoded):
 * `{"epoch":e,"version":v,"type":t,"id":i,"data":…,"previous":…}`; `type` is `create`, `update`, `delete`, `clear` or
 * `event` (a custom event, whose `data` is `{"type":…,"data":…}`). A script's events are published together, as one
 * message holding the JSON array of them (a batch of sets is one message, not one per item); the version is read and
 * written once per script, and the log trimmed once.
 *
 * @internal
 */
import { make as script } from "../../RedisScript.js"

/** Reply of a delete, clear or send: its type, version and epoch, and the previous item JSON (nil when none). */
export type WriteReply = readonly [type: string, version: number, epoch: string, previous: string | null]

const prelude = `
local items, log, meta = KEYS[1], KEYS[2], KEYS[3]
local channel, maxlen = ARGV[1], tonumber(ARGV[2])
redis.call('HSETNX', meta, 'epoch', ARGV[3])
local epoch = redis.call('HGET', meta, 'epoch')
local version = tonumber(redis.call('HGET', meta, 'version') or '0')
local events = {}
local function record(kind, id, data, previous)
  version = version + 1
  local event = '{"epoch":' .. cjson.encode(epoch) .. ',"version":' .. version .. ',"type":"' .. kind .. '"'
  if id then event = event .. ',"id":' .. cjson.encode(id) end
  if data then event = event .. ',"data":' .. data end
  if previous then event = event .. ',"previous":' .. previous end
  event = event .. '}'
  redis.call('XADD', log, '0-' .. version, 'event', event)
  events[#events + 1] = event
  return version
end
local function commit()
  redis.call('HSET', meta, 'version', version)
  if maxlen > 0 then redis.call('XTRIM', log, 'MAXLEN', '~', maxlen) end
  redis.call('PUBLISH', channel, '[' .. table.concat(events, ',') .. ']')
end
`

type Keys = [items: string, log: string, meta: string]
type Common = [channel: string, maxLength: number, epoch: string]

/**
 * Creates or updates items, in order, each with its own version and event. ARGV[4…] id and item JSON of each.
 * Reply: the epoch, then for each item its type and version, then the number of items the group has after them.
 */
export const set = script<
  Keys,
  readonly [...Common, ...items: ReadonlyArray<string>],
  ReadonlyArray<string | number | null>
>()(
  "StreamAdapter.set",
  `${prelude}
local reply = { epoch }
for i = 4, #ARGV, 2 do
  local previous = redis.call('HGET', items, ARGV[i])
  redis.call('HSET', items, ARGV[i], ARGV[i + 1])
  local kind = previous and 'update' or 'create'
  reply[#reply + 1] = kind
  reply[#reply + 1] = record(kind, ARGV[i], ARGV[i + 1], previous or nil)
end
commit()
reply[#reply + 1] = redis.call('HLEN', items)
return reply`
)

/** Deletes an item; nothing happens (no event) when there is none. ARGV[4] id. Reply: a write reply, or nil. */
export const remove = script<Keys, [...Common, id: string], WriteReply | null>()(
  "StreamAdapter.delete",
  `${prelude}
local previous = redis.call('HGET', items, ARGV[4])
if not previous then return nil end
redis.call('HDEL', items, ARGV[4])
record('delete', ARGV[4], nil, previous)
commit()
return { 'delete', version, epoch, previous }`
)

/** Deletes every item of the group (one `clear` event). Reply: a write reply (previous: the number of items). */
export const clear = script<Keys, Common, WriteReply>()(
  "StreamAdapter.clear",
  `${prelude}
local count = redis.call('HLEN', items)
redis.call('DEL', items)
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
