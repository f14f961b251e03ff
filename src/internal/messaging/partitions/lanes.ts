/**
 * A partition's messages one by one, ordered per key: per-key lanes on workers. A lane (a key's waiting messages, or
 * one message without a key) is in the ready queue at most once and held by at most one worker, so one worker at a
 * time handles its head; different lanes run on the workers at once. A worker's turn, under one permit, handles its
 * lane's messages one after another, then the next ready lanes', at most `turnLength` messages in all (the lane then
 * goes to the back of the queue), and ends early at a failure short of its last delivery (its retry is the next turn).
 *
 * @internal
 */
import { type Cause, Effect, Exit, Queue, type Scope } from "effect"
import type { MessagingError } from "../../../Message.js"
import type { Received } from "../../../Subscriber.js"
import type { Activity, Attempts } from "./attempts.js"
import { keyMetadata } from "./layout.js"

/** The most messages a worker handles under one permit before its lane goes to the back of the queue. */
const turnLength = 32

/** A key's messages waiting in order (or one message without a key). */
interface Lane {
  readonly key: string | undefined
  readonly items: Array<Received>
}

/** Starts, in `scope`, the pump from `messages` into lanes and `workers` workers running `handle` on each message. */
export const run = (options: {
  readonly messages: Queue.Dequeue<Received, MessagingError | Cause.Done>
  readonly workers: number
  readonly handle: (received: Received, attempt: number) => Effect.Effect<void, unknown>
  readonly attempts: Attempts
  readonly activity: Activity
  readonly scope: Scope.Scope
}): Effect.Effect<void> =>
  Effect.gen(function* () {
    const { attempts, activity } = options
    const lanes = new Map<string, Lane>()
    const ready = yield* Queue.unbounded<Lane>()

    const pump = Effect.gen(function* () {
      for (;;) {
        const received = yield* Queue.take(options.messages)
        const key = received.message.metadata[keyMetadata]
        const lane = key === undefined ? undefined : lanes.get(key)
        if (lane !== undefined) lane.items.push(received)
        else {
          const fresh: Lane = { key, items: [received] }
          if (key !== undefined) lanes.set(key, fresh)
          Queue.offerUnsafe(ready, fresh)
        }
      }
    })

    /** A lane with nothing left is forgotten (its key's next message starts a new one). */
    const finish = (lane: Lane) => {
      if (lane.key !== undefined && lanes.get(lane.key) === lane) lanes.delete(lane.key)
    }

    const turn = (held: { lane: Lane | undefined }) => (attempt: number) =>
      Effect.gen(function* () {
        for (let handled = 0; handled < turnLength && !activity.stopping(); handled++) {
          let lane = held.lane
          if (lane !== undefined && lane.items.length === 0) {
            finish(lane)
            const next = Queue.takeUnsafe(ready)
            lane = held.lane = next !== undefined && Exit.isSuccess(next) ? next.value : undefined
          }
          if (lane === undefined) return undefined
          const received = lane.items[0] as Received
          const retry = yield* attempts.attemptOnce(
            [received],
            (n) => options.handle(received, n),
            handled === 0 ? attempt : 0
          )
          if (retry !== undefined) return retry
          lane.items.shift()
        }
        return undefined
      })

    const worker = Effect.gen(function* () {
      while (!activity.stopping()) {
        const held: { lane: Lane | undefined } = { lane: yield* Queue.take(ready) }
        if (activity.stopping()) return
        yield* attempts.withRetries(turn(held))
        const lane = held.lane
        if (lane === undefined) continue
        if (lane.items.length > 0) Queue.offerUnsafe(ready, lane)
        else finish(lane)
      }
    })

    yield* Effect.forkIn(Effect.ignore(pump), options.scope)
    for (let i = 0; i < options.workers; i++) yield* Effect.forkIn(worker, options.scope)
  })
