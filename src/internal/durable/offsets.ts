/**
 * Durable Streams offsets: `<16 digits>_<16 digits>`, the two parts of the Redis stream entry id after which a read
 * starts (`<ms>-<seq>`), zero-padded so that offsets sort as strings in the order of the stream. A stream of this
 * server numbers its entries by position (bytes, or messages in JSON mode): the entry ending at position `p` has the
 * id `p-0`; a ResumableStream run keeps its own ids. `-1` (the start) and `now` (the tail) are the protocol's
 * sentinels and never produced.
 *
 * @internal
 */

/** A position in a stream: the id of the entry a read starts after (`{ ms: 0, seq: 0 }`: the start). */
export interface Position {
  readonly ms: bigint
  readonly seq: bigint
}

/** The start of every stream. */
export const start: Position = { ms: 0n, seq: 0n }

const width = 16
const maxPart = 10n ** BigInt(width) - 1n
const pattern = /^(\d{16})_(\d{16})$/

/** The offset of a position. */
export const format = (position: Position): string =>
  `${position.ms.toString().padStart(width, "0")}_${position.seq.toString().padStart(width, "0")}`

/** The offset of position `p` of a stream of this server (its entry id `p-0`). */
export const ofPosition = (position: number): string => format({ ms: BigInt(position), seq: 0n })

/** The position of an offset, or undefined when it is not one this server makes. */
export const parse = (offset: string): Position | undefined => {
  const match = pattern.exec(offset)
  if (match === null) return undefined
  const ms = BigInt(match[1]!)
  const seq = BigInt(match[2]!)
  return ms > maxPart || seq > maxPart ? undefined : { ms, seq }
}

/** The Redis entry id of a position. */
export const entryId = (position: Position): string => `${position.ms}-${position.seq}`

/** The position of a Redis entry id (`ms-seq`). */
export const ofEntryId = (id: string): Position => {
  const dash = id.indexOf("-")
  return { ms: BigInt(id.slice(0, dash)), seq: BigInt(id.slice(dash + 1)) }
}

/** What a request's `offset` asks for: the start, the tail (`now`), or a position. */
export type Requested =
  { readonly _tag: "Start" } | { readonly _tag: "Now" } | { readonly _tag: "At"; readonly position: Position }

/** Reads a request's `offset` parameter (absent: the start); undefined when malformed. */
export const requested = (offset: string | undefined): Requested | undefined => {
  if (offset === undefined || offset === "-1") return { _tag: "Start" }
  if (offset === "now") return { _tag: "Now" }
  const position = parse(offset)
  return position === undefined ? undefined : { _tag: "At", position }
}
