/**
 * The live tail of a source that keeps what is written to it (a run's stream, a group's change log) and announces
 * each write on a pub/sub channel: shared by ResumableStream readers and StreamAdapter subscriptions.
 *
 * The tail owns the transport: it listens on the channel before the source is first read (nothing written after
 * that read is missed), holds announcements in an inbox bounded in bytes, and ticks with a clock shared by every tail
 * of a layer. The inbox is a plain array, not a queue: the pull waiting for it (one at a time, as a stream pulls) is
 * resumed by the arrival itself, in the connection's message handler or the clock's tick, with no scheduler turn in
 * between; what it runs until it next waits runs there, as a raw ioredis listener's code would. Its follower owns
 * the position: which announced items come next, how to read the source from there, and what a quiet source means.
 * At each pull the tail either catches up (reads the source from the position: after a gap, a malformed announcement,
 * a reconnect of the subscriber connection — whose messages meanwhile are lost — or an overflow of the inbox) or
 * takes everything in its inbox at once and gives the announcements to the follower, which delivers those that follow
 * on and says `behind` at a gap. A tick with nothing heard since the previous one asks the
 * follower to check the source: an announcement lost with nothing after it is noticed within two ticks.
 *
 * @internal
 */
import { type Duration, Effect, Schedule, type Scope } from "effect"
import type * as RedisClient from "../RedisClient.js"
import type { RedisError } from "../RedisError.js"

/**
 * One clock for every tail of a layer: it calls each registered tail every interval, so a tail notices a quiet
 * source without a timer or a fiber of its own.
 */
export interface Clock {
  /** How often it ticks. */
  readonly interval: Duration.Duration
  /** Calls `onTick` every interval until the scope closes. */
  readonly register: (onTick: () => void) => Effect.Effect<void, never, Scope.Scope>
}

/** Starts a clock ticking every `interval` for as long as the scope lives. */
export const makeClock = (interval: Duration.Duration): Effect.Effect<Clock, never, Scope.Scope> =>
  Effect.gen(function* () {
    const tails = new Set<() => void>()
    const beat = Effect.sync(() => {
      for (const onTick of tails) onTick()
    })
    yield* Effect.forkScoped(Effect.repeat(beat, Schedule.spaced(interval)))
    return {
      interval,
      register: (onTick) =>
        Effect.acquireRelease(
          Effect.sync(() => tails.add(onTick)),
          () => Effect.sync(() => tails.delete(onTick))
        )
    }
  })

/** What one step of a follower delivers, and whether the source holds more that was not delivered. */
export interface Step<A> {
  readonly items: ReadonlyArray<A>
  readonly behind: boolean
}

/** The position in a source, and how to move it on. */
export interface Follower<A, E> {
  /**
   * The items of these announcements (in the order they arrived) that follow on from the position, in order; `behind`
   * at the first one that does not (a gap) or does not parse: the items before it are still delivered.
   */
  readonly announced: (messages: ReadonlyArray<string>) => Step<A>
  /** Reads the source from the position: the next items, and whether it holds more. */
  readonly catchUp: Effect.Effect<Step<A>, E>
  /** Nothing was heard for a tick: checks the source, `behind` when it holds what was not delivered. */
  readonly quiet: Effect.Effect<Step<A>, E>
  /** The subscriber connection came back (its messages meanwhile are lost: the tail catches up next). */
  readonly onReconnect?: (() => void) | undefined
}

/** Where a tail listens and how much it holds. */
export interface TailOptions {
  readonly redis: RedisClient.Service
  readonly channel: string
  readonly clock: Clock
  /** Most bytes of announcements waiting in the inbox; beyond, the tail drops them and catches up instead. */
  readonly maxInboxBytes: number
  /** Called each time the inbox overflowed. */
  readonly onOverflow: () => void
  /** Whether the source may hold items not delivered yet when the tail starts (then its first step catches up). */
  readonly behind: boolean
}

/**
 * Listens on the channel (confirmed by Redis when this returns) and returns the tail's pull: each call delivers the
 * next items, in order, possibly none (a tick, a catch-up that found nothing, announcements already delivered).
 */
export const follow = <A, E>(
  options: TailOptions,
  follower: Follower<A, E>
): Effect.Effect<Effect.Effect<ReadonlyArray<A>, E>, RedisError, Scope.Scope> =>
  Effect.gen(function* () {
    /** Announcements heard since the tail last took its inbox, in arrival order. */
    let messages: Array<string> = []
    /** Bytes of `messages`. */
    let inboxBytes = 0
    /** Announcements were dropped since the tail last took its inbox: it must catch up. */
    let overflowed = false
    /** The subscriber connection came back since the tail last took its inbox. */
    let reconnected = false
    /** A tick came since the tail last took its inbox (at most one is kept). */
    let ticked = false
    let behind = options.behind
    /** Something was heard since the last tick taken. */
    let heard = true
    /** The pull waiting for the inbox, resumed by what arrives (at once: no scheduler turn in between). */
    let waiting: ((arrived: Effect.Effect<void>) => void) | undefined
    const wake = () => {
      const resume = waiting
      waiting = undefined
      if (resume === undefined) return
      try {
        resume(Effect.void)
      } catch (error) {
        // thrown by code that ran on from the pull (an exit observer): rethrown on its own turn, as Effect's scheduler
        // would have, so that neither the connection's other listeners nor the shared clock stop here
        queueMicrotask(() => {
          throw error
        })
      }
    }
    yield* options.redis.listen([options.channel], (event) => {
      heard = true
      if (event._tag === "Reconnected") {
        reconnected = true
      } else if (overflowed) {
        return
      } else if (inboxBytes + event.message.length > options.maxInboxBytes) {
        // what the inbox held is of no use any more: the tail reads the source instead
        overflowed = true
        messages = []
        inboxBytes = 0
        options.onOverflow()
      } else {
        inboxBytes += event.message.length
        messages.push(event.message)
      }
      wake()
    })
    yield* options.clock.register(() => {
      ticked = true
      wake()
    })

    const moveOn = (step: Step<A>): ReadonlyArray<A> => {
      behind = step.behind
      return step.items
    }
    const catchUp = Effect.map(follower.catchUp, moveOn)
    const quiet = Effect.map(follower.quiet, moveOn)
    const nothing = Effect.succeed<ReadonlyArray<A>>([])

    /** What the inbox delivers, taken whole (the tail has just been woken, or found it full). */
    const take = (): Effect.Effect<ReadonlyArray<A>, E> => {
      const taken = messages
      messages = []
      inboxBytes = 0
      if (overflowed || reconnected) behind = true
      if (reconnected) follower.onReconnect?.()
      overflowed = false
      reconnected = false
      const wasQuiet = ticked && !heard
      if (ticked) heard = false
      ticked = false
      if (behind) return nothing
      if (wasQuiet) return quiet
      if (taken.length === 0) return nothing
      return Effect.succeed(moveOn(follower.announced(taken)))
    }
    const isEmpty = () => messages.length === 0 && !ticked && !reconnected && !overflowed
    /** Resumes once the inbox holds something (an interrupted wait leaves the inbox as it is, and is forgotten). */
    const arrival = Effect.callback<void>((resume) => {
      if (!isEmpty()) return resume(Effect.void)
      if (waiting !== undefined) return resume(Effect.die(new Error("a live tail is pulled by one pull at a time")))
      waiting = resume
      return Effect.sync(() => {
        if (waiting === resume) waiting = undefined
      })
    })
    const listen: Effect.Effect<ReadonlyArray<A>, E> = Effect.suspend(() =>
      isEmpty() ? Effect.flatMap(arrival, take) : take()
    )
    const pull = Effect.suspend(() => (behind ? catchUp : listen))
    return pull
  })
