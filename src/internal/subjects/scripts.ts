/**
 * The Lua scripts of subject storage. Every write is one script on the subject's one hash, so it is atomic, costs one
 * round trip, and publishes its change event from inside the same step: an event exists only for a committed write.
 *
 * Every script takes KEYS[1] = the subject's hash, ARGV[1] = the change channel (empty: publish nothing) and
 * ARGV[2] = the subject's name (for the event). Change message (JSON):
 * `{"subject": s, "changes": [{"field": f, "value": json?, "old": json?}]}` (a change without `value` is a deletion)
 * or `{"subject": s, "deleted": true}` when the whole subject was deleted.
 *
 * @internal
 */
import { make as script } from "../../RedisScript.js"

const prelude = `
local key, channel, subject = KEYS[1], ARGV[1], ARGV[2]
local tracking = channel ~= ''
local function publish(changes)
  if tracking and #changes > 0 then
    redis.call('PUBLISH', channel, cjson.encode({ subject = subject, changes = changes }))
  end
end
`

/**
 * Sets and deletes several fields at once.
 * ARGV[3] n, the number of fields set; ARGV[4 … 3+2n] field/value pairs; then the fields to delete.
 * Reply: the number of fields changed.
 */
export const store = script<
  [hash: string],
  readonly [channel: string, subject: string, ...fields: ReadonlyArray<string | number>],
  number
>()(
  "SubjectStorage.store",
  `${prelude}
local n = tonumber(ARGV[3])
local changes = {}
local changed = 0
for i = 4, 3 + 2 * n, 2 do
  local field, value = ARGV[i], ARGV[i + 1]
  local old = tracking and redis.call('HGET', key, field)
  redis.call('HSET', key, field, value)
  changed = changed + 1
  if tracking then changes[#changes + 1] = { field = field, value = value, old = old or nil } end
end
for i = 4 + 2 * n, #ARGV do
  local old = tracking and redis.call('HGET', key, ARGV[i])
  if redis.call('HDEL', key, ARGV[i]) == 1 then
    changed = changed + 1
    if tracking then changes[#changes + 1] = { field = ARGV[i], old = old } end
  end
end
publish(changes)
return changed`
)

/** Sets one field. ARGV[3] field, ARGV[4] value. Reply: the previous value, or nil. */
export const set = script<
  [hash: string],
  [channel: string, subject: string, field: string, value: string],
  string | null
>()(
  "SubjectStorage.set",
  `${prelude}
local old = redis.call('HGET', key, ARGV[3])
redis.call('HSET', key, ARGV[3], ARGV[4])
publish({ { field = ARGV[3], value = ARGV[4], old = old or nil } })
return old`
)

/**
 * Compare-and-set of one field: writes only when the field still holds what the caller read.
 * ARGV[3] field, ARGV[4] `1` when a value is expected (`0`: the field must be absent), ARGV[5] the expected value,
 * ARGV[6] the new value. Reply: `{1}` when written, else `{0, current value or nil}`.
 */
export const compareAndSet = script<
  [hash: string],
  [channel: string, subject: string, field: string, expectsValue: "0" | "1", expected: string, value: string],
  readonly [1] | readonly [0, string | null]
>()(
  "SubjectStorage.compareAndSet",
  `${prelude}
local current = redis.call('HGET', key, ARGV[3])
local expected = ARGV[4] == '1' and ARGV[5] or false
if current ~= expected then return { 0, current } end
redis.call('HSET', key, ARGV[3], ARGV[6])
publish({ { field = ARGV[3], value = ARGV[6], old = current or nil } })
return { 1 }`
)

/**
 * Adds a number to a field holding a JSON number (a missing field counts as 0).
 * ARGV[3] field, ARGV[4] the amount. Reply: `{"OK", new value, previous value or nil}`, or `{"NAN", current}` when the
 * field holds something that is not a number (nothing is written).
 */
export const increment = script<
  [hash: string],
  [channel: string, subject: string, field: string, by: number],
  readonly ["OK", string, string | null] | readonly ["NAN", string]
>()(
  "SubjectStorage.increment",
  `${prelude}
local old = redis.call('HGET', key, ARGV[3])
local current = 0
if old then
  current = tonumber(old)
  if current == nil then return { 'NAN', old } end
end
local sum = current + tonumber(ARGV[4])
local value
if sum == math.floor(sum) and math.abs(sum) < 2^53 then value = string.format('%d', sum)
else value = string.format('%.17g', sum) end
redis.call('HSET', key, ARGV[3], value)
publish({ { field = ARGV[3], value = value, old = old or nil } })
return { 'OK', value, old }`
)

/** Deletes one field. ARGV[3] field. Reply: the value it held, or nil when there was none. */
export const remove = script<[hash: string], [channel: string, subject: string, field: string], string | null>()(
  "SubjectStorage.delete",
  `${prelude}
local old = redis.call('HGET', key, ARGV[3])
if old then
  redis.call('HDEL', key, ARGV[3])
  publish({ { field = ARGV[3], old = old } })
end
return old`
)

/** Deletes the whole subject. Reply: 1 when it existed, else 0. */
export const flush = script<[hash: string], [channel: string, subject: string], number>()(
  "SubjectStorage.flush",
  `${prelude}
local existed = redis.call('DEL', key)
if tracking and existed == 1 then
  redis.call('PUBLISH', channel, cjson.encode({ subject = subject, deleted = true }))
end
return existed`
)
