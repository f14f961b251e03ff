/**
 * How a message lives in a stream entry, and the keys of a topic.
 *
 * Entry fields: `uuid`, `payload` (the bytes as they are), `metadata` (a JSON object of strings). A dead letter adds
 * `dead_reason`, `dead_topic`, `dead_id`, `dead_group`, `dead_consumer`, `dead_deliveries`, `dead_at`, and `dead_error`
 * (the error as JSON) when one was kept.
 *
 * Keys: topic `T` is the stream `{prefix}{T}` (the topic name is a hash tag); its dead letters go to the stream of
 * the topic `T:dead`, which maps to `{prefix}{T}:dead`: the same hash tag, so a message moves to it atomically on a
 * Cluster. Every trailing `:dead` stays out of the tag, so the dead letters of `T:dead` (`{prefix}{T}:dead:dead`)
 * are in its slot too.
 *
 * @internal
 */
import type { DeadLetterInfo, Message } from "../../Message.js"
import { traceparentKey } from "../trace.js"

/** The suffix of a dead-letter topic. */
export const deadSuffix = ":dead"

/** The stream key of a topic: its name less every trailing `:dead` is the hash tag. */
export const keyOf = (prefix: string, topic: string): string => {
  let base = topic
  while (base.endsWith(deadSuffix) && base.length > deadSuffix.length) base = base.slice(0, -deadSuffix.length)
  return `${prefix}{${base}}${topic.slice(base.length)}`
}

/**
 * The channel on which publishes to the stream `key` wake its subscribers (the publish script sends the number of
 * entries it appended).
 */
export const wakeChannelOf = (key: string): string => `${key}:new`

/**
 * The sorted set of a group's messages waiting for a redelivery (by when they are due); same hash tag as the stream.
 */
export const retryKeyOf = (key: string, group: string): string => `${key}:retry:${group}`

/** The consumer that holds a group's messages while they wait for their redelivery (see `retryKeyOf`). */
export const retryHolder = "~retry"

/** The milliseconds part of an entry id (the time the entry was added, by the server's clock). */
export const idTime = (id: string): number => Number(id.slice(0, Math.max(0, id.indexOf("-"))))

/** The dead-letter topic of a topic. */
export const deadTopicOf = (topic: string): string => `${topic}${deadSuffix}`

/**
 * The uuid, payload and metadata of a message as stored (the publish script names the fields); `traceparent`, when
 * given, joins the metadata unless the message carries one of its own (spliced into the JSON: no copy of the message).
 */
export const fieldsOf = (
  message: Message,
  traceparent: string | undefined
): [uuid: string, payload: Buffer, metadata: string] => [
  message.uuid,
  Buffer.isBuffer(message.payload)
    ? message.payload
    : Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength),
  metadataJson(message.metadata, traceparent)
]

/** The metadata as JSON, with `traceparent` added last unless it has one (the JSON of `{ ...metadata, traceparent }`). */
const metadataJson = (metadata: Message["metadata"], traceparent: string | undefined): string => {
  const json = JSON.stringify(metadata)
  if (traceparent === undefined || traceparentKey in metadata) return json
  const entry = `"${traceparentKey}":${JSON.stringify(traceparent)}}`
  return json.length === 2 ? `{${entry}` : `${json.slice(0, -1)},${entry}`
}

/** A raw entry of a group read: its id and fields as Buffers. */
export type RawEntry = readonly [id: Buffer | string, fields: ReadonlyArray<Buffer> | null]

/** A decoded entry: the message (and how it came to the dead letters, for a dead letter), or why it is not one. */
export type Decoded =
  { readonly message: Message; readonly deadLettered: DeadLetterInfo | undefined } | { readonly problem: string }

/** The dead-letter fields of an entry, when it has them. */
const deadLetterInfo = (dead: ReadonlyMap<string, string> | undefined): DeadLetterInfo | undefined => {
  const reason = dead?.get("dead_reason")
  if (dead === undefined || reason === undefined) return undefined
  return {
    reason,
    topic: dead.get("dead_topic") ?? "",
    id: dead.get("dead_id") ?? "",
    group: dead.get("dead_group") ?? "",
    consumer: dead.get("dead_consumer") ?? "",
    deliveries: Number(dead.get("dead_deliveries") ?? 0),
    at: dead.get("dead_at") ?? "",
    error: errorOf(dead.get("dead_error"))
  }
}

/** The `dead_error` field as data; undefined when absent or not JSON. */
export const errorOf = (json: string | undefined): unknown => {
  if (json === undefined) return undefined
  try {
    return JSON.parse(json)
  } catch {
    return undefined
  }
}

/** The field names of a message as bytes, compared without decoding each name to a string. */
const uuidName = Buffer.from("uuid")
const payloadName = Buffer.from("payload")
const metadataName = Buffer.from("metadata")
const deadPrefix = Buffer.from("dead_")

/** Whether `name` starts with the bytes of `prefix` (equals it when `exact`). */
const startsWith = (name: Buffer, prefix: Buffer, exact: boolean): boolean => {
  if (exact ? name.length !== prefix.length : name.length < prefix.length) return false
  for (let i = 0; i < prefix.length; i++) if (name[i] !== prefix[i]) return false
  return true
}

/** Decodes the fields of an entry into a message. */
export const decode = (fields: ReadonlyArray<Buffer>): Decoded => {
  let uuid: string | undefined
  let payload: Uint8Array | undefined
  let metadata: Record<string, string> = {}
  let dead: Map<string, string> | undefined
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i] as Buffer
    const value = fields[i + 1] as Buffer
    if (startsWith(name, uuidName, true)) uuid = value.toString()
    else if (startsWith(name, payloadName, true)) payload = value
    else if (startsWith(name, metadataName, true)) {
      try {
        const parsed: unknown = JSON.parse(value.toString())
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
          return { problem: "metadata is not an object" }
        metadata = parsed as Record<string, string>
      } catch {
        return { problem: "metadata is not JSON" }
      }
    } else if (startsWith(name, deadPrefix, false)) (dead ??= new Map()).set(name.toString(), value.toString())
  }
  if (uuid === undefined || payload === undefined) return { problem: "the entry has no uuid or payload field" }
  return { message: { uuid, payload, metadata }, deadLettered: deadLetterInfo(dead) }
}
