/**
 * The sink's one write: a batch of encoded events appended to the stream by one script call, then the stream trimmed
 * once. A script runs atomically, and Redis checks `maxmemory` at a script's first write only, so under memory
 * pressure a batch is refused whole (`OOM`), never half written. `MINID` cut-offs come from the server's clock.
 *
 * @internal
 */
import { script } from "../lua.js"

/** How the stream is trimmed after each batch: not at all, to a length (`MAXLEN`), or to an age (`MINID`). */
export type Trim =
  | { readonly kind: "none" }
  | { readonly kind: "maxlen"; readonly maxLength: number; readonly approximate: boolean }
  | { readonly kind: "minid"; readonly maxAgeMs: number; readonly approximate: boolean }

/** The script's leading arguments for `trim`: kind, `~` or `=`, threshold. */
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
 * Appends events, each as an entry with one field `event` holding its JSON, then trims.
 * KEYS[1] stream; ARGV[1] trim kind (`MAXLEN`, `MINID` or empty), ARGV[2] `~` or `=`, ARGV[3] max length or max age
 * in ms, ARGV[4…] the events' JSON. Reply: the id of the last entry added.
 */
export const append = script<[stream: string], ReadonlyArray<string | number>, string>()(
  "EventSink.append",
  `local last
for i = 4, #ARGV do
  last = redis.call('XADD', KEYS[1], '*', 'event', ARGV[i])
end
if ARGV[1] == 'MAXLEN' then
  redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[2], ARGV[3])
elseif ARGV[1] == 'MINID' then
  local t = redis.call('TIME')
  local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[3])
  if cutoff > 0 then redis.call('XTRIM', KEYS[1], 'MINID', ARGV[2], string.format('%d', cutoff)) end
end
return last`
)
