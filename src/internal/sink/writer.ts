/**
 * The sink's one background writer: takes batches from the buffer and writes each with one script call, behind a
 * circuit breaker (effect's `CircuitBreaker`, in-memory store).
 *
 * - A batch that fails stays the writer's current batch and is retried (exponential backoff, jittered) until it is
 *   written: nothing behind it is written first, so events reach Redis in the order they were emitted.
 * - Connection, timeout, `LOADING`, `OOM`… failures count towards the breaker; after `failureThreshold` in a row it
 *   opens and no Redis call is made until its open time has passed; then one probe write decides: closed again, or
 *   open for longer (the open-duration schedule's next delay).
 * - A data error (`WRONGTYPE` on the stream key, say) cannot heal by retrying: the batch is reported, counted as
 *   rejected and dropped, and the breaker is not touched.
 * - `close` writes what is left, bypassing the breaker, until its deadline; what could not be written is counted.
 *
 * @internal
 */
import { randomUUID } from "node:crypto"
import { Array as Arr, Cause, Duration, Effect, Exit, Fiber, Schedule, type Scope, Stream } from "effect"
import * as CircuitBreaker from "effect/persistence/CircuitBreaker"
import type * as RedisClient from "../../RedisClient.js"
import { OutcomeUnknown, type RedisError } from "../../RedisError.js"
import { redisError } from "../reasons.js"
import type { Buffer, Counters } from "./buffer.js"
import { fail } from "./error.js"
import * as Breaker from "./breaker.js"
import * as Metrics from "./metrics.js"
import * as Script from "./script.js"
import * as Reasons from "../../EventSinkError.js"
import type { BreakerState, BreakerTransition } from "../../EventSink.js"

/** The running writer. */
export interface Writer {
  readonly state: () => BreakerState
  /** The latest transitions, oldest first (at most 100). */
  readonly transitions: () => ReadonlyArray<BreakerTransition>
  /**
   * Stops the writer: lets it flush what is buffered, then writes the rest directly (bypassing the breaker) until
   * `deadline` has passed. Returns the number of events that could not be written.
   */
  readonly close: (deadline: Duration.Duration) => Effect.Effect<number>
}

/** What the writer needs. */
export interface WriterOptions {
  readonly redis: RedisClient.Service
  readonly streamKey: string
  readonly trim: Script.Trim
  readonly buffer: Buffer
  readonly counters: Counters
  readonly maxBatchSize: number
  readonly failureThreshold: number
  readonly openDuration: Duration.Input | Schedule.Schedule<unknown, number>
  readonly writeTimeout: Duration.Duration
  /** The consumer group to create with the stream whenever a write finds no stream; empty for none. */
  readonly group: string
}

/** Waits between failed attempts of one batch while the breaker is closed: 100 ms doubling, capped at 2 s. */
const backoff = Schedule.min([Schedule.exponential("100 millis"), Schedule.spaced("2 seconds")]).pipe(Schedule.jittered)

/** What one write can fail with: a lost reply is retried like a transient failure (the write is idempotent). */
type WriteError = RedisError | OutcomeUnknown
type AttemptError = WriteError | CircuitBreaker.CircuitBreakerError

/** Breaker rejections, lost replies and Redis failures that may pass are retried; data errors are not. */
const isTransient = (error: AttemptError) =>
  error instanceof CircuitBreaker.CircuitBreakerError || error instanceof OutcomeUnknown || error.isRetryable

/** How long the reply to a batch is remembered: its retries within this time are not applied twice. */
const rememberBatches = Duration.minutes(10)

/**
 * How often an open breaker is asked again. Asking costs no Redis call; the breaker's store admits the probe as soon
 * as the client reports Redis back, or when the open time is over.
 */
const openPoll = Duration.millis(100)

/** The backoff, except that an open breaker is asked again every `openPoll` until it admits the probe. */
const retrySchedule = backoff.pipe(
  Schedule.setInputType<AttemptError>(),
  Schedule.modifyDelay(({ duration, input }) =>
    Effect.succeed(
      input instanceof CircuitBreaker.CircuitBreakerError && input.reason._tag === "CircuitOpen"
        ? Duration.max(Duration.min(input.reason.retryAfter, openPoll), Duration.millis(1))
        : duration
    )
  )
)

/**
 * The breaker's state as the writer reports it and its last 100 transitions; when it opens, the callers waiting for
 * room in the buffer fail `CircuitOpen`. One log line when it opens after working, one when it closes again: an
 * outage, not each probe.
 */
const trackBreaker = (streamKey: string, counters: Counters, buffer: Buffer) => {
  let state: BreakerState = "Closed"
  let history: Array<BreakerTransition> = []
  let count = 0
  let openedAt = 0
  const log = (transition: CircuitBreaker.Transition) => {
    if (transition.from === "Closed" && transition.to === "Open") {
      openedAt = Date.now()
      return Effect.logWarning(
        `EventSink ${streamKey}: Redis is failing (${counters.failedWrites} failed writes so far); the breaker ` +
          `opened and events stay buffered (${buffer.pending()})`
      )
    }
    if (transition.to === "Closed") {
      return Effect.logInfo(
        `EventSink ${streamKey}: Redis answers again after ${Date.now() - openedAt} ms; the breaker closed ` +
          `(${buffer.pending()} events buffered)`
      )
    }
    return Effect.void
  }
  return {
    state: () => state,
    history: (): ReadonlyArray<BreakerTransition> => history,
    count: () => count,
    /** Takes a transition in. */
    apply: (transition: CircuitBreaker.Transition) =>
      Effect.suspend(() => {
        state = transition.to
        count++
        history = [...history.slice(-99), { from: transition.from, to: transition.to, at: new Date() }]
        if (transition.to === "Open") {
          buffer.failWaiters(fail(Reasons.CircuitOpen, `Redis is failing: the breaker is open for ${streamKey}`))
        }
        return log(transition)
      })
  }
}

/** Starts the writer in the scope. */
export const start = (options: WriterOptions): Effect.Effect<Writer, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { redis, streamKey, buffer, counters } = options
    const leadingArgs = [options.group, ...Script.trimArgs(options.trim)]
    const breaker = yield* CircuitBreaker.make({
      tripPolicy: CircuitBreaker.consecutive(options.failureThreshold),
      openDuration: options.openDuration
    }).pipe(Effect.provideService(CircuitBreaker.CircuitBreakerStore, yield* Breaker.makeStore(redis)))
    let current: ReadonlyArray<string> = []
    const tracker = trackBreaker(streamKey, counters, buffer)
    const report = Metrics.reporter(streamKey, counters, () => ({
      buffered: buffer.pending(),
      state: tracker.state(),
      transitions: tracker.count()
    }))
    yield* breaker.transitions.pipe(
      Stream.runForEach((transition) => Effect.andThen(tracker.apply(transition), report)),
      Effect.forkScoped({ startImmediately: true })
    )

    /** Settles a batch that left for good (written or rejected): no longer the writer's, never written again. */
    const release = (batch: ReadonlyArray<string>) => {
      if (current === batch) current = []
      buffer.settle(batch.length)
    }

    /** The request id of each batch: every attempt to write a batch is applied once, its retries included. */
    const requestIds = new WeakMap<ReadonlyArray<string>, string>()
    const requestIdOf = (batch: ReadonlyArray<string>) => {
      let id = requestIds.get(batch)
      if (id === undefined) {
        id = randomUUID()
        requestIds.set(batch, id)
      }
      return id
    }

    /** One write of `batch`, with no breaker, within the timeout; idempotent: a batch is written once. */
    const write = (batch: ReadonlyArray<string>) =>
      redis
        .evalIdempotent(Script.append, [streamKey], [...leadingArgs, ...batch], {
          requestId: requestIdOf(batch),
          remember: rememberBatches
        })
        .pipe(
          Effect.timeoutOrElse({
            duration: options.writeTimeout,
            orElse: () =>
              Effect.fail(
                redisError(Script.append.name, "Timeout", `no reply within ${Duration.format(options.writeTimeout)}`)
              )
          }),
          Effect.onExit((exit) =>
            Effect.suspend(() => {
              if (Exit.isSuccess(exit)) {
                counters.written += batch.length
                release(batch)
              } else if (!Cause.hasInterruptsOnly(exit.cause)) {
                counters.failedWrites++
              }
              return report
            })
          )
        )

    const reject = (batch: ReadonlyArray<string>, error: AttemptError) =>
      Effect.gen(function* () {
        counters.droppedRejected += batch.length
        release(batch)
        yield* Effect.logError(`EventSink: Redis refused a batch of ${batch.length} events for ${streamKey}`, error)
        yield* report
      })

    const classify = (exit: Exit.Exit<void, WriteError>): CircuitBreaker.Outcome => {
      if (Exit.isSuccess(exit)) return CircuitBreaker.success
      const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
      return failure !== undefined && isTransient(failure.error) ? CircuitBreaker.failure() : CircuitBreaker.ignored
    }

    const writeThroughBreaker = (batch: ReadonlyArray<string>) =>
      write(batch).pipe(
        breaker.execute({ key: streamKey, classify }),
        Effect.retry({ schedule: retrySchedule, while: isTransient }),
        Effect.catch((error) => reject(batch, error))
      )

    const loop = Effect.forever(
      Effect.gen(function* () {
        current = yield* buffer.takeBatch
        yield* writeThroughBreaker(current)
      })
    )
    // the writer's own work is not traced: with EventSink's tracer installed, tracing it would feed itself events
    const fiber = yield* Effect.forkScoped(loop.pipe(Effect.withTracerEnabled(false)))

    /**
     * Writes `events` in batches, directly, retrying transient failures, until all are written (or rejected) or
     * `within` has passed. Returns how many were not.
     */
    const writeDirectly = (batches: ReadonlyArray<ReadonlyArray<string>>, within: Duration.Duration) => {
      let done = 0
      const events = batches.reduce((sum, batch) => sum + batch.length, 0)
      return Effect.gen(function* () {
        for (const batch of batches) {
          yield* write(batch).pipe(
            Effect.retry({ schedule: backoff, while: isTransient }),
            Effect.catch((error) => reject(batch, error))
          )
          done += batch.length
        }
      }).pipe(
        Effect.timeoutOption(within),
        Effect.map(() => events - done)
      )
    }

    const close = (deadline: Duration.Duration) =>
      Effect.gen(function* () {
        const closeBy = Date.now() + Duration.toMillis(deadline)
        yield* buffer.drained.pipe(Effect.timeoutOption(deadline), Effect.ignore)
        yield* Fiber.interrupt(fiber)
        // the writer's batch (with its request id: a write of it cut short is not applied twice) and the rest
        const rest = yield* buffer.takeAll
        const batches = [current, ...Arr.chunksOf(rest, options.maxBatchSize)].filter((batch) => batch.length > 0)
        current = []
        const within = Duration.millis(Math.max(0, closeBy - Date.now()))
        const unwritten = yield* writeDirectly(batches, within).pipe(Effect.withTracerEnabled(false))
        counters.droppedShutdown += unwritten
        buffer.settle(unwritten)
        yield* report
        return unwritten
      })

    return {
      state: tracker.state,
      transitions: tracker.history,
      close
    }
  })
