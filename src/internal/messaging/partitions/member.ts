/**
 * A member of a group of a partitioned topic: it keeps its membership alive, owns the partitions the live members
 * assign to it (every M-th partition of the sorted members, from its place), and runs each while its lease holds.
 *
 * Every tick (a fifth of the lease time, and at once when a member of the group announces a change on the group's
 * channel: it joined, left, or released a partition) it re-reads the topic's partitions (a `grow` adds some), renews
 * its membership and the leases of what it owns, gives up
 * the partitions no longer assigned to it (drained: it stops reading, lets what runs finish, then releases the lease
 * and announces it), and takes the assigned ones whose lease is free (a new fencing token each time). A partition whose lease could not be
 * renewed in time (Redis unreachable or hung, the lease taken) is stopped at once, before the lease can expire in
 * Redis: its running handlers are interrupted, and what it held stays pending for the next owner. A member that dies
 * stops renewing; its membership and leases expire after the lease time and the others take its partitions.
 *
 * @internal
 */
import { Deferred, Duration, Effect, FiberSet, Schedule, type Scope } from "effect"
import { fromRedis, type MessagingError } from "../../../Message.js"
import { makeSignal } from "../consumer/signal.js"
import * as Leases from "./leases.js"
import { type Owned, type PartitionContext, start } from "./partition.js"

/** A partition this member holds the lease of. */
interface Held {
  /** The lease's value: `<member>|<token>`. */
  readonly holder: string
  readonly owned: Owned
  /** Until when the lease surely holds (the last renewal's send time plus the lease time). */
  validUntil: number
  /** Running; being drained (renewed meanwhile); stopped for a lease lost; released (its lease let go). */
  state: "running" | "leaving" | "lost" | "released"
}

/** Runs a member until interrupted (then it drains and leaves); fails when a partition cannot be read at all. */
export const run = (
  context: PartitionContext,
  member: string,
  leaseMillis: number
): Effect.Effect<never, MessagingError, Scope.Scope> =>
  Effect.gen(function* () {
    const { redis, keyPrefix, topic, subscription, outage } = context
    /** The topics of the partitions, re-read every tick (a `grow` elsewhere adds some). */
    let partitions = context.partitions
    const group = subscription.group
    const membersKey = Leases.membersKeyOf(keyPrefix, topic, group)
    const tickMillis = Math.max(20, Math.floor(leaseMillis / 5))
    const held = new Map<number, Held>()
    const failed = yield* Deferred.make<never, MessagingError>()
    const background = yield* FiberSet.make()
    const leaseKeys = (index: number) => Leases.leaseKeysOf(keyPrefix, partitions[index] as string, group)
    const setLease = (index: number, holder: string, ttl: number) =>
      redis.eval(Leases.renew, [leaseKeys(index)[0]], [holder, ttl])

    const changes = Leases.changesChannelOf(membersKey)
    /** Tells the group's other members that something changed (they tick at once). */
    const announce = Effect.ignore(redis.send("PUBLISH", changes, member))
    /** Raised when another member announced a change. */
    const changed = makeSignal()
    /** Stops a partition (drained or aborted), releases its lease, announces it, and forgets it. */
    const stop = (index: number, entry: Held, how: "drain" | "abort") =>
      (how === "drain" ? entry.owned.drain : entry.owned.abort).pipe(
        Effect.andThen(Effect.sync(() => void (entry.state = "released"))),
        Effect.andThen(Effect.ignore(setLease(index, entry.holder, 0))),
        Effect.andThen(announce),
        Effect.ensuring(Effect.sync(() => held.delete(index)))
      )

    const lose = (index: number, entry: Held, why: string) =>
      Effect.suspend(() => {
        if (entry.state === "lost" || entry.state === "released") return Effect.void
        entry.state = "lost"
        return Effect.andThen(
          Effect.logWarning(`PartitionedTopics: ${member} stops partition ${index} of ${topic}/${group}: ${why}`),
          FiberSet.run(background, stop(index, entry, "abort"))
        )
      })

    // taken and started as one step: a shutdown in between would leave a lease held that nobody tracks
    const take = (index: number) =>
      Effect.uninterruptible(
        Effect.gen(function* () {
          const [lease, fence] = leaseKeys(index)
          const sentAt = Date.now()
          const token = yield* redis.eval(Leases.acquire, [lease, fence], [member, leaseMillis])
          if (token === 0) return
          const holder = `${member}|${token}`
          const owned = yield* start(context, index, partitions[index] as string, { key: lease, holder, token }).pipe(
            Effect.tapError(() => Effect.ignore(setLease(index, holder, 0))),
            Effect.catch((error) => Effect.as(Deferred.fail(failed, error), undefined))
          )
          if (owned === undefined) return
          held.set(index, { holder, owned, validUntil: sentAt + leaseMillis, state: "running" })
          yield* FiberSet.run(
            background,
            Effect.catch(owned.failure, (error) => Deferred.fail(failed, error))
          )
        })
      )

    let joined = false
    const tick = Effect.gen(function* () {
      changed.lower()
      const sentAt = Date.now()
      const members = yield* redis.eval(Leases.heartbeat, [membersKey], [member, leaseMillis])
      const stored = yield* context.storedPartitions
      if (stored.length > partitions.length) partitions = stored
      if (!joined) {
        joined = true
        yield* announce
      }
      const wanted = new Set(Leases.assigned(member, members, partitions.length))
      yield* Effect.forEach(
        Array.from(held).filter(([, entry]) => entry.state === "running" || entry.state === "leaving"),
        ([index, entry]) =>
          Effect.flatMap(setLease(index, entry.holder, leaseMillis), (mine) =>
            mine === 1
              ? Effect.sync(() => void (entry.validUntil = sentAt + leaseMillis))
              : lose(index, entry, "its lease was taken")
          ),
        { concurrency: "unbounded", discard: true }
      )
      for (const [index, entry] of held) {
        if (entry.state === "running" && !wanted.has(index)) {
          entry.state = "leaving"
          yield* FiberSet.run(background, stop(index, entry, "drain"))
        }
      }
      yield* Effect.forEach(
        Array.from(wanted).filter((index) => !held.has(index)),
        take,
        { concurrency: "unbounded", discard: true }
      )
    })

    // the watchdog does not wait for Redis: a lease about to expire unrenewed stops its partition in time
    const watchdog = Effect.suspend(() =>
      Effect.forEach(
        Array.from(held).filter(
          ([, entry]) =>
            (entry.state === "running" || entry.state === "leaving") && Date.now() > entry.validUntil - tickMillis
        ),
        ([index, entry]) => lose(index, entry, "its lease could not be renewed in time"),
        { discard: true }
      )
    )

    yield* Effect.addFinalizer(() =>
      Effect.andThen(
        Effect.forEach(
          Array.from(held),
          ([index, entry]) =>
            entry.state === "released" ? Effect.void : stop(index, entry, entry.state === "lost" ? "abort" : "drain"),
          {
            concurrency: "unbounded",
            discard: true
          }
        ),
        Effect.ignore(redis.eval(Leases.heartbeat, [membersKey], [member, 0])).pipe(Effect.andThen(announce))
      )
    )
    yield* redis
      .listen([changes], (event) => {
        if (event._tag === "Reconnected" || event.message !== member) changed.raise()
      })
      .pipe(Effect.mapError(fromRedis(topic)))
    yield* Effect.forkScoped(Effect.repeat(watchdog, Schedule.spaced(Math.max(10, tickMillis / 2))))
    yield* Effect.forkScoped(
      tick.pipe(
        Effect.mapError(fromRedis(topic)),
        Effect.matchEffect({
          onFailure: (error) => outage.failed({ message: `${member} of ${topic}/${group}: ${error.message}` }),
          onSuccess: () => outage.succeeded
        }),
        Effect.andThen(changed.await(Duration.millis(tickMillis))),
        Effect.forever
      )
    )
    return yield* Deferred.await(failed)
  })
