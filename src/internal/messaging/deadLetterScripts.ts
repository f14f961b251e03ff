/**
 * The Lua scripts of dead-letter inspection: reading a page of a dead-letter stream cheaply, and moving dead letters
 * back to their topic (or deleting them).
 *
 * A replay is atomic per message: the dead-letter stream `{prefix}{T}:dead` and its topic `{prefix}{T}` share the
 * hash tag `{T}` (one cluster slot), so one script adds the entry to the topic and deletes it from the dead letters:
 * a message is never in both, never in neither, and a replay retried after a lost reply finds the entry gone and
 * adds nothing.
 *
 * @internal
 */
import { make as script } from "../../RedisScript.js"

/**
 * The shared part: `move(entry)` replays (XADD to the topic, without the `dead_*` fields) or only deletes one
 * dead-letter entry, recording `{dead-letter id, new topic id or ""}` in `out`. An entry with nothing but `dead_*`
 * fields has nothing to replay and stays where it is.
 */
const move = `
local out = {}
local moved = 0
local function move(entry)
  local new_id = ''
  if ARGV[1] == 'replay' then
    local kept = {}
    local fields = entry[2]
    for j = 1, #fields, 2 do
      if string.sub(fields[j], 1, 5) ~= 'dead_' then
        kept[#kept + 1] = fields[j]
        kept[#kept + 1] = fields[j + 1]
      end
    end
    if #kept == 0 then return end
    new_id = redis.call('XADD', KEYS[2], '*', unpack(kept))
  end
  redis.call('XDEL', KEYS[1], entry[1])
  out[#out + 1] = entry[1]
  out[#out + 1] = new_id
  moved = moved + 1
end
local function wake()
  if ARGV[1] == 'replay' and moved > 0 then redis.call('PUBLISH', ARGV[2], moved) end
end
`

/** What a dead-letter action does: put the message back on its topic, or only delete it. */
export type Mode = "replay" | "delete"

/**
 * Replays or deletes the dead letters with the given ids (those still there).
 * KEYS[1] dead-letter stream, KEYS[2] its topic's stream (same hash tag); ARGV[1] mode (`replay` | `delete`),
 * ARGV[2] the topic's wake channel, ARGV[3…] dead-letter entry ids.
 * Reply: `{dead-letter id, new topic id ("" for a delete), …}` for each entry moved.
 */
export const moveIds = script<
  [dead: string, topic: string],
  [mode: Mode, wakeChannel: string, ...ids: Array<string>],
  Array<string>
>()(
  "Inspector.moveDeadLetters",
  `${move}
for i = 3, #ARGV do
  local entry = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])[1]
  if entry then move(entry) end
end
wake()
return out`
)

/**
 * Replays or deletes the first `count` dead letters from `start` (inclusive; `(id` for after an id) to `end`.
 * KEYS[1] dead-letter stream, KEYS[2] its topic's stream (same hash tag); ARGV[1] mode, ARGV[2] the topic's wake
 * channel, ARGV[3] start, ARGV[4] end, ARGV[5] count.
 * Reply: `{entries seen, last id seen ("" when none), dead-letter id, new topic id, …}`.
 */
export const moveRange = script<
  [dead: string, topic: string],
  [mode: Mode, wakeChannel: string, start: string, end: string, count: number],
  Array<string | number>
>()(
  "Inspector.moveDeadLetterRange",
  `${move}
local entries = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
for _, entry in ipairs(entries) do move(entry) end
wake()
local last = entries[#entries]
local reply = {#entries, last and last[1] or ''}
for _, value in ipairs(out) do reply[#reply + 1] = value end
return reply`
)

/**
 * A page of a dead-letter stream with its length, every value cut short so that a page costs little whatever the
 * messages weigh: the payload to a preview (its full size in the extra field `~payload_bytes`), other values to a
 * longest length.
 * KEYS[1] dead-letter stream; ARGV[1] start (`-`, or `(id` for after an id), ARGV[2] count, ARGV[3] preview bytes,
 * ARGV[4] longest other value in bytes.
 * Reply: `{length, {id, {field, value, …}}, …}`.
 */
export const deadLetterPage = script<
  [dead: string],
  [start: string, count: number, previewBytes: number, longestValue: number],
  [number, ...Array<[string, Array<string>]>]
>()(
  "Inspector.deadLetterPage",
  `local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
local reply = {redis.call('XLEN', KEYS[1])}
local preview, longest = tonumber(ARGV[3]), tonumber(ARGV[4])
for _, entry in ipairs(entries) do
  local fields = {}
  local raw = entry[2]
  for j = 1, #raw, 2 do
    local value = raw[j + 1]
    if raw[j] == 'payload' then
      fields[#fields + 1] = '~payload_bytes'
      fields[#fields + 1] = tostring(#value)
      value = string.sub(value, 1, preview)
    else
      value = string.sub(value, 1, longest)
    end
    fields[#fields + 1] = raw[j]
    fields[#fields + 1] = value
  end
  reply[#reply + 1] = {entry[1], fields}
end
return reply`
)
