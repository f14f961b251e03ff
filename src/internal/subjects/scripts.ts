/**
 * The Lua scripts of subject storage. Every write is one script on the subject's one hash, so it is atomic, costs one
 * round trip, and publishes its change event from inside the same step: an event exists only for a committed write.
 * The writes run in their idempotent form (`RedisClient.evalIdempotent`), which publishes what they `announce` again when a
 * retry finds them applied: the first PUBLISH may have died with its master.
 *
 * Every script takes KEYS[1] = the subject's hash, KEYS[2] = the deadlines of its properties that expire (a sorted set
 * field → milliseconds since the epoch, in the hash's slot), ARGV[1] = the change channel (empty: publish nothing),
 * ARGV[2] = the subject's name (for the event) and ARGV[3] = its expiry: empty for none, else `<ms>:1` (set on every
 * write) or `<ms>:0` (set when the subject has none yet). A write of a field given a deadline (milliseconds since the
 * epoch) sets it, given `drop` drops the one the field had, given nothing keeps it; a deletion drops it. Change
 * message (JSON):
 * `{"subject": s, "changes": [{"field": f, "value": json?, "old": json?, "expired": true?}]}` (a change without
 * `value` is a deletion; `expired`: the property's time to live ended) or `{"subject": s, "deleted": true}` when the
 * whole subject was deleted.
 *
 * @internal
 */
import { make as script } from "../../RedisScript.js"

const prelude = `
local key, deadlines, channel, subject, ttl = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]
local tracking = channel ~= ''
local function announce(message)
  redis.call('PUBLISH', channel, message)
  announced[#announced + 1] = { channel, message }
end
local function publish(changes)
  if tracking and #changes > 0 then announce(cjson.encode({ subject = subject, changes = changes })) end
end
local function expire()
  if ttl == '' or redis.call('EXISTS', key) == 0 then return end
  local ms, refresh = string.match(ttl, '^(%d+):(%d)$')
  if refresh == '1' or redis.call('PTTL', key) == -1 then redis.call('PEXPIRE', key, ms) end
end
local function deadline(field, at)
  if at == 'drop' then redis.call('ZREM', deadlines, field) elseif at ~= '' then redis.call('ZADD', deadlines, at, field) end
end
`

/** The keys of every script: the subject's hash and its deadlines. */
type Keys = [hash: string, deadlines: string]

/** The script-specific ARGV: after the channel, the subject and the expiry. */
type Common = readonly [channel: string, subject: string, ttl: string]

/**
 * Sets and deletes several fields at once.
 * ARGV[4] n, the number of fields set; ARGV[5] the deadline of the fields set (or `drop`, or empty); ARGV[6 … 5+2n]
 * field/value pairs; then the fields to delete. Reply: the number of fields changed.
 */
export const store = script<Keys, readonly [...Common, ...fields: ReadonlyArray<string | number>], number>()(
  "SubjectStorage.store",
  `${prelude}
local n = tonumber(ARGV[4])
local changes = {}
local changed = 0
for i = 6, 5 + 2 * n, 2 do
  local field, value = ARGV[i], ARGV[i + 1]
  local old = tracking and redis.call('HGET', key, field)
  redis.call('HSET', key, field, value)
  deadline(field, ARGV[5])
  changed = changed + 1
  if tracking then changes[#changes + 1] = { field = field, value = value, old = old or nil } end
end
for i = 6 + 2 * n, #ARGV do
  local old = tracking and redis.call('HGET', key, ARGV[i])
  deadline(ARGV[i], 'drop')
  if redis.call('HDEL', key, ARGV[i]) == 1 then
    changed = changed + 1
    if tracking then changes[#changes + 1] = { field = ARGV[i], old = old } end
  end
end
expire()
publish(changes)
return changed`
)

/** Sets one field. ARGV[4] field, ARGV[5] value, ARGV[6] its deadline (or `drop`, or empty). Reply: the previous value, or nil. */
export const set = script<Keys, readonly [...Common, field: string, value: string, deadline: string], string | null>()(
  "SubjectStorage.set",
  `${prelude}
local old = redis.call('HGET', key, ARGV[4])
redis.call('HSET', key, ARGV[4], ARGV[5])
deadline(ARGV[4], ARGV[6])
expire()
publish({ { field = ARGV[4], value = ARGV[5], old = old or nil } })
return old`
)

/**
 * Compare-and-set of one field: writes only when the field still holds what the caller read.
 * ARGV[4] field, ARGV[5] `1` when a value is expected (`0`: the field must be absent), ARGV[6] the expected value,
 * ARGV[7] the deadline of the value written (or `drop`, or empty), ARGV[8…] the new values of the combined callers, in order: the
 * last is written, and each is announced as one change (from the one before it). Reply: `{1}` when written, else
 * `{0, current value or nil}`.
 */
export const compareAndSet = script<
  Keys,
  readonly [
    ...Common,
    field: string,
    expectsValue: "0" | "1",
    expected: string,
    deadline: string,
    ...values: ReadonlyArray<string>
  ],
  readonly [1] | readonly [0, string | null]
>()(
  "SubjectStorage.compareAndSet",
  `${prelude}
local current = redis.call('HGET', key, ARGV[4])
local expected = ARGV[5] == '1' and ARGV[6] or false
if current ~= expected then return { 0, current } end
redis.call('HSET', key, ARGV[4], ARGV[#ARGV])
deadline(ARGV[4], ARGV[7])
expire()
local changes, old = {}, current
for i = 8, #ARGV do
  changes[#changes + 1] = { field = ARGV[4], value = ARGV[i], old = old or nil }
  old = ARGV[i]
end
publish(changes)
return { 1 }`
)

/**
 * Adds numbers to a field holding a JSON number (a missing field counts as 0), one after the other.
 * ARGV[4] field, ARGV[5…] the amounts of the combined callers, in order: each addition is announced as one change.
 * Reply: `{"OK", new value, previous value or nil}`, or `{"NAN", current}` when the field holds something that is not
 * a number (nothing is written).
 */
export const increment = script<
  Keys,
  readonly [...Common, field: string, ...amounts: ReadonlyArray<number>],
  readonly ["OK", string, string | null] | readonly ["NAN", string]
>()(
  "SubjectStorage.increment",
  `${prelude}
local old = redis.call('HGET', key, ARGV[4])
local current = 0
if old then
  current = tonumber(old)
  if current == nil then return { 'NAN', old } end
end
local function format(n)
  if n == math.floor(n) and math.abs(n) < 2^53 then return string.format('%d', n) end
  return string.format('%.17g', n)
end
local changes, previous, value = {}, old, old
for i = 5, #ARGV do
  current = current + tonumber(ARGV[i])
  value = format(current)
  changes[#changes + 1] = { field = ARGV[4], value = value, old = previous or nil }
  previous = value
end
redis.call('HSET', key, ARGV[4], value)
expire()
publish(changes)
return { 'OK', value, old }`
)

/** Deletes one field. ARGV[4] field. Reply: the value it held, or nil when there was none. */
export const remove = script<Keys, readonly [...Common, field: string], string | null>()(
  "SubjectStorage.delete",
  `${prelude}
local old = redis.call('HGET', key, ARGV[4])
if old then
  redis.call('HDEL', key, ARGV[4])
  deadline(ARGV[4], 'drop')
  expire()
  publish({ { field = ARGV[4], old = old } })
end
return old`
)

/** Deletes the whole subject. Reply: 1 when it existed, else 0. */
export const flush = script<Keys, Common, number>()(
  "SubjectStorage.flush",
  `${prelude}
local existed = redis.call('DEL', key)
redis.call('DEL', deadlines)
if tracking and existed == 1 then announce(cjson.encode({ subject = subject, deleted = true })) end
return existed`
)

/**
 * Removes the fields whose deadline is due, each announced as a deletion marked `expired`. ARGV[4] now (ms since the
 * epoch), ARGV[5] at most this many fields. Reply: the subject's next deadline (ms), or nil when no field has one.
 */
export const expireFields = script<Keys, readonly [...Common, now: number, limit: number], string | null>()(
  "SubjectStorage.expire",
  `local announced = {}
${prelude}
local due = redis.call('ZRANGEBYSCORE', deadlines, '-inf', ARGV[4], 'LIMIT', 0, tonumber(ARGV[5]))
if #due > 0 then
  local changes = {}
  for _, field in ipairs(due) do
    local old = redis.call('HGET', key, field)
    if old then
      redis.call('HDEL', key, field)
      changes[#changes + 1] = { field = field, old = old, expired = true }
    end
  end
  redis.call('ZREM', deadlines, unpack(due))
  publish(changes)
end
local next = redis.call('ZRANGE', deadlines, 0, 0, 'WITHSCORES')
return next[2]`
)
