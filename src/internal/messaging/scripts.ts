/**
 * The Lua scripts of messaging: a batch publish, the atomic move of a message to its dead-letter stream, and the
 * removal of a consumer that holds nothing.
 *
 * @internal
 */
import { make as script } from "../../RedisScript.js"

/**
 * Appends messages, trims once, and wakes the topic's subscribers (a message on its wake channel).
 * KEYS[1] stream; ARGV[1] max length (0: no trimming), ARGV[2] wake channel, ARGV[3…] uuid, payload, metadata of
 * each message.
 * Reply: the entry ids, in order.
 */
export const publish = script<[stream: string], ReadonlyArray<string | number | Buffer>, Array<string>>()(
  "Publisher.publish",
  `local ids = {}
for i = 3, #ARGV, 3 do
  ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', 'uuid', ARGV[i], 'payload', ARGV[i + 1], 'metadata', ARGV[i + 2])
end
local maxlen = tonumber(ARGV[1])
if maxlen > 0 then redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', maxlen) end
redis.call('PUBLISH', ARGV[2], #ids)
return ids`
)

/**
 * Moves one pending message to the dead-letter stream and acknowledges it on the source, in one step. An entry that
 * was trimmed away is only acknowledged.
 * KEYS[1] source stream, KEYS[2] dead-letter stream (same hash tag); ARGV[1] group, ARGV[2] entry id, ARGV[3] reason,
 * ARGV[4] source topic, ARGV[5] consumer, ARGV[6] deliveries, ARGV[7] time (ISO), ARGV[8] dead-letter max length,
 * ARGV[9] the dead-letter topic's wake channel.
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
    wakeChannel: string
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
