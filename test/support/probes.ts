/**
 * The fault suite's probes (Watermill's universal-suite idea): each capability does its usual work, paced, while a
 * fault hits the servers, and then reports what it accepted, what of that is missing, and when it succeeded, so the
 * suite can check each capability's promise and how soon it worked again.
 *
 * - EventSink: events emitted are all in the stream afterwards (the sink buffers through the outage).
 * - Publisher/Subscriber: every message whose publish succeeded is consumed (an application retries a failed
 *   publish with the same message; a redelivery is fine, a loss is not).
 * - ResumableStream: a run appending through the fault completes, and both its starter and a resumer get every
 *   appended chunk exactly once, in order.
 * - SubjectStorage: every property whose `set` succeeded holds its value; its change event arrived, or the
 *   subscription was told it missed some (`Reconnected`).
 * - StreamAdapter: every item whose `set` succeeded reached a subscriber as an event (through the change log).
 *
 * Every probe's keys carry the hash tag `{probe}`, so on a Cluster they all live on the master that serves it: the
 * master a fault test kills.
 */
import { Effect, Fiber, Option, Schedule, Schema, type Scope, Stream } from "effect"
import * as EventSink from "../../src/EventSink.js"
import * as Message from "../../src/Message.js"
import * as Publisher from "../../src/Publisher.js"
import type * as RedisClient from "../../src/RedisClient.js"
import * as ResumableStream from "../../src/ResumableStream.js"
import * as StreamAdapter from "../../src/StreamAdapter.js"
import * as SubjectStorage from "../../src/SubjectStorage.js"
import * as Subscriber from "../../src/Subscriber.js"

/** What a probe saw. */
export interface Report {
  readonly name: string
  /** Operations the capability accepted (acknowledged writes). */
  readonly accepted: number
  /** Accepted operations missing afterwards, by label. */
  readonly lost: ReadonlyArray<string>
  /**
   * When the capability first succeeded after `time` (ms since the epoch): a write acknowledged; for
   * ResumableStream, whose appends are buffered, the arrival at a reader of a chunk appended after `time`.
   */
  readonly workingAgain: (time: number) => Option.Option<number>
  /** What else happened (a reset, a Reconnected event). */
  readonly notes: ReadonlyArray<string>
}

/** A probe at work: `finish` stops the writes and reports once everything accepted was read back (or 30 s passed). */
export interface Running {
  readonly finish: Effect.Effect<Report>
}

/** A capability's probe: `start` begins its work under the key prefix it is given. */
export interface Probe {
  readonly name: string
  readonly start: (prefix: string) => Effect.Effect<Running, never, RedisClient.RedisClient | Scope.Scope>
}

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
const persist = <A, E extends { readonly isRetryable: boolean }>(write: Effect.Effect<A, E>) =>
  write.pipe(Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 1200, while: (e) => e.isRetryable }))

/**
 * Writes `write(n)` for n = 0, 1, 2…, paced, each persisted as an application would; `stop` ends the writes and
 * returns how many were acknowledged (0…accepted-1, in order), `successes` says when.
 */
const pacedWrites = <E extends { readonly isRetryable: boolean }>(write: (n: number) => Effect.Effect<unknown, E>) =>
  Effect.gen(function* () {
    let stopped = false
    let accepted = 0
    const successes: Array<number> = []
    const fiber = yield* paced(
      () => stopped,
      (n) =>
        persist(write(n)).pipe(
          Effect.andThen(
            Effect.sync(() => {
              accepted = n + 1
              successes.push(Date.now())
            })
          ),
          Effect.ignore
        )
    )
    const stop = Effect.suspend(() => {
      stopped = true
      return Fiber.join(fiber)
    }).pipe(Effect.map(() => accepted))
    return { stop, successes }
  })

/** Waits until `done()` holds, checking every 50 ms, for up to 30 s. */
const eventually = (done: () => boolean) =>
  Effect.suspend(() => (done() ? Effect.void : Effect.fail("not yet"))).pipe(
    Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 600 }),
    Effect.ignore
  )

const missing = (count: number, has: (n: number) => boolean, label: (n: number) => string) =>
  Array.from({ length: count }, (_, n) => n).flatMap((n) => (has(n) ? [] : [label(n)]))

/** The first of `successes` (times) after `time`, if any. */
const firstAfter =
  (successes: ReadonlyArray<number>) =>
  (time: number): Option.Option<number> =>
    Option.fromNullishOr(successes.find((at) => at > time))

/** Dies with the failure of an effect that must not fail in a probe (its report would be meaningless). */
const orDie = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.orDie(effect)

export const eventSink: Probe = {
  name: "EventSink",
  start: (prefix) =>
    Effect.gen(function* () {
      const sink = yield* EventSink.make({
        streamKey: `${prefix}{probe}:sink`,
        flushInterval: "20 millis",
        failureThreshold: 3,
        openDuration: "200 millis"
      })
      let stopped = false
      const successes: Array<number> = []
      let written = 0
      const sample = Effect.flatMap(sink.stats, (stats) =>
        Effect.sync(() => {
          if (stats.written > written) successes.push(Date.now())
          written = stats.written
        })
      )
      yield* Effect.forkScoped(Effect.repeat(sample, Schedule.spaced("20 millis")))
      const emitter = yield* paced(
        () => stopped,
        (n) => orDie(sink.emit({ event_type: "probe", execution_id: "probe", data: { n } }))
      )
      const finish = Effect.gen(function* () {
        stopped = true
        const emitted = yield* Fiber.join(emitter)
        yield* persist(sink.flush).pipe(Effect.ignore)
        yield* sample
        const events = yield* orDie(Stream.runCollect(sink.events()))
        const seen = new Set(events.map((stored) => (stored.event.data as { n?: number }).n))
        const stats = yield* sink.stats
        return {
          name: "EventSink",
          accepted: emitted,
          lost: missing(
            emitted,
            (n) => seen.has(n),
            (n) => `event ${n}`
          ),
          workingAgain: firstAfter(successes),
          notes: [`written ${stats.written}, failed writes ${stats.failedWrites}, dropped ${stats.dropped.overflow}`]
        }
      })
      return { finish }
    })
}

export const messaging: Probe = {
  name: "Publisher/Subscriber",
  start: (prefix) =>
    Effect.gen(function* () {
      const publisher = yield* Publisher.make({ keyPrefix: prefix })
      const subscriber = yield* Subscriber.make({ keyPrefix: prefix })
      const received = new Set<number>()
      yield* Effect.forkScoped(
        subscriber.consume(
          "probe",
          (message) =>
            Effect.sync(() => {
              received.add(Number(Message.text(message.message)))
            }),
          { group: "g", concurrency: 4 }
        )
      )
      const publishing = yield* pacedWrites((n) =>
        publisher.publish("probe", Message.make(String(n), { uuid: `m-${n}` }))
      )
      const finish = Effect.gen(function* () {
        const accepted = yield* publishing.stop
        yield* eventually(() => missing(accepted, (n) => received.has(n), String).length === 0)
        return {
          name: "Publisher/Subscriber",
          accepted,
          lost: missing(
            accepted,
            (n) => received.has(n),
            (n) => `message ${n}`
          ),
          workingAgain: firstAfter(publishing.successes),
          notes: []
        }
      })
      return { finish }
    })
}

export const resumableStream: Probe = {
  name: "ResumableStream",
  start: (prefix) =>
    Effect.gen(function* () {
      let stopped = false
      let appended = 0
      const appendedAt: Array<number> = []
      const Counter = ResumableStream.define({
        name: "probe",
        input: Schema.Struct({}),
        chunk: Schema.Number,
        run: (_, writer) =>
          Effect.gen(function* () {
            while (!stopped) {
              yield* writer.append(appended)
              appendedAt.push(Date.now())
              appended += 1
              yield* Effect.sleep("5 millis")
            }
          })
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
      const started = yield* orDie(streams.start(Counter, {}, { runId: "probe" }))
      const chunksOf = (stream: Stream.Stream<ResumableStream.Entry<number>, ResumableStream.ResumableStreamError>) =>
        Effect.forkScoped(
          stream.pipe(
            Stream.map((entry) => entry.chunk),
            Stream.runCollect,
            Effect.timeout("60 seconds"),
            Effect.result
          )
        )
      const starter = yield* chunksOf(started.stream)
      const resumer = yield* chunksOf(
        streams
          .resume(Counter, started.token)
          .pipe(Stream.tap((entry) => Effect.sync(() => arrivals.push([appendedAt[entry.chunk] ?? 0, Date.now()]))))
      )
      const finish = Effect.gen(function* () {
        stopped = true
        const results = yield* Fiber.joinAll([starter, resumer])
        const notes: Array<string> = []
        const lost = results.flatMap((result, index) => {
          const who = index === 0 ? "starter" : "resumer"
          if (result._tag === "Failure") {
            notes.push(`${who} failed: ${String(result.failure)}`)
            return [`${who}: the run did not complete`]
          }
          const chunks = result.success
          const inOrder = chunks.every((chunk, i) => chunk === i)
          return inOrder && chunks.length === appended
            ? []
            : [`${who}: ${chunks.length} of ${appended} chunks, in order: ${inOrder}`]
        })
        const workingAgain = (time: number) =>
          Option.fromNullishOr(arrivals.find(([appendedAt]) => appendedAt > time)).pipe(Option.map(([, at]) => at))
        return { name: "ResumableStream", accepted: appended, lost, workingAgain, notes }
      })
      return { finish }
    })
}

export const subjectStorage: Probe = {
  name: "SubjectStorage",
  start: (prefix) =>
    Effect.gen(function* () {
      const storage = yield* SubjectStorage.make({ keyPrefix: prefix, changes: true })
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
      const writing = yield* pacedWrites((n) => storage.set(subject, `p${n}`, n))
      const finish = Effect.gen(function* () {
        const accepted = yield* writing.stop
        const { properties } = yield* orDie(persist(storage.load(subject)))
        yield* eventually(
          () => reconnected > 0 || missing(accepted, (n) => announced.has(`p${n}`), String).length === 0
        )
        const unannounced = missing(
          accepted,
          (n) => announced.has(`p${n}`),
          (n) => `p${n}`
        )
        return {
          name: "SubjectStorage",
          accepted,
          lost: [
            ...missing(
              accepted,
              (n) => properties[`p${n}`] === n,
              (n) => `value p${n}`
            ),
            // a change event may be missed only with a word about it
            ...(reconnected === 0 ? unannounced.map((p) => `change event of ${p}, no Reconnected`) : [])
          ],
          workingAgain: firstAfter(writing.successes),
          notes: [`${unannounced.length} change events missed, ${reconnected} Reconnected`]
        }
      })
      return { finish }
    })
}

const Item = StreamAdapter.define({ name: "probe", item: Schema.Struct({ n: Schema.Number }) })

export const streamAdapter: Probe = {
  name: "StreamAdapter",
  start: (prefix) =>
    Effect.gen(function* () {
      const adapter = yield* StreamAdapter.make({ keyPrefix: `${prefix}{probe}`, checkInterval: "500 millis" })
      const board = adapter.stream(Item)
      const created = new Set<string>()
      const notes: Array<string> = []
      const snapshot = yield* orDie(board.snapshot("g"))
      yield* Effect.forkScoped(
        board.subscribe({ groupId: "g", after: snapshot.position }).pipe(
          Stream.runForEach((event) =>
            Effect.sync(() => {
              if (event.type === "create") created.add(event.id)
              if (event.type === "reset") notes.push(`reset: ${event.reason}`)
            })
          ),
          Effect.catch((error) => Effect.sync(() => notes.push(`subscription failed: ${error.message}`)))
        )
      )
      const writing = yield* pacedWrites((n) => board.set("g", `i${n}`, { n }))
      const finish = Effect.gen(function* () {
        const accepted = yield* writing.stop
        yield* eventually(() => missing(accepted, (n) => created.has(`i${n}`), String).length === 0)
        const stored = yield* orDie(persist(board.getGroup("g")))
        const ids = new Set(stored.map((item) => item.id))
        return {
          name: "StreamAdapter",
          accepted,
          lost: [
            ...missing(
              accepted,
              (n) => created.has(`i${n}`),
              (n) => `event of i${n}`
            ),
            ...missing(
              accepted,
              (n) => ids.has(`i${n}`),
              (n) => `item i${n}`
            )
          ],
          workingAgain: firstAfter(writing.successes),
          notes
        }
      })
      return { finish }
    })
}

/** Every capability's probe. */
export const all: ReadonlyArray<Probe> = [eventSink, messaging, resumableStream, subjectStorage, streamAdapter]
