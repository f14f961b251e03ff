/**
 * A small SSE client over `fetch` for the HTTP tests: reads events until the response ends or `stopAfter` says so
 * (then it aborts the request, like a client that goes away).
 */
import { Effect } from "effect"

/** One received event. */
export interface SseEvent {
  readonly event: string
  readonly id: string | undefined
  readonly data: string
}

const parse = (block: string): SseEvent | undefined => {
  let event = "message"
  let id: string | undefined
  const data: Array<string> = []
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue
    const colon = line.indexOf(":")
    const field = colon === -1 ? line : line.slice(0, colon)
    const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "")
    if (field === "event") event = value
    else if (field === "id") id = value
    else if (field === "data") data.push(value)
  }
  return data.length === 0 ? undefined : { event, id, data: data.join("\n") }
}

/** The response status and the events read. */
export interface SseResult {
  readonly status: number
  readonly events: ReadonlyArray<SseEvent>
  readonly body: string
}

/** Sends the request and collects events; stops (aborting) when `stopAfter` returns true for the events so far. */
export const collect = (
  url: string,
  init: RequestInit = {},
  stopAfter: (events: ReadonlyArray<SseEvent>) => boolean = () => false
): Effect.Effect<SseResult> =>
  Effect.promise(async () => {
    const abort = new AbortController()
    const response = await fetch(url, { ...init, signal: abort.signal })
    const events: Array<SseEvent> = []
    if (!(response.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
      return { status: response.status, events, body: await response.text() }
    }
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    const decoder = new TextDecoder()
    let buffer = ""
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        buffer += decoder.decode(value, { stream: true })
        let end = buffer.indexOf("\n\n")
        while (end !== -1) {
          const event = parse(buffer.slice(0, end))
          buffer = buffer.slice(end + 2)
          end = buffer.indexOf("\n\n")
          if (event === undefined) continue
          events.push(event)
          if (stopAfter(events)) {
            abort.abort()
            return { status: response.status, events, body: "" }
          }
        }
      }
    } catch (error) {
      if (!abort.signal.aborted) throw error
    }
    return { status: response.status, events, body: "" }
  })
