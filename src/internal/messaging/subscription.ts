/**
 * A subscription's options with their defaults applied: what a consumer of a group needs beyond who it is.
 *
 * @internal
 */
import { hostname } from "node:os"
import { Duration, Schedule } from "effect"
import type { SubscribeOptions } from "../../Subscriber.js"
import { nthDelay } from "../schedules.js"
import type { ConsumerOptions } from "./consumer.js"

/** 100 ms doubling each delivery, at most 30 seconds, jittered (see `Subscriber.defaultRedeliveryDelay`). */
export const defaultRedeliveryDelay: Schedule.Schedule<unknown> = Schedule.min([
  Schedule.exponential("100 millis"),
  Schedule.spaced("30 seconds")
]).pipe(Schedule.jittered)

/** The delay before the redelivery of a message nacked after its n-th delivery. */
const redeliveryDelayOf = (
  option: SubscribeOptions["redeliveryDelay"]
): ((deliveries: number) => Duration.Duration) => {
  if (option === undefined) return (deliveries) => nthDelay(defaultRedeliveryDelay, deliveries)
  if (Duration.isDuration(option) || typeof option === "string" || typeof option === "number") {
    const delay = Duration.fromInputUnsafe(option as Duration.Input)
    return () => delay
  }
  const schedule = option as Schedule.Schedule<unknown, any>
  return (deliveries) => nthDelay(schedule, deliveries)
}

let consumerCount = 0

/** A consumer name unique in this process: `{hostname}-{pid}-{n}`. */
export const uniqueConsumerName = (): string => `${hostname()}-${process.pid}-${++consumerCount}`

/** What a consumer takes from `subscription`, defaults applied. */
export type Resolved = Omit<ConsumerOptions, "redis" | "keyPrefix" | "topic" | "outage">

/** `subscription` with its defaults applied. */
export const resolve = (subscription: SubscribeOptions): Resolved => {
  const claimIdleTime = Duration.fromInputUnsafe(subscription.claimIdleTime ?? "30 seconds")
  return {
    group: subscription.group,
    consumer: subscription.consumer ?? uniqueConsumerName(),
    start: subscription.start ?? "0",
    pollInterval: Duration.fromInputUnsafe(subscription.pollInterval ?? "1 second"),
    batchCount: Math.max(1, subscription.batchCount ?? 100),
    maxInFlight: Math.max(1, subscription.maxInFlight ?? 100),
    claimIdleTime,
    claimInterval: Duration.min(Duration.fromInputUnsafe(subscription.claimInterval ?? "5 seconds"), claimIdleTime),
    maxDeliveries: subscription.maxDeliveries ?? 10,
    deadLetterMaxLength: subscription.deadLetterMaxLength ?? 0,
    redeliveryDelay: redeliveryDelayOf(subscription.redeliveryDelay)
  }
}
