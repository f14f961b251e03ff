/**
 * Expiry of members inside a container (a StreamAdapter group's items, a subject's properties) on Redis 7.0, where
 * hash fields cannot expire, announced to every instance.
 *
 * Each container keeps its members' deadlines (milliseconds since the epoch) in a sorted set of its own slot, and
 * the capability keeps an index: a sorted set, in a slot of its own, holding for each container a hint no later than
 * its earliest deadline. A sweeper in every instance takes the due containers from the index every `interval` and
 * runs the capability's sweep on each (a script that removes the due members and announces them in one atomic step,
 * so concurrent sweepers never announce a member twice), then settles the container's hint to its next deadline.
 *
 * The index and a container live in different slots, so they change in two steps. A writer hints before it writes a
 * deadline (a crash in between leaves an early hint: one sweep that finds nothing). A hint always changes the
 * container's score (it lowers it by 1 ms when it is not earlier), and the sweeper settles with a compare-and-set on
 * the score it read: a hint written during a sweep is never overwritten, the container stays due and is swept again.
 *
 * @internal
 */
import { Clock, Duration, Effect, Schedule, type Scope } from "effect"
import type * as RedisClient from "../RedisClient.js"
import type { RedisError } from "../RedisError.js"
import { make as script } from "../RedisScript.js"
import * as Outage from "./outage.js"

/** What a write does to a member's deadline: a time to live in milliseconds from the write, drop it, or keep it. */
export type TtlChange = number | "drop" | "keep"

/**
 * The change a `ttl` option asks for: a finite duration is a time to live (at least 1 ms), `Duration.infinity` drops
 * the deadline, none keeps it.
 */
export const ttlChange = (ttl: Duration.Input | undefined): TtlChange => {
  if (ttl === undefined) return "keep"
  const duration = Duration.fromInputUnsafe(ttl)
  return Duration.isFinite(duration) ? Math.max(1, Math.round(Duration.toMillis(duration))) : "drop"
}

/** A change as the scripts take it: the deadline (milliseconds since the epoch) from `now`, `drop`, or empty (keep). */
export const deadlineArg = (change: TtlChange, now: number): number | string =>
  typeof change === "number" ? now + change : change === "drop" ? "drop" : ""

/** The earliest deadline `changes` set from `now`, if any sets one. */
export const earliestDeadline = (changes: Iterable<TtlChange>, now: number): number | undefined => {
  let earliest: number | undefined
  for (const change of changes) {
    if (typeof change === "number" && (earliest === undefined || now + change < earliest)) earliest = now + change
  }
  return earliest
}

/**
 * Hints that `member` has a deadline at `deadline`: its score becomes the earlier of the two, and changes in any case
 * (1 ms earlier when the current score is not later), so that a sweep that read the old score does not settle.
 * KEYS[1] index; ARGV[1] member, ARGV[2] deadline. Reply: nil.
 */
const hintScript = script<[index: string], [member: string, deadline: number], null>()(
  "Expiry.hint",
  `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local hint = tonumber(ARGV[2])
if score and tonumber(score) <= hint then hint = tonumber(score) - 1 end
redis.call('ZADD', KEYS[1], hint, ARGV[1])
return nil`
)

/**
 * Settles `member`'s hint after a sweep, only if its score is still the one the sweep read: to the container's next
 * deadline, or out of the index when it has none. KEYS[1] index; ARGV[1] member, ARGV[2] the score read, ARGV[3] the
 * next deadline or empty. Reply: 1 when settled, 0 when a writer hinted meanwhile.
 */
const settleScript = script<[index: string], [member: string, read: string, next: string], number>()(
  "Expiry.settle",
  `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('ZREM', KEYS[1], ARGV[1]) else redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) end
return 1`
)

/** Tells the index that `member` of `index` has a deadline at `deadline` (call before writing the deadline). */
export const hint = (
  redis: RedisClient.Service,
  index: string,
  member: string,
  deadline: number
): Effect.Effect<void, RedisError> => Effect.asVoid(redis.eval(hintScript, [index], [member, deadline]))

/** What a sweeper needs. */
export interface SweeperOptions {
  readonly redis: RedisClient.Service
  /** The capability's index of containers with deadlines. */
  readonly index: string
  /** How often the index is looked at. */
  readonly interval: Duration.Duration
  /** Names the sweeper in its logs (e.g. "StreamAdapter expiry"). */
  readonly component: string
  /**
   * Removes and announces the members of container `member` due at `now`, in one atomic step; its next deadline, or
   * undefined when none is left.
   */
  readonly sweep: (member: string, now: number) => Effect.Effect<number | undefined, RedisError>
}

/** Due containers taken from the index per round trip; a full page is followed by the next at once. */
const pageSize = 100

/**
 * Runs the sweeper in `scope` until the scope closes. A failure (Redis unreachable, a container that cannot be swept)
 * is logged once per outage and retried at the next interval: the loop never ends on its own.
 */
export const sweeper = (options: SweeperOptions): Effect.Effect<void, never, Scope.Scope> => {
  const { redis, index } = options
  const outage = Outage.make(options.component)
  const sweepOne = (member: string, read: string, now: number) =>
    Effect.flatMap(options.sweep(member, now), (next) =>
      redis.eval(settleScript, [index], [member, read, next === undefined ? "" : String(next)])
    )
  /** One page of due containers swept; whether to sweep the next at once (a full page, every container swept). */
  const page = Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const due = yield* redis.send<ReadonlyArray<string>>(
      "ZRANGEBYSCORE",
      index,
      "-inf",
      now,
      "WITHSCORES",
      "LIMIT",
      0,
      pageSize
    )
    const pairs: Array<readonly [string, string]> = []
    for (let at = 0; at + 1 < due.length; at += 2) pairs.push([due[at] as string, due[at + 1] as string])
    // one container that cannot be swept does not hold up the others
    const failures = yield* Effect.forEach(
      pairs,
      ([member, read]) => Effect.flip(sweepOne(member, read, now)).pipe(Effect.orElseSucceed(() => undefined)),
      { concurrency: 8 }
    )
    const failure = failures.find((error) => error !== undefined)
    if (failure !== undefined) return yield* Effect.fail(failure)
    return pairs.length === pageSize
  })
  const round = Effect.gen(function* () {
    while (yield* page) {
      // a full page swept: the next one at once
    }
  }).pipe(
    Effect.tap(() => outage.succeeded),
    Effect.catch((error) => outage.failed(error))
  )
  return Effect.asVoid(Effect.forkScoped(Effect.repeat(round, Schedule.spaced(options.interval))))
}
