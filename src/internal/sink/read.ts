/**
 * Reading a sink's stream back: its entries in id order, page by page, each decoded into a stored event; an entry
 * that is not a sink event is skipped with a warning, or fails the stream (`onInvalid: "fail"`).
 *
 * @internal
 */
import { Effect, Option, Schema, Stream } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import type { Range, StoredEvent } from "../../EventSink.js"
import type { EventSinkError } from "../../EventSinkError.js"
import { decodeFailure, fromRedis } from "./error.js"
import { Event, field } from "./event.js"

const decodeEvent = Schema.decodeUnknownOption(Schema.fromJsonString(Event))

/** An entry id bound of XRANGE for a time: ms since the epoch. */
const bound = (time: Date | number | undefined, fallback: string) =>
  time === undefined ? fallback : String(typeof time === "number" ? time : time.getTime())

/** The events of `streamKey` in `range`. */
export const events = (
  redis: RedisClient.Service,
  streamKey: string,
  range: Range = {}
): Stream.Stream<StoredEvent, EventSinkError> => {
  const pageSize = range.pageSize ?? 1000
  const end = bound(range.to, "+")
  const decode = (
    id: string,
    fields: ReadonlyArray<string>
  ): Effect.Effect<Option.Option<StoredEvent>, EventSinkError> => {
    const index = fields.findIndex((name, i) => i % 2 === 0 && name === field)
    const decoded = index < 0 ? Option.none() : decodeEvent(fields[index + 1])
    if (Option.isSome(decoded)) return Effect.succeed(Option.some({ id, event: decoded.value }))
    const message = `entry ${id} of ${streamKey} is not a sink event`
    return range.onInvalid === "fail"
      ? Effect.fail(decodeFailure(message, id))
      : Effect.as(Effect.logWarning(`EventSink: ${message}; skipped`), Option.none())
  }
  return Stream.paginate(bound(range.from, "-"), (start: string) =>
    redis.send<Array<[id: string, fields: Array<string>]>>("XRANGE", streamKey, start, end, "COUNT", pageSize).pipe(
      Effect.mapError(fromRedis),
      Effect.flatMap((entries) =>
        Effect.map(
          Effect.forEach(entries, ([id, fields]) => decode(id, fields)),
          (decoded) => {
            const last = entries.at(-1)
            const next = entries.length < pageSize || last === undefined ? Option.none() : Option.some(`(${last[0]}`)
            return [decoded.flatMap((entry) => (Option.isSome(entry) ? [entry.value] : [])), next] as const
          }
        )
      )
    )
  )
}
