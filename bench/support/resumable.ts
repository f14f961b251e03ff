/**
 * What the ResumableStream bench and its crashing producer (a child process) share: the chunks, our stream definition,
 * the peer's producer, and pauses that hold a producer halfway through its run.
 */
import { Effect, Schema } from "effect"
import * as ResumableStream from "../../dist/ResumableStream.js"

/** Chunk `i`: ends with exactly one space, so a peer reader that gets the backlog as one string can count chunks. */
export const chunkText = (i: number) => `token-${i} `

/** Chunks in `text` (a concatenation of whole chunks). */
export const chunksIn = (text: string) => text.split(" ").length - 1

/** A producer holds before chunk `at`: it calls `reached` once everything before is stored, then waits for `until`. */
export interface Pause {
  readonly at: number
  readonly reached: () => void
  readonly until: Promise<void>
}

/** Pauses by id: our runner finds its pause through its input (an input must be data, not a promise). */
export const pauses = new Map<string, Pause>()

/** Ours: a runner appending `n` chunks one by one, each awaited; with `pause` set, held as `pauses.get(pause)` says. */
export const Tail = ResumableStream.define({
  name: "tail",
  input: Schema.Struct({ n: Schema.Number, pause: Schema.String }),
  chunk: Schema.String,
  run: ({ n, pause }, writer) =>
    Effect.gen(function* () {
      const held = pauses.get(pause)
      for (let i = 0; i < n; i++) {
        if (held !== undefined && i === held.at) {
          yield* writer.flush
          held.reached()
          yield* Effect.promise(() => held.until)
        }
        yield* writer.append(chunkText(i))
      }
    })
})

/** The peer's producer (resumable-stream's `makeStream`): a ReadableStream of `n` chunks, one per pull, held by `pause`. */
export const peerChunks = (n: number, pause?: Pause) => {
  let i = 0
  return new ReadableStream<string>({
    pull: async (controller) => {
      if (pause !== undefined && i === pause.at) {
        pause.reached()
        await pause.until
      }
      if (i < n) controller.enqueue(chunkText(i++))
      else controller.close()
    }
  })
}

/** Reads a peer stream to its end; returns how many chunks it delivered. */
export const countPeerChunks = async (stream: ReadableStream<string>) => {
  const reader = stream.getReader()
  let count = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return count
    count += chunksIn(value)
  }
}
