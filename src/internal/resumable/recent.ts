/**
 * The stored JSON of the chunks a run's writer wrote last, kept for a failover that loses them (asynchronous
 * replication: the new master may be behind what the old one acknowledged). Kept compactly: one string per batch,
 * its chunks separated by newlines (JSON text from `JSON.stringify` never holds one unescaped), since a run held open
 * keeps them as long as it lives. At least the last `keep` chunks are kept, at most about twice as many.
 *
 * @internal
 */

/** The recent chunks of one writer. */
export interface Recent {
  /** Records the JSON of chunks just written, oldest first. */
  readonly add: (texts: ReadonlyArray<string>) => void
  /** Removes the last `count` chunks and returns them, oldest first; undefined when fewer are kept. */
  readonly takeLast: (count: number) => ReadonlyArray<string> | undefined
}

/** Keeps at least the last `keep` chunks. */
export const make = (keep: number): Recent => {
  /** The kept batches, oldest first: their chunks' JSON joined by newlines, and how many chunks each holds. */
  let batches: Array<{ readonly text: string; readonly count: number }> = []
  let kept = 0
  return {
    add: (texts) => {
      if (texts.length === 0) return
      batches.push({ text: texts.join("\n"), count: texts.length })
      kept += texts.length
      // drop the oldest batches while what is left still holds `keep` chunks
      let oldest = batches[0]
      while (oldest !== undefined && kept - oldest.count >= keep) {
        kept -= oldest.count
        batches.shift()
        oldest = batches[0]
      }
    },
    takeLast: (count) => {
      if (count > kept) return undefined
      const texts = batches.flatMap((batch) => batch.text.split("\n"))
      const left = texts.slice(0, texts.length - count)
      batches = left.length === 0 ? [] : [{ text: left.join("\n"), count: left.length }]
      kept = left.length
      return texts.slice(texts.length - count)
    }
  }
}
