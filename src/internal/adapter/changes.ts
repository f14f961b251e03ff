/**
 * A stream's change events as subscribers get them: each raw event of the change log (or the group's channel) as a
 * typed change of the stream's items; an event whose item does not decode is skipped with a warning.
 *
 * @internal
 */
import { Effect, Result } from "effect"
import type { ChangeEvent, CustomEvent } from "../../StreamAdapter.js"
import type { StreamAdapterError } from "../../StreamAdapterError.js"
import type { StreamContext } from "./context.js"
import type { RawEvent } from "./subscription.js"

/** A raw event as a typed change; undefined for one of another item, or the error of one that does not decode. */
const changeOf = <A>(
  context: StreamContext<A>,
  groupId: string,
  onlyId: string | undefined,
  raw: RawEvent
): ChangeEvent<A> | StreamAdapterError | undefined => {
  const position = { epoch: raw.epoch, version: raw.version }
  if (raw.type === "reset") return { type: "reset", position, groupId, reason: raw.reason ?? "restarted" }
  if (raw.type === "clear") return { type: "clear", position, groupId }
  if (onlyId !== undefined && raw.id !== onlyId) return undefined
  if (raw.type === "event") {
    const event = raw.data as CustomEvent
    return { type: "event", position, groupId, ...(raw.id === undefined ? {} : { id: raw.id }), event }
  }
  const id = raw.id ?? ""
  const data = raw.data === undefined ? undefined : context.decodeValue(groupId, id, raw.data)
  if (data !== undefined && Result.isFailure(data)) return data.failure
  const previous = raw.previous === undefined ? undefined : context.decodeValue(groupId, id, raw.previous)
  if (previous !== undefined && Result.isFailure(previous)) return previous.failure
  switch (raw.type) {
    case "create":
      return { type: "create", position, groupId, id, data: data?.success as A }
    case "update":
      return { type: "update", position, groupId, id, data: data?.success as A, previous: previous?.success as A }
    case "expired":
      return { type: "expired", position, groupId, id, previous: previous?.success as A }
    default:
      return { type: "delete", position, groupId, id, previous: previous?.success as A }
  }
}

/** A batch of raw events of `groupId` (of item `onlyId` alone, when given) as typed changes. */
export const changesOf =
  <A>(context: StreamContext<A>, groupId: string, onlyId: string | undefined) =>
  (events: ReadonlyArray<RawEvent>): Effect.Effect<ReadonlyArray<ChangeEvent<A>>> => {
    const changes: Array<ChangeEvent<A>> = []
    const invalid: Array<StreamAdapterError> = []
    for (const raw of events) {
      const change = changeOf(context, groupId, onlyId, raw)
      if (change !== undefined && "_tag" in change) invalid.push(change)
      else if (change !== undefined) changes.push(change)
    }
    if (invalid.length === 0) return Effect.succeed(changes)
    return Effect.as(
      Effect.forEach(invalid, (bad) => Effect.logWarning(`StreamAdapter: an event ${bad.message}; skipped`), {
        discard: true
      }),
      changes
    )
  }
