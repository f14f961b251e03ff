/**
 * The sink's circuit-breaker store: effect's in-memory store, except that an open circuit admits its probe as soon as
 * the client reports Redis back (a reconnect, a new Cluster topology) instead of waiting out its open time. The open
 * time still bounds the wait when nothing is reported (an out-of-memory server stays connected while it refuses).
 *
 * The memory store reads the time from the `Clock`; the early probe is an admission made with a clock moved to the
 * end of the open time, which the store's own logic then turns into its half-open probe (with its transition).
 *
 * @internal
 */
import { Clock, Duration, Effect, type Scope } from "effect"
import * as CircuitBreaker from "effect/persistence/CircuitBreaker"
import type * as RedisClient from "../../RedisClient.js"

/** A clock `ahead` later than `clock`. */
const ahead = (clock: Clock.Clock, by: Duration.Duration): Clock.Clock => {
  const millis = Duration.toMillis(by)
  const shifted = Object.create(clock) as Clock.Clock
  return Object.assign(shifted, {
    currentTimeMillisUnsafe: () => clock.currentTimeMillisUnsafe() + millis,
    currentTimeMillis: Effect.sync(() => clock.currentTimeMillisUnsafe() + millis)
  })
}

/** The store, listening to `redis` for as long as the scope lives. */
export const makeStore = (
  redis: RedisClient.Service
): Effect.Effect<CircuitBreaker.CircuitBreakerStore["Service"], never, Scope.Scope> =>
  Effect.gen(function* () {
    const inner = yield* Effect.provide(
      Effect.gen(function* () {
        return yield* CircuitBreaker.CircuitBreakerStore
      }),
      CircuitBreaker.layerStoreMemory()
    )
    let openedAt = 0
    let backAt = 0
    yield* redis.onReconnect(() => {
      backAt = Date.now()
    })
    const admitEarly = (key: string, openFor: Duration.Duration) =>
      Effect.gen(function* () {
        const clock = yield* Clock.Clock
        return yield* inner.admit(key).pipe(Effect.provideService(Clock.Clock, ahead(clock, openFor)))
      })
    return CircuitBreaker.CircuitBreakerStore.of({
      admit: (key) =>
        inner.admit(key).pipe(
          Effect.catchIf(
            (error) => error.reason._tag === "CircuitOpen" && backAt > openedAt,
            (error) => admitEarly(key, error.reason._tag === "CircuitOpen" ? error.reason.retryAfter : Duration.zero)
          )
        ),
      record: (options) =>
        inner.record(options).pipe(
          Effect.tap((transition) =>
            Effect.sync(() => {
              if (transition?.to === "Open") openedAt = Date.now()
            })
          )
        ),
      state: inner.state
    })
  })
