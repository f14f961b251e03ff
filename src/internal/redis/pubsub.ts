/**
 * One shared pub/sub connection per `RedisClient`, multiplexed over any number of subscribers.
 *
 * A channel is `SUBSCRIBE`d when its first subscriber arrives and `UNSUBSCRIBE`d when its last one leaves. The
 * connection is opened on first use, reconnects on the client's schedule and resubscribes every channel by itself
 * (ioredis `autoResubscribe`); subscribers are told about each reconnect, since pub/sub loses what was published
 * while the connection was down. Subscribe/unsubscribe commands are sent in order (under a lock, without waiting
 * there), and `subscribe` returns once Redis confirmed each of its channels: nothing published after that is missed.
 *
 * @internal
 */
import { Effect, Option, Queue, Scope, Semaphore } from "effect"
import type { RedisError } from "../../RedisError.js"
import type { PubSubEvent, PubSubMessage } from "../../RedisClient.js"
import type { Client } from "./connection.js"
import { classify } from "./errors.js"

type Listener = (event: PubSubEvent) => void

/** The multiplexed subscriber. */
export interface Hub {
  /** Subscribes `listener` to `channels`; resolves once Redis confirmed the subscription; scoped. */
  readonly listen: (channels: ReadonlyArray<string>, listener: Listener) => Effect.Effect<void, RedisError, Scope.Scope>
  /** A queue of the events of `channels`, subscribed when this returns; scoped. */
  readonly subscribe: (
    channels: ReadonlyArray<string>
  ) => Effect.Effect<Queue.Dequeue<PubSubEvent>, RedisError, Scope.Scope>
}

/**
 * Makes the hub; `openConnection` opens the subscriber connection, closed with the hub's scope; `secrets` are
 * scrubbed from its errors.
 */
export const make = (
  openConnection: Effect.Effect<Client, RedisError, Scope.Scope>,
  secrets: ReadonlyArray<string>
): Effect.Effect<Hub, never, Scope.Scope> =>
  Effect.gen(function* () {
    const hubScope = yield* Effect.scope
    const lock = yield* Semaphore.make(1)
    const listeners = new Map<string, Set<Listener>>()
    let connection: Client | undefined

    // one event per message, whatever the number of listeners (events are read, never changed)
    const dispatch = (channel: string, message: string) => {
      const set = listeners.get(channel)
      if (set === undefined) return
      const event: PubSubMessage = { _tag: "Message", channel, message }
      for (const listener of set) listener(event)
    }
    const announceReconnect = () => {
      const all = new Set<Listener>()
      for (const set of listeners.values()) for (const listener of set) all.add(listener)
      for (const listener of all) listener({ _tag: "Reconnected" })
    }

    const ensureConnection = Effect.gen(function* () {
      if (connection !== undefined) return connection
      const opened = yield* Scope.provide(openConnection, hubScope)
      let dropped = false
      opened.on("message", dispatch)
      opened.on("close", () => {
        dropped = true
      })
      opened.on("ready", () => {
        if (dropped) announceReconnect()
        dropped = false
      })
      connection = opened
      return opened
    })

    /** The SUBSCRIBE confirmation still awaited, per channel: a second subscriber of the channel waits for it too. */
    const confirming = new Map<string, Promise<unknown>>()

    /**
     * Registers `listener` and sends the SUBSCRIBE of the channels nobody listened to yet; resolves once every channel
     * of `channels` is confirmed. Commands are sent under the lock (so a SUBSCRIBE and a later UNSUBSCRIBE of a channel
     * reach Redis in that order, on the one connection) but awaited outside it: concurrent subscriptions cost one
     * round trip together, not one each.
     */
    const add = (channels: ReadonlyArray<string>, listener: Listener) =>
      Effect.gen(function* () {
        const conn = yield* ensureConnection
        const fresh = channels.filter((channel) => !listeners.has(channel))
        for (const channel of channels) {
          const set = listeners.get(channel) ?? new Set()
          set.add(listener)
          listeners.set(channel, set)
        }
        if (fresh.length > 0) {
          const sent = conn.subscribe(...fresh)
          const settled = sent.then(
            () => undefined,
            () => undefined
          )
          for (const channel of fresh) confirming.set(channel, sent)
          void settled.then(() => {
            for (const channel of fresh) if (confirming.get(channel) === sent) confirming.delete(channel)
          })
        }
        return [
          ...new Set(channels.flatMap((channel) => Option.toArray(Option.fromUndefinedOr(confirming.get(channel)))))
        ]
      }).pipe(
        lock.withPermits(1),
        Effect.flatMap((pending) =>
          Effect.tryPromise({
            try: () => Promise.all(pending),
            catch: (cause) => classify(cause, "subscribe", secrets)
          })
        ),
        Effect.onError(() => remove(channels, listener, false).pipe(lock.withPermits(1))),
        Effect.asVoid
      )

    /** Unregisters `listener`; the channels nobody listens to any more are unsubscribed (sent now, not awaited). */
    const remove = (channels: ReadonlyArray<string>, listener: Listener, unsubscribe = true) =>
      Effect.sync(() => {
        const emptied: Array<string> = []
        for (const channel of channels) {
          const set = listeners.get(channel)
          if (set === undefined) continue
          set.delete(listener)
          if (set.size === 0) {
            listeners.delete(channel)
            emptied.push(channel)
          }
        }
        if (!unsubscribe || emptied.length === 0 || connection?.status !== "ready") return
        void connection.unsubscribe(...emptied).catch(() => undefined)
      })

    const listen = (channels: ReadonlyArray<string>, listener: Listener) =>
      Effect.acquireRelease(add(channels, listener), () => remove(channels, listener).pipe(lock.withPermits(1)))

    const subscribe = (channels: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        const queue = yield* Queue.unbounded<PubSubEvent>()
        yield* listen(channels, (event) => void Queue.offerUnsafe(queue, event))
        return queue as Queue.Dequeue<PubSubEvent>
      })

    return { listen, subscribe }
  })
