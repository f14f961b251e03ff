/**
 * What a dead letter keeps of the failure that put it there: a one-line reason, and the error itself as JSON (its
 * tag, name, message and fields), bounded in size, with fields that look like credentials redacted.
 *
 * @internal
 */
/** The most bytes of JSON a dead letter keeps of an error. */
export const maxErrorBytes = 4096

/** Field names whose values are never written: they look like credentials. */
const secretName =
  /passw(or)?d|passphrase|secret|token|api[-_]?key|authorization|credential|cookie|session[-_]?id|private[-_]?key/i

/** The value written in place of a redacted field. */
const redacted = "[redacted]"

/** How deep nested objects and arrays are followed. */
const maxDepth = 4

/** `value` as plain JSON data: credentials redacted, functions and symbols dropped, cycles and depth cut. */
const plain = (value: unknown, depth: number, seen: Set<object>): unknown => {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value
  if (typeof value === "number") return Number.isFinite(value) ? value : String(value)
  if (typeof value === "bigint") return value.toString()
  if (typeof value !== "object") return undefined
  if (seen.has(value) || depth >= maxDepth) return "[…]"
  seen.add(value)
  if (value instanceof Date) return value.toISOString()
  if (Array.isArray(value)) return value.slice(0, 20).map((item) => plain(item, depth + 1, seen) ?? null)
  const out: Record<string, unknown> = {}
  if (value instanceof Error) {
    out.name = value.name
    out.message = value.message
  }
  for (const [name, field] of Object.entries(value)) {
    if (name === "stack") continue
    const converted = secretName.test(name) ? redacted : plain(field, depth + 1, seen)
    if (converted !== undefined) out[name] = converted
  }
  return out
}

/** `error` as JSON of at most `maxErrorBytes` (its tag, name and message kept when its fields do not fit). */
export const errorJson = (error: unknown): string => {
  const data = plain(error, 0, new Set())
  const json = JSON.stringify(data ?? null)
  if (Buffer.byteLength(json) <= maxErrorBytes) return json
  const record =
    typeof data === "object" && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : {}
  const kept = Object.fromEntries(
    ["_tag", "name", "message"].flatMap((name) =>
      typeof record[name] === "string" ? [[name, (record[name] as string).slice(0, 1000)]] : []
    )
  )
  return JSON.stringify({ ...kept, truncated: true })
}

/** A one-line reason for a dead letter: `Tag: message`, the tag alone when there is no message, or the message. */
export const reasonOf = (error: unknown): string => {
  const record = typeof error === "object" && error !== null ? (error as Record<string, unknown>) : undefined
  const tag = typeof record?._tag === "string" ? record._tag : error instanceof Error ? error.name : undefined
  const message = error instanceof Error ? error.message : typeof error === "string" ? error : ""
  const reason = tag === undefined ? message || String(error) : message === "" ? tag : `${tag}: ${message}`
  return reason.slice(0, 1000)
}
