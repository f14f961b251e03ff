/**
 * The sink's event format: StreamLL's event schema, stored as JSON in one stream-entry field `event`, so the seed's
 * consumers (`json.loads(fields["event"])`) read our streams unchanged.
 *
 * @internal
 */
import { randomUUID } from "node:crypto"
import { Schema } from "effect"
import * as Reasons from "../../EventSinkError.js"
import type { EventSinkError } from "../../EventSinkError.js"
import { fail } from "./error.js"

/**
 * A stored event, as StreamLL defines it: a unique `event_id` (consumers deduplicate by it: a batch retried after a
 * lost reply can be written twice), `event_type` (`start`, `end`, `error`, `token`, `log`, or any of yours), ISO
 * `timestamp`, the `execution_id` that groups the events of one run, the `operation`, and free-form `data` and `tags`.
 *
 * @since 0.1.0
 */
export const Event = Schema.Struct({
  event_id: Schema.String,
  event_type: Schema.String,
  timestamp: Schema.String,
  execution_id: Schema.NullOr(Schema.String),
  operation: Schema.NullOr(Schema.String),
  data: Schema.Record(Schema.String, Schema.Unknown),
  tags: Schema.Record(Schema.String, Schema.String)
})

/**
 * A stored event: see {@link Event}.
 *
 * @since 0.1.0
 */
export type Event = typeof Event.Type

/**
 * What `emit` takes: an `event_type` and whatever else is known. `event_id` defaults to a random UUID, `timestamp`
 * to now, `execution_id` and `operation` to null, `data` to `{}`; `tags` are added to the sink's own `tags`.
 *
 * @since 0.1.0
 */
export interface EventInput {
  readonly event_type: string
  readonly event_id?: string | undefined
  readonly timestamp?: Date | string | undefined
  readonly execution_id?: string | null | undefined
  readonly operation?: string | null | undefined
  readonly data?: Readonly<Record<string, unknown>> | undefined
  readonly tags?: Readonly<Record<string, string>> | undefined
}

/** The name of the stream-entry field that holds an event's JSON. */
export const field = "event"

/** Completes `input` into an {@link Event} and encodes it as JSON; throws when it cannot be encoded. */
export const encode = (input: EventInput, tags: Readonly<Record<string, string>>): string => {
  const timestamp = input.timestamp ?? new Date()
  const event: Event = {
    event_id: input.event_id ?? randomUUID(),
    event_type: input.event_type,
    timestamp: typeof timestamp === "string" ? timestamp : timestamp.toISOString(),
    execution_id: input.execution_id ?? null,
    operation: input.operation ?? null,
    data: input.data ?? {},
    tags: input.tags === undefined ? tags : { ...tags, ...input.tags }
  }
  return JSON.stringify(event)
}

/** Encodes events, or explains which one cannot be (not JSON, or larger than `maxEventBytes`). */
export const encodeAll = (
  events: ReadonlyArray<EventInput>,
  tags: Readonly<Record<string, string>>,
  maxEventBytes: number
): Array<string> | EventSinkError => {
  const encoded: Array<string> = []
  for (const event of events) {
    let json: string
    try {
      json = encode(event, tags)
    } catch (error) {
      return fail(Reasons.InvalidEvent, `an event of type ${event.event_type} cannot be encoded as JSON: ${error}`)
    }
    // a UTF-16 unit is at most 3 UTF-8 bytes: count bytes only when it could matter
    if (json.length * 3 > maxEventBytes && Buffer.byteLength(json) > maxEventBytes) {
      return fail(Reasons.InvalidEvent, `an event of type ${event.event_type} is larger than ${maxEventBytes} bytes`)
    }
    encoded.push(json)
  }
  return encoded
}
