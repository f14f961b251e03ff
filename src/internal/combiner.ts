/**
 * Request combining per key: while one batch of a key is being written, later requests of that key queue up and go
 * together in the next batch (group commit). By default one fiber per busy key writes its batches one after another,
 * so a key's writes never overlap, and each request gets its own result. Idle keys hold nothing. A batch holds at most
 * `maxBatch` requests and about `maxBatchBytes` (as `weigh` counts them; one request at least), so a burst becomes
 * several bounded writes rather than one long script that blocks Redis.
 *
 * With `maxBatchesInFlight` above 1, a busy key sends its next batch without waiting for the previous one's reply
 * (pipelined: Redis runs one while this process prepares the next). Batches in flight together may then take effect in
 * either order (a retried one after a later one): only for writes whose concurrent callers need no order among
 * themselves (each caller still waits for its own result before its next write), and whose `state` is not used.
 *
 * @internal
 */
import { Deferred, Effect, Exit, type Scope } from "effect"
import { afterMicrotasks } from "./microtasks.js"
import * as Waiter from "./waiter.js"

/**
 * A busy key: its queued requests, its lanes (at most `maxBatchesInFlight`) and how many of them are writing, their
 * shared state.
 */
interface Busy<Req, Res, E, S> {
  readonly queue: Array<Pending<Req, Res, E>>
  lanes: number
  writing: number
  readonly state: S
}

/** Below this many queued requests, a batch takes them all rather than sharing them out among lanes. */
const minShare = 32

interface Pending<Req, Res, E> {
  readonly request: Req
  /** Who waits for the result; none for a request submitted without waiting. */
  readonly done: Waiter.Waiter<Res, E> | undefined
}

/** Submits requests by key. */
export interface Combiner<Req, Res, E> {
  /** Submits a request and waits for its result. */
  readonly submit: (key: string, request: Req) => Effect.Effect<Res, E>
  /** Submits a request whose result nobody waits for (the batch's `write` still sees it). */
  readonly submitUnsafe: (key: string, request: Req) => void
  /** Waits until every request submitted so far is written. */
  readonly flush: Effect.Effect<void>
}

/**
 * Makes a combiner whose batches `write` turns into one result per request, in order. `state` is created when a key
 * becomes busy and shared by its consecutive batches (e.g. the value the previous batch wrote). Draining fibers live in
 * `scope`; when it closes, waiting requests are interrupted, and later ones fail with `closed` (or are interrupted).
 */
export const make = <Req, Res, E, S>(options: {
  readonly scope: Scope.Scope
  readonly state: () => S
  readonly write: (key: string, batch: ReadonlyArray<Req>, state: S) => Effect.Effect<ReadonlyArray<Exit.Exit<Res, E>>>
  /** The error of a request submitted after `scope` closed. Default: the request is interrupted. */
  readonly closed?: ((request: Req) => E) | undefined
  /** Most requests per batch. Default 1,000. */
  readonly maxBatch?: number | undefined
  /** The size of a request, in bytes, for `maxBatchBytes`. Default: 0 (only the count limits a batch). */
  readonly weigh?: ((request: Req) => number) | undefined
  /** Most bytes per batch (a request larger than this goes alone). Default 1 MiB. */
  readonly maxBatchBytes?: number | undefined
  /** Most batches of one key written at once (see the module header). Default 1: one after another. */
  readonly maxBatchesInFlight?: number | undefined
}): Combiner<Req, Res, E> => {
  const maxBatch = options.maxBatch ?? 1000
  const maxLanes = options.maxBatchesInFlight ?? 1
  const maxBatchBytes = options.maxBatchBytes ?? 1024 * 1024
  const weigh = options.weigh

  /**
   * Takes the next batch of a key off the front of its queue, within the limits: an equal share of what is queued for
   * each of its lanes not writing yet (all of it with one lane), but at least `minShare` requests (a small burst is one
   * write, not several).
   */
  const nextBatch = ({ lanes, queue, writing }: Busy<Req, Res, E, S>) => {
    const share = Math.ceil(queue.length / Math.max(1, lanes - writing))
    let count = Math.min(Math.max(share, Math.min(queue.length, minShare)), maxBatch)
    if (weigh !== undefined) {
      let bytes = 0
      for (let index = 0; index < count; index++) {
        bytes += weigh((queue[index] as Pending<Req, Res, E>).request)
        if (index > 0 && bytes > maxBatchBytes) {
          count = index
          break
        }
      }
    }
    return queue.splice(0, count)
  }
  const queues = new Map<string, Busy<Req, Res, E, S>>()
  /** Resolved whenever the last busy key becomes idle. */
  let idle = Deferred.makeUnsafe<void>()

  /** Completes each request with its exit (interrupted when there is none: the drain was stopped). */
  const settle = (batch: ReadonlyArray<Pending<Req, Res, E>>, exits: ReadonlyArray<Exit.Exit<Res, E>>) => {
    batch.forEach((pending, index) => {
      if (pending.done !== undefined) Waiter.complete(pending.done, exits[index] ?? Exit.interrupt())
    })
  }

  /** Writes the key's queued requests, a batch at a time, until none is left. */
  const drain = (key: string, busy: Busy<Req, Res, E, S>): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (busy.queue.length === 0) return Effect.void
      const batch = nextBatch(busy)
      busy.writing++
      return Effect.exit(
        options.write(
          key,
          batch.map((pending) => pending.request),
          busy.state
        )
      ).pipe(
        Effect.ensuring(Effect.sync(() => void busy.writing--)),
        Effect.flatMap((exit) => {
          settle(batch, Exit.isSuccess(exit) ? exit.value : batch.map(() => Exit.failCause(exit.cause)))
          return drain(key, busy)
        })
      )
    })

  /**
   * One lane of a busy key: started at once (no turn of the event loop), it takes its first batch once the fibers
   * submitting with the request that started it had their turn, then drains; the key is idle when its last lane ends.
   */
  const lane = (key: string, busy: Busy<Req, Res, E, S>) =>
    Effect.andThen(afterMicrotasks, drain(key, busy)).pipe(
      Effect.onInterrupt(() => Effect.sync(() => settle(busy.queue.splice(0), []))),
      Effect.ensuring(
        Effect.sync(() => {
          if (--busy.lanes > 0) return
          queues.delete(key)
          if (queues.size === 0) {
            const wasIdle = idle
            idle = Deferred.makeUnsafe<void>()
            Deferred.doneUnsafe(wasIdle, Exit.void)
          }
        })
      )
    )

  /** Queues a request; returns the lane to start when the key has fewer than `maxBatchesInFlight`. */
  const enqueue = (key: string, pending: Pending<Req, Res, E>) => {
    let busy = queues.get(key)
    if (busy === undefined) {
      busy = { queue: [], lanes: 0, writing: 0, state: options.state() }
      queues.set(key, busy)
    }
    busy.queue.push(pending)
    if (busy.lanes >= maxLanes) return undefined
    busy.lanes++
    return Effect.forkIn(lane(key, busy), options.scope, { startImmediately: true })
  }

  return {
    submit: (key, request) =>
      Effect.suspend(() => {
        // a request to a combiner whose scope closed (its layer is gone) would wait for ever: it fails at once
        if (options.scope.state._tag === "Closed") {
          return options.closed === undefined ? Effect.interrupt : Effect.fail(options.closed(request))
        }
        const done = Waiter.make<Res, E>()
        // queued and its lane started as one step: interrupted in between, it would leave a lane counted that never
        // runs (the key's requests would wait forever)
        const queued = Effect.suspend(() => Effect.asVoid(enqueue(key, { request, done }) ?? Effect.void))
        return Effect.andThen(Effect.uninterruptible(queued), Waiter.wait(done))
      }),
    // the drain of a request nobody waits for starts from a fiber of its own (it gets the runtime's default context)
    submitUnsafe: (key, request) => {
      const start = enqueue(key, { request, done: undefined })
      if (start !== undefined) Effect.runFork(start)
    },
    flush: Effect.suspend(() => (queues.size === 0 ? Effect.void : Deferred.await(idle)))
  }
}
