/**
 * What `PartitionedTopics.inspect` reports per partition: its slot, the owner and fencing token of its lease in a
 * group, and the group's lag and pending count there (one pipeline per node).
 *
 * @internal
 */
import { Effect, Result } from "effect"
import type { Layout, PartitionState } from "../../../PartitionedTopics.js"
import type * as RedisClient from "../../../RedisClient.js"
import type { RedisError } from "../../../RedisError.js"
import { slotOf } from "../../slot.js"
import * as Scripts from "../scripts.js"
import { keyOf } from "../wire.js"
import { holderOf, leaseKeysOf } from "./leases.js"

/** The state of every partition of `layout` in `group`. */
export const inspectPartitions = (
  redis: RedisClient.Service,
  prefix: string,
  layout: Layout,
  group: string
): Effect.Effect<ReadonlyArray<PartitionState>, RedisError> =>
  Effect.gen(function* () {
    const leases = yield* redis.pipeline(
      layout.partitions.map((partition) => {
        const lease = leaseKeysOf(prefix, partition, group)[0]
        return { name: "GET", args: [lease], key: lease }
      })
    )
    const lags = yield* redis.evalMany(
      Scripts.groupLag,
      layout.partitions.map((partition) => [[keyOf(prefix, partition)], [group]] as const)
    )
    return yield* Effect.forEach(layout.partitions, (partition, index) =>
      Effect.gen(function* () {
        const holder = holderOf(
          yield* Result.match(leases[index]!, { onFailure: Effect.fail, onSuccess: Effect.succeed })
        )
        const [pending, lag] = yield* Result.match(lags[index]!, { onFailure: Effect.fail, onSuccess: Effect.succeed })
        return {
          partition: index,
          topic: partition,
          slot: slotOf(keyOf(prefix, partition)),
          owner: holder?.member,
          fence: holder?.fence,
          lag,
          pending
        }
      })
    )
  })
