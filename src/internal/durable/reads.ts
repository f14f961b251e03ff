/**
 * Reads of one instance collapsed: the reads submitted together (the long-polls and SSE responses that one append woke
 * at once, the readers that arrived in one turn) go as one batch, and identical ones (same stream, offset, size and
 * TTL reset) share one Redis call. A hundred readers waiting at a stream's tail cost one read when it moves.
 *
 * @internal
 */
import { Effect, Exit, type Scope } from "effect"
import type { ReadResult } from "../../DurableStreams.js"
import type { DurableStreamsError } from "../../DurableStreamsError.js"
import * as Batcher from "../batcher.js"
import type * as Offsets from "./offsets.js"
import type { Store } from "./store.js"

/** One read. */
export interface Read {
  readonly name: string
  readonly requested: Offsets.Requested
  readonly maxBytes: number
  readonly touch: boolean
}

const keyOf = (read: Read) =>
  `${read.requested._tag === "At" ? `${read.requested.position.ms}-${read.requested.position.seq}` : read.requested._tag}\u0000${read.maxBytes}\u0000${read.touch}\u0000${read.name}`

/** Collapses the reads of `store` for as long as the scope lives. */
export const make = (
  store: Store,
  scope: Scope.Scope
): ((read: Read) => Effect.Effect<ReadResult, DurableStreamsError>) => {
  const batcher = Batcher.make<Read, ReadResult, DurableStreamsError>({
    scope,
    run: (batch) => {
      const unique = new Map<string, Read>()
      for (const read of batch) unique.set(keyOf(read), read)
      return Effect.map(
        Effect.forEach(
          [...unique],
          ([key, read]) =>
            Effect.map(Effect.exit(store.read(read.name, read.requested, read)), (exit) => [key, exit] as const),
          { concurrency: "unbounded" }
        ),
        (exits) => {
          const byKey = new Map<string, Exit.Exit<ReadResult, DurableStreamsError>>(exits)
          return batch.map((read) => byKey.get(keyOf(read)) ?? Exit.die(new Error("a collapsed read got no result")))
        }
      )
    }
  })
  return batcher.submit
}
