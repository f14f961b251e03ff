/**
 * A result one fiber waits for, given from outside it (a batch's reply): a `Deferred` for a single waiter, without
 * the list of waiters, the cleanup effect and the finalizer a `Deferred.await` costs on every request.
 *
 * @internal
 */
import { Effect } from "effect"

/** A waiter: its result once given, and the waiting fiber's resume once it waits. */
export interface Waiter<A, E> {
  result: Effect.Effect<A, E> | undefined
  resume: ((result: Effect.Effect<A, E>) => void) | undefined
}

/** A waiter with no result yet. */
export const make = <A, E>(): Waiter<A, E> => ({ result: undefined, resume: undefined })

/** Gives the waiter its result (the first one given counts); resumes its fiber if it waits already. */
export const complete = <A, E>(waiter: Waiter<A, E>, result: Effect.Effect<A, E>): void => {
  if (waiter.result !== undefined) return
  waiter.result = result
  waiter.resume?.(result)
}

/** Waits for the waiter's result (at once if it has one). An interrupted wait just stops waiting. */
export const wait = <A, E>(waiter: Waiter<A, E>): Effect.Effect<A, E> =>
  Effect.callback<A, E>((resume) => {
    if (waiter.result !== undefined) resume(waiter.result)
    else waiter.resume = resume
  })
