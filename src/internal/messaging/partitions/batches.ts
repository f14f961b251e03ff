/**
 * A partition's messages in batches: up to `maxBatch` messages, waiting at most `maxWait` after the first, one batch
 * of the partition at a time (so a key's messages stay in order), each batch settled together.
 *
 * @internal
 */
import { type Cause, Effect, Queue, type Scope } from "effect"
import type { MessagingError } from "../../../Message.js"
import type { Received } from "../../../Subscriber.js"
import type { Activity, Attempts } from "./attempts.js"

/** Starts, in `scope`, the loop that collects batches from `messages` and runs `handle` on each. */
export const run = (options: {
  readonly messages: Queue.Dequeue<Received, MessagingError | Cause.Done>
  readonly maxBatch: number
  readonly maxWaitMillis: number
  readonly handle: (batch: ReadonlyArray<Received>, attempt: number) => Effect.Effect<void, unknown>
  readonly attempts: Attempts
  readonly activity: Activity
  readonly scope: Scope.Scope
}): Effect.Effect<void> => {
  const { messages, maxBatch, maxWaitMillis, attempts } = options
  /** The next batch: the first message, then what comes within the wait, up to `maxBatch`. */
  const collect = Effect.gen(function* () {
    const batch: Array<Received> = [yield* Queue.take(messages)]
    const deadline = Date.now() + maxWaitMillis
    while (batch.length < maxBatch) {
      const more = yield* Queue.takeBetween(messages, 0, maxBatch - batch.length)
      batch.push(...more)
      const left = deadline - Date.now()
      if (batch.length >= maxBatch || left <= 0) break
      if (more.length === 0) {
        const next = yield* Effect.timeoutOption(Queue.take(messages), left)
        if (next._tag === "None") break
        batch.push(next.value)
      }
    }
    return batch
  })
  return Effect.gen(function* () {
    while (!options.activity.stopping()) {
      const batch = yield* collect
      yield* attempts.withRetries((attempt) => attempts.attemptOnce(batch, (n) => options.handle(batch, n), attempt))
    }
  }).pipe(Effect.ignore, Effect.forkIn(options.scope), Effect.asVoid)
}
