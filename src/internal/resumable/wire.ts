/**
 * Entries of a resumable run as they are stored and announced.
 *
 * A chunk entry has the fields `data` (River's `{"item": …}` JSON) and `seq` (1, 2, 3… per run). The terminal entry
 * has `end: "true"` (what River's readers look for), `status` and `terminal` (JSON: `{ status, error?, reason? }`).
 *
 * @internal
 */

/** What the terminal entry of a run says. */
export interface Terminal {
  readonly status: "completed" | "failed" | "cancelled" | "lost"
  /** The runner's encoded typed failure (status `failed`). */
  readonly error?: unknown
  /** Why the run ended other than by its runner's success or typed failure. */
  readonly reason?: string
  readonly message?: string
}

/** One entry of a run, not decoded yet. */
export type RawEntry =
  | { readonly _tag: "Chunk"; readonly id: string; readonly seq: number; readonly data: string }
  | { readonly _tag: "End"; readonly id: string; readonly seq: number; readonly terminal: Terminal }

const terminalStatuses = new Set(["completed", "failed", "cancelled", "lost"])

/** Parses terminal JSON; an unreadable one counts as a failure of unknown cause. */
export const parseTerminal = (json: string | undefined, status: string | undefined): Terminal => {
  try {
    const value = JSON.parse(json ?? "{}") as Record<string, unknown>
    const found = typeof value.status === "string" ? value.status : status
    if (found !== undefined && terminalStatuses.has(found)) return { ...value, status: found } as Terminal
  } catch {
    // fall through
  }
  if (status === "completed" || status === undefined) return { status: "completed" }
  return { status: "failed", reason: "Unreadable", message: "the terminal entry could not be read" }
}

/** Parses one XRANGE/XREAD entry `[id, [field, value, …]]`. Entries without `seq` (foreign writers) get 0. */
export const parseEntry = (entry: readonly [string, ReadonlyArray<string>]): RawEntry => {
  const [id, list] = entry
  const fields: Record<string, string> = {}
  for (let i = 0; i + 1 < list.length; i += 2) fields[list[i] as string] = list[i + 1] as string
  const seq = Number(fields.seq ?? 0)
  if (fields.end === "true") return { _tag: "End", id, seq, terminal: parseTerminal(fields.terminal, fields.status) }
  return { _tag: "Chunk", id, seq, data: fields.data ?? "null" }
}

/** Parses an announcement; `undefined` when it is malformed (the reader then re-reads from Redis). */
export const parseAnnouncement = (message: string): Array<RawEntry> | undefined => {
  const lines = message.split("\n")
  const entries: Array<RawEntry> = []
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const header = (lines[i] as string).split(" ")
    const payload = lines[i + 1] as string
    const seq = Number(header[0])
    const id = header[1]
    if (header.length !== 3 || !Number.isInteger(seq) || id === undefined) return undefined
    if (header[2] === "c") entries.push({ _tag: "Chunk", id, seq, data: payload })
    else if (header[2] === "t") entries.push({ _tag: "End", id, seq, terminal: parseTerminal(payload, undefined) })
    else return undefined
  }
  return entries
}
