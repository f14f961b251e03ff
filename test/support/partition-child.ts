/**
 * A member of a partitioned topic's group in its own process, for the test that kills one: it handles the topic's
 * messages, recording the start and the end of each handler as entries of a Redis stream (the server orders the
 * entries of every process), and prints `ready` once it runs. Arguments: `single <url>` or `cluster <host:port,…>`,
 * then the key prefix, topic, group, member name and the events stream's key.
 */
import { Effect, Layer } from "effect"
import * as PartitionedTopics from "../../src/PartitionedTopics.js"
import * as Publisher from "../../src/Publisher.js"
import * as RedisClient from "../../src/RedisClient.js"
import { clientFromArgs, runChild } from "./child.js"

const [mode, target, keyPrefix, topic, group, member, eventsKey] = process.argv.slice(2)

const program = Effect.gen(function* () {
  const topics = yield* PartitionedTopics.PartitionedTopics
  const redis = yield* RedisClient.RedisClient
  const record = (phase: string, delivery: PartitionedTopics.Delivery) =>
    redis.send(
      "XADD",
      eventsKey ?? "",
      "*",
      "phase",
      phase,
      "key",
      delivery.key ?? "",
      "seq",
      delivery.message.metadata.seq ?? "",
      "member",
      member ?? ""
    )
  process.stdout.write("ready\n")
  return yield* topics.consume(
    topic ?? "",
    (delivery) => Effect.andThen(record("start", delivery), Effect.andThen(Effect.sleep(1), record("end", delivery))),
    {
      group: group ?? "",
      member,
      concurrency: 8,
      leaseTime: "2 seconds",
      pollInterval: "100 millis",
      drainTimeout: "2 seconds"
    }
  )
})

void runChild(
  program.pipe(
    Effect.provide(
      PartitionedTopics.layer({ keyPrefix }).pipe(
        Layer.provideMerge(Publisher.layer({ keyPrefix })),
        Layer.provideMerge(clientFromArgs(mode, target))
      )
    )
  )
)
