/**
 * What an append or a create writes, from its body: in JSON mode the messages (a top-level array is flattened one
 * level, each element one message, kept as the exact text it was sent as: no number or string is re-encoded), else
 * the body's bytes as one item.
 *
 * @internal
 */

/** A stream's media type: its content type without parameters, lower case (`Application/JSON; charset=utf-8` → `application/json`). */
export const mediaType = (contentType: string): string => (contentType.split(";")[0] ?? "").trim().toLowerCase()

/** Whether a media type is the protocol's JSON mode. */
export const isJson = (media: string): boolean => media === "application/json"

/** Whether SSE data events of a media type are text (else base64). */
export const isText = (media: string): boolean => isJson(media) || media.startsWith("text/")

/** The items of a body, or why it cannot be written. */
export type Items =
  | { readonly _tag: "Items"; readonly items: ReadonlyArray<Buffer> }
  | { readonly _tag: "Invalid"; readonly message: string }

const whitespace = new Set([0x20, 0x09, 0x0a, 0x0d])

/** The exact text of each element of a top-level JSON array (`text` is valid JSON and starts with `[`). */
const elements = (text: string): Array<string> => {
  const found: Array<string> = []
  let depth = 0
  let inString = false
  let start = 1
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) depth++
    else if (c === 0x5d || c === 0x7d) {
      depth--
      if (depth === 0) {
        const last = text.slice(start, i).trim()
        if (last !== "") found.push(last)
        break
      }
    } else if (c === 0x2c && depth === 1) {
      found.push(text.slice(start, i).trim())
      start = i + 1
    }
  }
  return found
}

/**
 * The items of a body for a stream of media type `media`. JSON mode: invalid JSON is refused, and so is an empty
 * array when `allowEmptyArray` is false (an append that appends nothing); an empty body is no item.
 */
export const items = (body: Uint8Array, media: string, allowEmptyArray: boolean): Items => {
  if (body.length === 0) return { _tag: "Items", items: [] }
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  if (!isJson(media)) return { _tag: "Items", items: [bytes] }
  const text = bytes.toString("utf8")
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { _tag: "Invalid", message: "the body is not valid JSON" }
  }
  if (!Array.isArray(value)) return { _tag: "Items", items: [Buffer.from(text.trim(), "utf8")] }
  if (value.length === 0 && !allowEmptyArray) {
    return { _tag: "Invalid", message: "an empty JSON array appends nothing" }
  }
  let first = 0
  while (first < text.length && whitespace.has(text.charCodeAt(first))) first++
  return { _tag: "Items", items: elements(text.slice(first)).map((element) => Buffer.from(element, "utf8")) }
}

/** A JSON-mode read's body: the messages as one array. */
export const jsonArray = (messages: ReadonlyArray<Uint8Array>): Buffer => {
  const parts: Array<Uint8Array> = [Buffer.from("[")]
  messages.forEach((message, i) => {
    if (i > 0) parts.push(Buffer.from(","))
    parts.push(message)
  })
  parts.push(Buffer.from("]"))
  return Buffer.concat(parts)
}
