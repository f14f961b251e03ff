/**
 * Waiting for the microtasks queued so far: what fibers resumed together (by one reply) or started together (by one
 * scheduler turn) submit before a batch leaves, without the turn of the event loop a scheduler yield costs.
 *
 * @internal
 */
import { Effect } from "effect"

/** Resumes once the microtasks queued so far ran. */
export const afterMicrotasks: Effect.Effect<void> = Effect.callback<void>((resume) => {
  queueMicrotask(() => resume(Effect.void))
})
