/**
 * Checking per-key order in partitioned consumption: handlers record when they start and end each message (in one
 * process, or as entries of a Redis stream written by many), and `checkOrder` replays those events per key.
 */
import { type Duration, Effect, Schedule } from "effect"
import * as Message from "../../src/Message.js"
import type * as PartitionedTopics from "../../src/PartitionedTopics.js"
import * as RedisClient from "../../src/RedisClient.js"
import { firstLine, spawnChild } from "./child.js"
import { entriesOf } from "./streams.js"
import { TestTopology } from "./targets.js"

/** A handler starting or ending message `seq` of `key`, in `member`. */
export interface HandlerEvent {
  readonly phase: "start" | "end"
  readonly key: string
  readonly seq: number
  readonly member: string
}

/** What replaying the events found. */
export interface OrderCheck {
  /** Each break of the rules, in words (none expected). */
  readonly violations: ReadonlyArray<string>
  /** Messages handled to their end (each counted once). */
  readonly handled: number
  /** Messages started again after an earlier start. */
  readonly duplicates: number
}

/**
 * Replays `events` (in the order they happened) per key. Rules: a message starts only after the previous one of its
 * key ended (`seq` one more than the last ended), never while another of its key runs, unless the one running was in
 * a `killed` member (its handler died with it); a message starts again only when a `killed` member started it before.
 */
export const checkOrder = (events: ReadonlyArray<HandlerEvent>, killed: ReadonlySet<string>): OrderCheck => {
  const violations: Array<string> = []
  let handled = 0
  let duplicates = 0
  const keys = new Map<
    string,
    { done: number; running: { member: string; seq: number } | undefined; startedBy: Map<number, string> }
  >()
  for (const { phase, key, seq, member } of events) {
    let state = keys.get(key)
    if (state === undefined) {
      state = { done: -1, running: undefined, startedBy: new Map() }
      keys.set(key, state)
    }
    if (phase === "start") {
      if (state.running !== undefined && !killed.has(state.running.member))
        violations.push(`${key}: ${seq} started in ${member} while ${state.running.seq} ran in ${state.running.member}`)
      if (seq > state.done + 1) violations.push(`${key}: ${seq} started before ${state.done + 1} ended`)
      const before = state.startedBy.get(seq)
      if (before !== undefined) {
        duplicates++
        if (!killed.has(before)) violations.push(`${key}: ${seq} started again (first in ${before}, alive)`)
      }
      state.startedBy.set(seq, member)
      state.running = { member, seq }
    } else {
      if (state.running?.member !== member || state.running.seq !== seq) {
        violations.push(`${key}: ${seq} ended in ${member} but it was not running there`)
        continue
      }
      state.running = undefined
      if (seq > state.done) {
        state.done = seq
        handled++
      }
    }
  }
  return { violations, handled, duplicates }
}

/** The key of the n-th of `keys` keys. */
export const keyName = (n: number): string => `key-${n}`

/** Publishes `perKey` messages (metadata `seq` 0, 1, …) for each of `keys` keys: the keys at once, each in order. */
export const publishKeyed = (
  topics: PartitionedTopics.Service,
  topic: string,
  keys: number,
  perKey: number,
  from = 0
): Effect.Effect<void, unknown> =>
  Effect.forEach(
    Array.from({ length: keys }, (_, n) => keyName(n)),
    (key) =>
      Effect.forEach(
        Array.from({ length: perKey }, (_, i) => from + i),
        (seq) => topics.publish(topic, Message.make(`${key}/${seq}`, { metadata: { seq: String(seq) } }), { key }),
        { discard: true }
      ),
    { concurrency: "unbounded", discard: true }
  )

/**
 * Member processes of `topic`'s group `g` (test/support/partition-child.ts) against the suite's servers, recording
 * their handlers' starts and ends in the stream `{keyPrefix}events`, and what a test watches of them.
 */
export const memberProcesses = (topics: PartitionedTopics.Service, topic: string, keyPrefix: string) =>
  Effect.gen(function* () {
    const topology = yield* TestTopology
    const redis = yield* RedisClient.RedisClient
    const eventsKey = `${keyPrefix}events`
    const ownersNow = Effect.map(topics.inspect(topic, "g"), (states) => states.map((state) => state.owner))
    return {
      /** Starts a member process; it runs once it printed its first line. */
      spawn: (member: string) =>
        Effect.tap(
          spawnChild("test/support/partition-child.ts", topology, [keyPrefix, topic, "g", member, eventsKey]),
          firstLine
        ),
      /** Each partition's owner now. */
      ownersNow,
      /** Waits (at most 15 s) until the owners are as `until` wants them. */
      awaitOwners: (until: (owners: ReadonlyArray<string | undefined>) => boolean) =>
        ownersNow.pipe(Effect.repeat({ until, schedule: Schedule.spaced(25) }), Effect.timeout("15 seconds")),
      /** Waits (at most `within`) until the handlers ended `n` times. */
      ended: (n: number, within: Duration.Input = "30 seconds") =>
        Effect.map(redis.send<number>("XLEN", eventsKey), (events) => Math.floor(events / 2)).pipe(
          Effect.repeat({ until: (events) => events >= n, schedule: Schedule.spaced(20) }),
          Effect.timeout(within)
        ),
      /** Every start and end recorded, in the order Redis received them. */
      events: Effect.map(entriesOf(eventsKey), (entries) =>
        entries.map((entry): HandlerEvent => ({
          phase: entry.phase as "start" | "end",
          key: entry.key as string,
          seq: Number(entry.seq),
          member: entry.member as string
        }))
      )
    }
  })
