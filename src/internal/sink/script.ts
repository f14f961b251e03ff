/**
 * The sink's one write: a batch of encoded events appended to the stream by one script call, then the stream trimmed
 * once. A script runs atomically, and Redis checks `maxmemory` at a script's first write only, so under memory
 * pressure a batch is refused whole (`OOM`), never half written. `MINID` cut-offs come from the server's clock.
 *
 * @internal
 */
import { make as script } from "../../RedisScript.js"

/** How the stream is trimmed after each batch: not at all, to a length (`MAXLEN`), or to an age (`MINID`). */
export type Trim =
  | { readonly kind: "none" }
  | { readonly kind: "maxlen"; readonly maxLength: number; readonly approximate: boolean }
  | { readonly kind: "minid"; readonly maxAgeMs: number; readonly approximate: boolean }

/** The script's arguments for `trim`: kind, `~` or `=`, threshold. */
export const trimArgs = (trim: Trim): [kind: string, approximate: string, threshold: number] => {
  switch (trim.kind) {
    case "none":
      return ["", "=", 0]
    case "maxlen":
      return ["MAXLEN", trim.approximate ? "~" : "=", trim.maxLength]
    case "minid":
      return ["MINID", trim.approximate ? "~" : "=", trim.maxAgeMs]
  }
}

/**
 * Appends events, each as an entry with one field `event` holding its JSON, then trims. When the stream does not exist
 * (first write, or Redis lost it in a restart) and a group is named, the group is created with it, so consumers never
 * find the stream without their group.
 * KEYS[1] stream; ARGV[1] consumer group or empty, ARGV[2] trim kind (`MAXLEN`, `MINID` or empty), ARGV[3] `~` or
 * `=`, ARGV[4] max length or max age in ms, ARGV[5…] the events' JSON. Reply: the id of the last entry added.
 */
export const append = script<[stream: string], ReadonlyArray<string | number>, string>()(
  "EventSink.append",
  `if ARGV[1] ~= '' and redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
end
local last
for i = 5, #ARGV do
  last = redis.call('XADD', KEYS[1], '*', 'event', ARGV[i])
end
if ARGV[2] == 'MAXLEN' then
  redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[3], ARGV[4])
elseif ARGV[2] == 'MINID' then
  local t = redis.call('TIME')
  local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[4])
  if cutoff > 0 then redis.call('XTRIM', KEYS[1], 'MINID', ARGV[3], string.format('%d', cutoff)) end
end
return last`
)
