/**
 * The fault suite's probes (Watermill's universal-suite idea): each capability does its usual work, paced, while a
 * fault hits the servers, and then reports what it accepted, what of that is missing, and when it succeeded, so the
 * suite can check each capability's promise and how soon it worked again.
 *
 * Two kinds of fault: an outage (servers killed or hung, their data kept: nothing accepted may be missing) and a wipe
 * (servers killed and started again empty: what was accepted before is gone, and counted; what was accepted after
 * must be there, and each capability must find its feet on the empty servers).
 *
 * - EventSink: events emitted are all in the stream afterwards, in emit order (the sink buffers through the outage),
 *   and its consumer group is there (after a wipe, created again with the stream); after a wipe, its breaker opened
 *   and closed again through half-open, and a flush while it was open failed `CircuitOpen`, retryable.
 * - Publisher/Subscriber: every message whose publish succeeded is consumed (an application retries a failed
 *   publish with the same message; a redelivery is fine, a loss is not), and the consumer group is there (after a
 *   wipe, created again by the consumer).
 * - ResumableStream: a run appending through an outage completes, and both its starter and a resumer get every
 *   appended chunk exactly once, in order. A wipe takes the run in progress: both its readers end with a typed
 *   error, never hang; a new run starts, and its readers get all of it.
 * - SubjectStorage: every property whose write succeeded (a plain `set` and a read-modify-write, in turn) holds its
 *   value; its change event arrived, or the subscription was told it missed some (`Reconnected`); a failed write
 *   failed typed: a retryable Redis failure, or an unknown outcome (and after a wipe some did fail: writes give up
 *   after half a second of outage).
 * - StreamAdapter: every item whose `set` succeeded is stored and reached a subscriber, as an event or in the reload
 *   a `reset` asks for; events follow each other version by version; after a wipe, the subscriber was told to reset.
 *
 * Every probe's keys carry the hash tag `{probe}` (a ResumableStream run, whose run id is its hash tag, an id of the
 * same slot), so on a Cluster they all live on the master that serves it: the master a fault test kills.
 */
import { Deferred, Effect, Fiber, Option, Result, Schedule, Schema, type Scope, Stream } from "effect"
import * as EventSink from "../../src/EventSink.js"
import * as Message from "../../src/Message.js"
import * as Publisher from "../../src/Publisher.js"
import * as RedisClient from "../../src/RedisClient.js"
import * as ResumableStream from "../../src/ResumableStream.js"
import * as StreamAdapter from "../../src/StreamAdapter.js"
import * as SubjectStorage from "../../src/SubjectStorage.js"
import * as Subscriber from "../../src/Subscriber.js"
import { slotOf } from "../../src/internal/slot.js"

/**
 * A fault the probes went through (times in ms since the epoch): `at` when it struck (the servers gone or frozen),
 * `recoveredAt` when the topology was whole again; for a wipe, `restartedAt` when the servers started again, empty.
 */
export type Fault =
  | { readonly kind: "outage"; readonly at: number; readonly recoveredAt: number }
  | { readonly kind: "wipe"; readonly at: number; readonly restartedAt: number; readonly recoveredAt: number }

/** What a probe saw. */
export interface Report {
  readonly name: string
  /** Operations the capability accepted (acknowledged writes, emitted events, appended chunks). */
  readonly accepted: number
  /** Accepted operations missing afterwards that the capability had to keep, by label. */
  readonly lost: ReadonlyArray<string>
  /** Accepted operations a wipe took (accepted before it, missing afterwards), by label; none after an outage. */
  readonly gone: ReadonlyArray<string>
  /** Promises broken besides losses (a reader that hung, a group not created again, no reset after a wipe…). */
  readonly broken: ReadonlyArray<string>
  /**
   * When the capability first succeeded at something begun after `time` (ms since the epoch): a write sent after it
   * acknowledged; for the buffered ones, an event emitted after it written (EventSink), a chunk appended after it
   * arrived at a reader (ResumableStream).
   */
  readonly workingAgain: (time: number) => Option.Option<number>
  /** What had to happen after the fault, and when it did: the suite holds each to its recovery bound. */
  readonly settled: ReadonlyArray<readonly [what: string, at: number]>
  /** What else happened (a reset, a Reconnected event). */
  readonly notes: ReadonlyArray<string>
}

/**
 * A probe at work: `finish` stops the writes and reports on `fault` once everything that must be there was read
 * back (or 30 s passed).
 */
export interface Running {
  readonly finish: (fault: Fault) => Effect.Effect<Report>
}

/** A capability's probe: `start` begins its work under the key prefix it is given. */
export interface Probe {
  readonly name: string
  readonly start: (prefix: string) => Effect.Effect<Running, never, RedisClient.RedisClient | Scope.Scope>
}

/** Whether `fault` is a wipe that may have taken a write acknowledged at `time`: before the servers started again. */
const acknowledgedBeforeWipe = (fault: Fault, time: number): boolean =>
  fault.kind === "wipe" && time < fault.restartedAt

/**
 * Whether `fault` is a wipe that may have taken what was handed to a capability's buffer at `time` (an emitted
 * event): before the servers were gone. What was handed over later can only reach the new, empty servers.
 */
const bufferedBeforeWipe = (fault: Fault, time: number): boolean => fault.kind === "wipe" && time < fault.at

/** An accepted operation missing afterwards: its label, and whether a wipe may have taken it. */
interface Missing {
  readonly label: string
  readonly beforeWipe: boolean
}

/** Splits what is missing into what a wipe took (`gone`) and what was lost. */
const sortMissing = (missing: ReadonlyArray<Missing>): Pick<Report, "lost" | "gone"> => ({
  lost: missing.filter((item) => !item.beforeWipe).map((item) => item.label),
  gone: missing.filter((item) => item.beforeWipe).map((item) => item.label)
})

/**
 * The acknowledged writes (`n` → when) that `has` does not find, labelled, each marked as a wipe's when it was
 * acknowledged before the servers started again.
 */
const missingWrites = (
  fault: Fault,
  acknowledged: ReadonlyMap<number, number>,
  has: (n: number) => boolean,
  label: (n: number) => string
): Array<Missing> =>
  [...acknowledged].flatMap(([n, at]) =>
    has(n) ? [] : [{ label: label(n), beforeWipe: acknowledgedBeforeWipe(fault, at) }]
  )

/** The writes of `acknowledged` that must be there after `fault` (all of them, but for what a wipe may have taken). */
const dueAfter = (fault: Fault, acknowledged: ReadonlyMap<number, number>): Array<number> =>
  [...acknowledged].flatMap(([n, at]) => (acknowledgedBeforeWipe(fault, at) ? [] : [n]))

/** Runs `step(n)` for n = 0, 1, 2… 5 ms apart until `stopped()`, in a fiber; its result is how many steps ran. */
const paced = (stopped: () => boolean, step: (n: number) => Effect.Effect<void>) =>
  Effect.forkScoped(
    Effect.gen(function* () {
      let n = 0
      while (!stopped()) {
        yield* step(n)
        n += 1
        yield* Effect.sleep("5 millis")
      }
      return n
    })
  )

/** What an application does with a write that failed retryably: tries it again, for up to 60 s. */
const persist = <A, E extends { readonly isRetryable: boolean }, R>(write: Effect.Effect<A, E, R>) =>
  write.pipe(Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 1200, while: (e) => e.isRetryable }))

/** A write that succeeded: when its successful attempt was sent, and when it was acknowledged. */
type Success = readonly [sent: number, acknowledged: number]

/**
 * Writes `write(n)` for n = 0, 1, 2…, paced, each persisted as an application would (a write that fails for good is
 * given up). `acknowledged` says when each write that succeeded was acknowledged, `successes` also when it was sent,
 * `failures` holds every failure on the way; `stop` ends the writes.
 */
const pacedWrites = <E extends { readonly isRetryable: boolean }>(write: (n: number) => Effect.Effect<unknown, E>) =>
  Effect.gen(function* () {
    let stopped = false
    const acknowledged = new Map<number, number>()
    const successes: Array<Success> = []
    const failures: Array<E> = []
    const attempt = (n: number) =>
      Effect.suspend(() => {
        const sent = Date.now()
        return write(n).pipe(
          Effect.tapError((error) => Effect.sync(() => failures.push(error))),
          Effect.andThen(Effect.sync(() => successes.push([sent, Date.now()])))
        )
      })
    const fiber = yield* paced(
      () => stopped,
      (n) => persist(attempt(n)).pipe(Effect.andThen(Effect.sync(() => acknowledged.set(n, Date.now()))), Effect.ignore)
    )
    const stop = Effect.suspend(() => {
      stopped = true
      return Fiber.join(fiber)
    })
    return { stop, acknowledged, successes, failures }
  })

/** Waits until `done()` holds, checking every 50 ms, for up to 30 s. */
const eventually = (done: () => boolean) =>
  Effect.suspend(() => (done() ? Effect.void : Effect.fail("not yet"))).pipe(
    Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 600 }),
    Effect.ignore
  )

/**
 * When the first write sent after `time` was acknowledged, if one was: a reply that arrived just before the fault but
 * was seen just after it does not count.
 */
const firstSentAfter =
  (successes: ReadonlyArray<Success>) =>
  (time: number): Option.Option<number> =>
    Option.fromNullishOr(successes.find(([sent]) => sent > time)).pipe(Option.map(([, acknowledged]) => acknowledged))

/** Dies with the failure of an effect that must not fail in a probe (its report would be meaningless). */
const orDie = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.orDie(effect)

/** Whether `values`, each taken at its first appearance, increase: in order, a repeat allowed (a write retried). */
const inOrderOfFirstAppearance = (values: ReadonlyArray<number>): boolean => {
  const seen = new Set<number>()
  let last = -Infinity
  for (const value of values) {
    if (seen.has(value)) continue
    if (value <= last) return false
    seen.add(value)
    last = value
  }
  return true
}

/**
 * What a wipe asks of a sink's breaker: it opened (the writes failed), went half-open, and closed again, and a flush
 * while it was open failed `CircuitOpen`, retryable (`flushWhileOpen`: how such a flush failed, if one was seen).
 */
const breakerAfterWipe = (
  stats: EventSink.Stats,
  flushWhileOpen: Option.Option<EventSink.EventSinkError>
): Array<string> => {
  const path = stats.transitions.map(({ from, to }) => `${from}→${to}`)
  const closedAgain = path.lastIndexOf("HalfOpen→Closed")
  const problems: Array<string> = []
  if (path[0] !== "Closed→Open") problems.push(`the breaker did not open first: ${path.join(", ")}`)
  if (closedAgain < 2 || path[closedAgain - 1] !== "Open→HalfOpen") {
    problems.push(`the breaker did not close again through half-open: ${path.join(", ")}`)
  }
  if (stats.breaker !== "Closed") problems.push(`the breaker is ${stats.breaker} at the end`)
  const flush = Option.getOrUndefined(flushWhileOpen)
  if (flush === undefined) problems.push("no flush was seen failing while the breaker was open")
  else if (flush.reason._tag !== "CircuitOpen" || !flush.isRetryable) {
    problems.push(`a flush while the breaker was open failed ${flush.reason._tag}, retryable: ${flush.isRetryable}`)
  }
  return problems
}

/** What a sink's health says of its group `group`: nothing when it exists and its lag is the stream's length. */
const groupProblems = (health: EventSink.Health, group: string): Array<string> => {
  const found = health.groups.find((candidate) => candidate.name === group)
  if (found === undefined) return [`the group ${group} is missing`]
  return found.lag === health.length ? [] : [`the group ${group} lags ${found.lag}, the stream holds ${health.length}`]
}

export const eventSink: Probe = {
  name: "EventSink",
  start: (prefix) =>
    Effect.gen(function* () {
      const group = "probe"
      const sink = yield* EventSink.make({
        streamKey: `${prefix}{probe}:sink`,
        flushInterval: "20 millis",
        failureThreshold: 3,
        openDuration: "200 millis",
        consumerGroup: group
      })
      let stopped = false
      /** When the count of written events went up, and to what. */
      const writes: Array<readonly [at: number, written: number]> = []
      const emittedAt: Array<number> = []
      let written = 0
      let flushWhileOpen = Option.none<EventSink.EventSinkError>()
      // a flush while the breaker is open (tried until one is seen): it must fail at once, CircuitOpen
      const tryFlushWhileOpen = Effect.timeout(sink.flush, "100 millis").pipe(
        Effect.result,
        Effect.map((result) => {
          if (Result.isFailure(result) && result.failure instanceof EventSink.EventSinkError) {
            flushWhileOpen = Option.some(result.failure)
          }
        })
      )
      const sample = Effect.flatMap(sink.stats, (stats) =>
        Effect.suspend(() => {
          if (stats.written > written) writes.push([Date.now(), stats.written])
          written = stats.written
          return stats.breaker === "Open" && Option.isNone(flushWhileOpen) ? tryFlushWhileOpen : Effect.void
        })
      )
      yield* Effect.forkScoped(Effect.repeat(sample, Schedule.spaced("20 millis")))
      const emitter = yield* paced(
        () => stopped,
        (n) =>
          Effect.suspend(() => {
            emittedAt.push(Date.now())
            return orDie(sink.emit({ event_type: "probe", execution_id: "probe", data: { n } }))
          })
      )
      const finish = (fault: Fault) =>
        Effect.gen(function* () {
          stopped = true
          const emitted = yield* Fiber.join(emitter)
          yield* persist(sink.flush).pipe(Effect.ignore)
          yield* sample
          const events = yield* orDie(Stream.runCollect(sink.events()))
          const numbers = events.map((stored) => (stored.event.data as { n: number }).n)
          const seen = new Set(numbers)
          const stats = yield* sink.stats
          const health = yield* orDie(persist(sink.health))
          const dropped = stats.dropped.overflow + stats.dropped.rejected + stats.dropped.shutdown
          const missing = emittedAt.flatMap((at, n) =>
            seen.has(n) ? [] : [{ label: `event ${n}`, beforeWipe: bufferedBeforeWipe(fault, at) }]
          )
          return {
            name: "EventSink",
            accepted: emitted,
            ...sortMissing(missing),
            broken: [
              ...(inOrderOfFirstAppearance(numbers) ? [] : ["the events are not in emit order"]),
              ...(dropped === 0 ? [] : [`${dropped} events dropped`]),
              ...groupProblems(health, group),
              ...(fault.kind === "wipe" ? breakerAfterWipe(stats, flushWhileOpen) : [])
            ],
            // events are written in emit order: once more are written than were emitted before `time`, one
            // emitted after it is in Redis
            workingAgain: (time: number) => {
              const before = emittedAt.filter((at) => at <= time).length
              return Option.fromNullishOr(writes.find(([, count]) => count > before)).pipe(Option.map(([at]) => at))
            },
            settled: [],
            notes: [
              `written ${stats.written}, failed writes ${stats.failedWrites}, breaker ${stats.transitions.length} transitions`
            ]
          }
        })
      return { finish }
    })
}

export const messaging: Probe = {
  name: "Publisher/Subscriber",
  start: (prefix) =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const publisher = yield* Publisher.make({ keyPrefix: prefix })
      const subscriber = yield* Subscriber.make({ keyPrefix: prefix })
      const received = new Map<number, number>()
      yield* Effect.forkScoped(
        subscriber.consume(
          "probe",
          (message) =>
            Effect.sync(() => {
              const n = Number(Message.text(message.message))
              if (!received.has(n)) received.set(n, Date.now())
            }),
          { group: "g", concurrency: 4 }
        )
      )
      const publishing = yield* pacedWrites((n) =>
        publisher.publish("probe", Message.make(String(n), { uuid: `m-${n}` }))
      )
      /** Whether the consumer group is on the topic's stream (a wipe took it: the consumer must create it again). */
      const groupExists = persist(
        redis.send<ReadonlyArray<ReadonlyArray<unknown>>>("XINFO", "GROUPS", `${prefix}{probe}`)
      ).pipe(
        Effect.map((groups) => groups.some((fields) => fields[fields.indexOf("name") + 1] === "g")),
        Effect.orElseSucceed(() => false)
      )
      const finish = (fault: Fault) =>
        Effect.gen(function* () {
          yield* publishing.stop
          const due = dueAfter(fault, publishing.acknowledged)
          yield* eventually(() => due.every((n) => received.has(n)))
          // the first message published after the fault that reached the consumer: consumption works again
          const firstConsumed = Option.fromNullishOr(
            [...publishing.acknowledged]
              .filter(([n, at]) => at > fault.at && received.has(n))
              .map(([n]) => received.get(n) as number)
              .sort((a, b) => a - b)[0]
          )
          return {
            name: "Publisher/Subscriber",
            accepted: publishing.acknowledged.size,
            ...sortMissing(
              missingWrites(
                fault,
                publishing.acknowledged,
                (n) => received.has(n),
                (n) => `message ${n}`
              )
            ),
            broken: [
              ...((yield* groupExists) ? [] : ["the consumer group g is missing"]),
              ...(Option.isNone(firstConsumed) ? ["no message published after the fault was consumed"] : [])
            ],
            workingAgain: firstSentAfter(publishing.successes),
            settled: Option.match(firstConsumed, {
              onNone: () => [],
              onSome: (at) => [["consuming again", at] as const]
            }),
            notes: []
          }
        })
      return { finish }
    })
}

/** How a reader of a ResumableStream run ended: the chunks it got, its error if it failed (a timeout: it hung), when. */
interface ReaderEnd {
  readonly who: "starter" | "resumer"
  readonly chunks: ReadonlyArray<number>
  readonly error: Option.Option<unknown>
  readonly endedAt: number
}

/** One run of the ResumableStream probe: when it started, when each chunk was appended, its readers. */
interface Run {
  readonly index: number
  readonly startedAt: number
  readonly appendedAt: ReadonlyArray<number>
  readonly readers: ReadonlyArray<Fiber.Fiber<ReaderEnd>>
}

/**
 * What the ends of a run's readers say of it: each must have got its chunks once, in order; a reader that failed must
 * have failed typed (a timeout: it hung). A run that completed must have reached each reader whole; one whose readers
 * failed is lost, or, when a wipe took it (`wiped`), the chunks not all its readers got are gone.
 */
const judgeRun = (run: Run, ends: ReadonlyArray<ReaderEnd>, wiped: boolean) => {
  const appended = run.appendedAt.length
  const name = (end: ReaderEnd) => `run ${run.index} ${end.who}`
  const failed = ends.filter((end) => Option.isSome(end.error))
  const missing: Array<Missing> = ends.flatMap((end) => {
    const inOrder = end.chunks.every((chunk, i) => chunk === i)
    const whole = Option.isSome(end.error) || end.chunks.length === appended
    return inOrder && whole
      ? []
      : [{ label: `${name(end)}: ${end.chunks.length} of ${appended} chunks`, beforeWipe: false }]
  })
  if (failed.length > 0 && wiped) {
    const readByAll = Math.min(...ends.map((end) => end.chunks.length))
    for (let chunk = readByAll; chunk < appended; chunk++) {
      missing.push({ label: `run ${run.index} chunk ${chunk}`, beforeWipe: true })
    }
  }
  if (!wiped)
    missing.push(...failed.map((end) => ({ label: `${name(end)}: the run did not complete`, beforeWipe: false })))
  const broken = failed.flatMap((end) =>
    Option.getOrUndefined(end.error) instanceof ResumableStream.ResumableStreamError
      ? []
      : [`${name(end)} did not end typed: ${String(Option.getOrUndefined(end.error))}`]
  )
  return { missing, broken }
}

/** A run id for run `index` whose slot is that of `{probe}`: on a Cluster, the run lives with the other probes' keys. */
const runIdFor = (index: number): string => {
  const slot = slotOf("{probe}")
  for (let n = 0; ; n++) {
    const runId = `probe-${index}-${n.toString(36)}`
    if (slotOf(runId) === slot) return runId
  }
}

export const resumableStream: Probe = {
  name: "ResumableStream",
  start: (prefix) =>
    Effect.gen(function* () {
      let stopped = false
      const appendedAt: Array<Array<number>> = []
      const ended: Array<Deferred.Deferred<void>> = []
      const Counter = ResumableStream.define({
        name: "probe",
        input: Schema.Struct({ run: Schema.Number }),
        chunk: Schema.Number,
        run: ({ run }, writer) =>
          Effect.gen(function* () {
            const times = appendedAt[run] as Array<number>
            while (!stopped) {
              yield* writer.append(times.length)
              times.push(Date.now())
              yield* Effect.sleep("5 millis")
            }
          }).pipe(Effect.ensuring(Deferred.succeed(ended[run] as Deferred.Deferred<void>, undefined)))
      })
      const streams = yield* orDie(
        ResumableStream.make({
          streams: [Counter],
          keyPrefix: prefix,
          heartbeatInterval: "500 millis",
          producerTimeout: "3 seconds",
          unsignedTokens: true
        })
      )
      const arrivals: Array<readonly [appended: number, arrived: number]> = []
      const readerOf = (
        who: ReaderEnd["who"],
        stream: Stream.Stream<ResumableStream.Entry<number>, ResumableStream.ResumableStreamError>,
        onChunk: (chunk: number) => void = () => undefined
      ) =>
        Effect.gen(function* () {
          const chunks: Array<number> = []
          const result = yield* stream.pipe(
            Stream.runForEach((entry) =>
              Effect.sync(() => {
                chunks.push(entry.chunk)
                onChunk(entry.chunk)
              })
            ),
            Effect.timeout("60 seconds"),
            Effect.result
          )
          const error = Result.isFailure(result) ? Option.some<unknown>(result.failure) : Option.none()
          return { who, chunks, error, endedAt: Date.now() }
        }).pipe(Effect.forkScoped)
      const runs: Array<Run> = []
      /** Starts run `index` (retried as an application would) with its two readers, and waits until its runner ends. */
      const startRun = (index: number) =>
        Effect.gen(function* () {
          appendedAt[index] = []
          ended[index] = yield* Deferred.make<void>()
          const started = yield* persist(streams.start(Counter, { run: index }, { runId: runIdFor(index) }))
          const startedAt = Date.now()
          const times = appendedAt[index] as Array<number>
          const starter = yield* readerOf("starter", started.stream)
          const resumer = yield* readerOf("resumer", streams.resume(Counter, started.token), (chunk) =>
            arrivals.push([times[chunk] ?? 0, Date.now()])
          )
          runs.push({ index, startedAt, appendedAt: times, readers: [starter, resumer] })
          yield* Deferred.await(ended[index] as Deferred.Deferred<void>)
        })
      // one run after the other: a run whose runner failed (its data wiped) gives way to a new one
      const runner = yield* Effect.forkScoped(
        Effect.gen(function* () {
          for (let index = 0; !stopped; index++) {
            yield* startRun(index).pipe(Effect.catch(() => Effect.sleep("50 millis")))
          }
        })
      )
      const finish = (fault: Fault) =>
        Effect.gen(function* () {
          stopped = true
          yield* Fiber.join(runner)
          const ends = yield* Effect.forEach(runs, (run) => Fiber.joinAll(run.readers))
          const judged = runs.map((run, i) =>
            judgeRun(run, ends[i] ?? [], acknowledgedBeforeWipe(fault, run.startedAt))
          )
          const readers = ends.flat()
          const startedAfter = runs.filter((run) => !acknowledgedBeforeWipe(fault, run.startedAt))
          return {
            name: "ResumableStream",
            accepted: runs.reduce((sum, run) => sum + run.appendedAt.length, 0),
            ...sortMissing(judged.flatMap((run) => run.missing)),
            broken: [
              ...judged.flatMap((run) => run.broken),
              ...(startedAfter.length === 0 ? ["no run started after the wipe"] : [])
            ],
            workingAgain: (time: number) =>
              Option.fromNullishOr(arrivals.find(([appended, arrived]) => appended > time && arrived > time)).pipe(
                Option.map(([, at]) => at)
              ),
            // the readers of a run the wipe took end (typed) soon after the recovery: none hangs
            settled: readers
              .filter((end) => Option.isSome(end.error) && end.endedAt > fault.at)
              .map((end) => [`a ${end.who} of a wiped run ended`, end.endedAt] as const),
            notes: runs
              .map((run) => `run ${run.index}: ${run.appendedAt.length} chunks`)
              .concat(
                readers.flatMap((end) =>
                  Option.match(end.error, {
                    onNone: () => [],
                    onSome: (error) => [
                      `${end.who} ended ${end.endedAt - fault.recoveredAt} ms after the recovery: ${String(error)}`
                    ]
                  })
                )
              )
          }
        })
      return { finish }
    })
}

/** How many of `failures` had each reason, as `Redis 3, OutcomeUnknown 1`. */
const failureTags = (failures: ReadonlyArray<SubjectStorage.SubjectStorageError>): string => {
  const counts = new Map<string, number>()
  for (const failure of failures) counts.set(failure.reason._tag, (counts.get(failure.reason._tag) ?? 0) + 1)
  return [...counts].map(([tag, count]) => `${tag} ${count}`).join(", ")
}

/** What a failed write may fail with: a retryable Redis failure, or an unknown outcome (the write may have run). */
const typedFailure = (error: SubjectStorage.SubjectStorageError): boolean =>
  error.reason._tag === "OutcomeUnknown" || (error.reason._tag === "Redis" && error.isRetryable)

/** Sets `p{n}` of `subject` to `n`: a plain set and a read-modify-write in turn, so that both meet the fault. */
const setProperty = (
  storage: SubjectStorage.Service,
  subject: string,
  n: number
): Effect.Effect<unknown, SubjectStorage.SubjectStorageError> =>
  n % 2 === 0 ? storage.set(subject, `p${n}`, n) : storage.set(subject, `p${n}`, () => n)

export const subjectStorage: Probe = {
  name: "SubjectStorage",
  start: (prefix) =>
    Effect.gen(function* () {
      // writes give up on an outage after half a second (the default waits 10 s): the probe sees them fail, typed
      const storage = yield* SubjectStorage.make({ keyPrefix: prefix, changes: true, outageTimeout: "500 millis" })
      const subject = "{probe}"
      const announced = new Set<string>()
      let reconnected = 0
      yield* Effect.forkScoped(
        storage.changes.pipe(
          Stream.runForEach((change) =>
            Effect.sync(() => {
              if (change._tag === "PropertyChanged") announced.add(change.property)
              if (change._tag === "Reconnected") reconnected += 1
            })
          ),
          Effect.ignore
        )
      )
      yield* Effect.sleep("200 millis") // the subscription is in place
      const writing = yield* pacedWrites((n) => setProperty(storage, subject, n))
      const finish = (fault: Fault) =>
        Effect.gen(function* () {
          yield* writing.stop
          const { properties } = yield* orDie(persist(storage.load(subject)))
          const due = dueAfter(fault, writing.acknowledged)
          yield* eventually(() => reconnected > 0 || due.every((n) => announced.has(`p${n}`)))
          const unannounced = due.filter((n) => !announced.has(`p${n}`))
          const untyped = writing.failures.filter((error) => !typedFailure(error))
          return {
            name: "SubjectStorage",
            accepted: writing.acknowledged.size,
            ...sortMissing([
              ...missingWrites(
                fault,
                writing.acknowledged,
                (n) => properties[`p${n}`] === n,
                (n) => `value p${n}`
              ),
              // a change event may be missed only with a word about it
              ...(reconnected === 0
                ? unannounced.map((n) => ({ label: `change event of p${n}, no Reconnected`, beforeWipe: false }))
                : [])
            ]),
            broken: [
              ...untyped.map((error) => `a write failed ${error.reason._tag}: ${error.message}`),
              ...(fault.kind === "wipe" && writing.failures.length === 0
                ? ["no write failed while the servers were down"]
                : [])
            ],
            workingAgain: firstSentAfter(writing.successes),
            settled: [],
            notes: [
              `${unannounced.length} change events missed, ${reconnected} Reconnected`,
              `${writing.failures.length} failed attempts (${failureTags(writing.failures)})`
            ]
          }
        })
      return { finish }
    })
}

const Item = StreamAdapter.define({ name: "probe", item: Schema.Struct({ n: Schema.Number }) })

/** Whether the event at `next` follows the position `last`: the next version of the same epoch (or of the first). */
const follows = (last: StreamAdapter.Position, next: StreamAdapter.Position): boolean =>
  (last.epoch === "" || last.epoch === next.epoch) && next.version === last.version + 1

export const streamAdapter: Probe = {
  name: "StreamAdapter",
  start: (prefix) =>
    Effect.gen(function* () {
      const adapter = yield* StreamAdapter.make({ keyPrefix: `${prefix}{probe}`, checkInterval: "500 millis" })
      const board = adapter.stream(Item)
      const seen = new Set<string>()
      const notes: Array<string> = []
      const broken: Array<string> = []
      const resets: Array<number> = []
      const snapshot = yield* orDie(board.snapshot("g"))
      let last = snapshot.position
      /** A `reset`: the subscriber reloads the group, as the event asks; the events after its position follow. */
      const reload = (reason: string) =>
        Effect.gen(function* () {
          resets.push(Date.now())
          notes.push(`reset: ${reason}`)
          const items = yield* persist(board.getGroup("g"))
          for (const item of items) seen.add(item.id)
        })
      yield* Effect.forkScoped(
        board.subscribe({ groupId: "g", after: snapshot.position }).pipe(
          Stream.runForEach((event) =>
            Effect.gen(function* () {
              if (event.type !== "reset" && !follows(last, event.position)) {
                broken.push(`event ${JSON.stringify(event.position)} after ${JSON.stringify(last)}`)
              }
              last = event.position
              if (event.type === "create") seen.add(event.id)
              if (event.type === "reset") yield* reload(event.reason)
            })
          ),
          Effect.catch((error) => Effect.sync(() => broken.push(`the subscription failed: ${error.message}`)))
        )
      )
      const writing = yield* pacedWrites((n) => board.set("g", `i${n}`, { n }))
      const finish = (fault: Fault) =>
        Effect.gen(function* () {
          yield* writing.stop
          const due = dueAfter(fault, writing.acknowledged)
          yield* eventually(() => due.every((n) => seen.has(`i${n}`)))
          const stored = yield* orDie(persist(board.getGroup("g")))
          const ids = new Set(stored.map((item) => item.id))
          const resetAfterWipe = resets.find((at) => at > fault.at)
          return {
            name: "StreamAdapter",
            accepted: writing.acknowledged.size,
            ...sortMissing([
              ...missingWrites(
                fault,
                writing.acknowledged,
                (n) => seen.has(`i${n}`),
                (n) => `event of i${n}`
              ),
              ...missingWrites(
                fault,
                writing.acknowledged,
                (n) => ids.has(`i${n}`),
                (n) => `item i${n}`
              )
            ]),
            broken: [
              ...broken,
              ...(fault.kind === "wipe" && resetAfterWipe === undefined ? ["no reset after the wipe"] : [])
            ],
            workingAgain: firstSentAfter(writing.successes),
            settled:
              fault.kind === "wipe" && resetAfterWipe !== undefined ? [["told to reset", resetAfterWipe] as const] : [],
            notes
          }
        })
      return { finish }
    })
}

/** Every capability's probe. */
export const all: ReadonlyArray<Probe> = [eventSink, messaging, resumableStream, subjectStorage, streamAdapter]
