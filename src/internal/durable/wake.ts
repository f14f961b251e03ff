/**
 * Wake-ups of live readers: every write that moves a stream's tail (or deletes it) publishes on the stream's channel,
 * whichever instance made it; a reader listens on it (through the client's one subscriber connection) before it reads,
 * so that nothing written after its read goes unheard, and waits for the next announcement or its timeout. A
 * reconnect of the subscriber connection (announcements meanwhile are lost) wakes it too: it reads again.
 *
 * @internal
 */
import { Duration, Effect, type Scope } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import type { RedisError } from "../../RedisError.js"

/** Waits for the next announcement since the previous wait (true), or the timeout (false). */
export type Wait = (timeout: Duration.Input) => Effect.Effect<boolean>

/** Listens on `channel` until the scope closes (confirmed by Redis when this returns). */
export const listen = (redis: RedisClient.Service, channel: string): Effect.Effect<Wait, RedisError, Scope.Scope> =>
  Effect.gen(function* () {
    let heard = false
    let resume: ((woke: Effect.Effect<boolean>) => void) | undefined
    yield* redis.listen([channel], () => {
      const waiting = resume
      resume = undefined
      if (waiting === undefined) heard = true
      else waiting(Effect.succeed(true))
    })
    const next = Effect.callback<boolean>((callback) => {
      if (heard) {
        heard = false
        callback(Effect.succeed(true))
        return
      }
      resume = callback
      return Effect.sync(() => void (resume = undefined))
    })
    return (timeout) =>
      next.pipe(
        Effect.timeoutOrElse({ duration: Duration.fromInputUnsafe(timeout), orElse: () => Effect.succeed(false) })
      )
  })
