/**
 * Request combining per key: while one batch of a key is being written, later requests of that key queue up and go
 * together in the next batch (group commit). One fiber per busy key writes its batches one after another, so a key's
 * writes never overlap, and each request gets its own result. Idle keys hold nothing. A batch holds at most
 * `maxBatch` requests and about `maxBatchBytes` (as `weigh` counts them; one request at least), so a burst becomes
 * several bounded writes rather than one long script that blocks Redis.
 *
 * @internal
 */
import { Deferred, Effect, Exit, type Scope } from "effect"

interface Pending<Req, Res, E> {
  readonly request: Req
  /** Who waits for the result; none for a request submitted without waiting. */
  readonly done: Deferred.Deferred<Res, E> | undefined
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
 * `scope`; when it closes, waiting requests are interrupted.
 */
export const make = <Req, Res, E, S>(options: {
  readonly scope: Scope.Scope
  readonly state: () => S
  readonly write: (key: string, batch: ReadonlyArray<Req>, state: S) => Effect.Effect<ReadonlyArray<Exit.Exit<Res, E>>>
  /** Most requests per batch. Default 1,000. */
  readonly maxBatch?: number | undefined
  /** The size of a request, in bytes, for `maxBatchBytes`. Default: 0 (only the count limits a batch). */
  readonly weigh?: ((request: Req) => number) | undefined
  /** Most bytes per batch (a request larger than this goes alone). Default 1 MiB. */
  readonly maxBatchBytes?: number | undefined
}): Combiner<Req, Res, E> => {
  const maxBatch = options.maxBatch ?? 1000
  const maxBatchBytes = options.maxBatchBytes ?? 1024 * 1024
  const weigh = options.weigh

  /** Takes the next batch off the front of `queue`, within the limits. */
  const nextBatch = (queue: Array<Pending<Req, Res, E>>) => {
    let count = Math.min(queue.length, maxBatch)
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
  const queues = new Map<string, Array<Pending<Req, Res, E>>>()
  /** Resolved whenever the last busy key becomes idle. */
  let idle = Deferred.makeUnsafe<void>()

  /** Completes each request with its exit (interrupted when there is none: the drain was stopped). */
  const settle = (batch: ReadonlyArray<Pending<Req, Res, E>>, exits: ReadonlyArray<Exit.Exit<Res, E>>) => {
    batch.forEach((pending, index) => {
      if (pending.done !== undefined) Deferred.doneUnsafe(pending.done, exits[index] ?? Exit.interrupt())
    })
  }

  const drain = (key: string, queue: Array<Pending<Req, Res, E>>) =>
    Effect.gen(function* () {
      const state = options.state()
      while (queue.length > 0) {
        const batch = nextBatch(queue)
        const exit = yield* Effect.exit(
          options.write(
            key,
            batch.map((pending) => pending.request),
            state
          )
        )
        settle(batch, Exit.isSuccess(exit) ? exit.value : batch.map(() => Exit.failCause(exit.cause)))
      }
      queues.delete(key)
      if (queues.size === 0) {
        const wasIdle = idle
        idle = Deferred.makeUnsafe<void>()
        Deferred.doneUnsafe(wasIdle, Exit.void)
      }
    }).pipe(
      Effect.onInterrupt(() =>
        Effect.sync(() => {
          queues.delete(key)
          settle(queue.splice(0), [])
        })
      )
    )

  /** Queues a request; returns the drain to start when the key was idle. */
  const enqueue = (key: string, pending: Pending<Req, Res, E>) => {
    const queue = queues.get(key)
    if (queue !== undefined) {
      queue.push(pending)
      return undefined
    }
    const fresh = [pending]
    queues.set(key, fresh)
    return Effect.forkIn(drain(key, fresh), options.scope)
  }

  return {
    submit: (key, request) =>
      Effect.suspend(() => {
        const done = Deferred.makeUnsafe<Res, E>()
        const start = enqueue(key, { request, done })
        return start === undefined ? Deferred.await(done) : Effect.andThen(start, Deferred.await(done))
      }),
    // the drain of a request nobody waits for starts from a fiber of its own (it gets the runtime's default context)
    submitUnsafe: (key, request) => {
      const start = enqueue(key, { request, done: undefined })
      if (start !== undefined) Effect.runFork(start)
    },
    flush: Effect.suspend(() => (queues.size === 0 ? Effect.void : Deferred.await(idle)))
  }
}
