/**
 * The protocol's SSE events: `data` events carrying a read's entries (text as is, one `data:` line per line, so that
 * no payload can end an event or forge another; a JSON array in JSON mode; base64 for other content types) and
 * `control` events carrying the next offset, the cursor and the up-to-date and closed flags.
 *
 * @internal
 */
import { jsonArray } from "./body.js"

/** The `data` event of a read's entries. */
export const dataEvent = (entries: ReadonlyArray<Uint8Array>, json: boolean, text: boolean): string => {
  const payload = json
    ? jsonArray(entries).toString("utf8")
    : text
      ? Buffer.concat(entries).toString("utf8")
      : Buffer.concat(entries).toString("base64")
  const lines = payload.split(/\r\n|\r|\n/)
  // a reader drops one space after `data:`: a line that starts with one gets another
  return `event: data\n${lines.map((line) => (line.startsWith(" ") ? `data: ${line}` : `data:${line}`)).join("\n")}\n\n`
}

/** What a control event says. */
export interface Control {
  readonly nextOffset: string
  readonly cursor: string | undefined
  readonly upToDate: boolean
  readonly closed: boolean
}

/** The `control` event: no cursor once closed. */
export const controlEvent = (control: Control): string => {
  const body: Record<string, unknown> = { streamNextOffset: control.nextOffset }
  if (control.closed) {
    body.streamClosed = true
    body.upToDate = true
  } else {
    if (control.cursor !== undefined) body.streamCursor = control.cursor
    if (control.upToDate) body.upToDate = true
  }
  return `event: control\ndata:${JSON.stringify(body)}\n\n`
}
