/**
 * Partitioned topics on a 3-master Cluster of their own (started by this file; the run's single node is not used):
 * the same work on one topic of 8 partitions and on one unpartitioned topic. 100,000 messages of 100 keys (100 rounds
 * of 10 messages per key, the keys at once), 4 consumers in this process of concurrency 16, started and owning their
 * partitions before the clock starts; figure: messages/s from the first publish until every one is handled.
 *
 * - partitioned, per-key order: `PartitionedTopics.consume` (a key's messages one after another);
 * - partitioned, no keys: the same topic published round-robin without keys (nothing to order: the cost of ordering
 *   is the ratio of the two);
 * - partitioned, batches of up to 100 (`consumeBatches`);
 * - unpartitioned: `Publisher` / `Subscriber.consume` on one topic (one stream in one slot, on one master).
 *
 * Raw ioredis, beside each: pipelined XADD of each round to one stream and 4 XREADGROUP/XACK loops (no order per key,
 * one master). No peer: no open-source Redis library orders per key across workers (BullMQ's groups are in its paid
 * Pro edition). The notes give each master's share of the topic's commands (INFO commandstats, reset before the
 * run) and the masters' CPU time per message (INFO cpu), of the last round, and the ratios between our rows (medians).
 */
import { Effect, Fiber, Layer, ManagedRuntime, Schedule } from "effect"
import { Cluster, Redis } from "ioredis"
import * as Message from "../dist/Message.js"
import * as PartitionedTopics from "../dist/PartitionedTopics.js"
import * as Publisher from "../dist/Publisher.js"
import * as RedisClient from "../dist/RedisClient.js"
import * as Subscriber from "../dist/Subscriber.js"
import * as RedisServer from "../dist/testing/RedisServer.js"
import { deferred, type Scenario, type Suite } from "./harness.js"
import { rawReader } from "./support/raw-consumer.js"

const keys = 100
const perKeyPerRound = 10
const rounds = 100
const total = keys * perKeyPerRound * rounds
const consumers = 4
const concurrency = 16
const partitions = 8
const payload = "x".repeat(100)

const perSecond = (ms: number) => total / (ms / 1000)

/** Commands that are not the topic's work (the bench's own probes, the client's slot-map reads). */
const overhead = /^cmdstat_(info|config|cluster|ping|client|command|hello|select|script)$/

const suite: Suite = {
  name: "PartitionedTopics",
  setup: async () => {
    const clusterRuntime = ManagedRuntime.make(RedisServer.layerCluster())
    const cluster = await clusterRuntime.runPromise(RedisServer.RedisCluster)
    const nodes = cluster.nodes.map(({ host, port }) => ({ host, port }))
    const keyPrefix = "bench:"
    const runtime = ManagedRuntime.make(
      Layer.mergeAll(
        PartitionedTopics.layer({ keyPrefix }).pipe(Layer.provideMerge(Publisher.layer({ keyPrefix }))),
        Subscriber.layer({ keyPrefix })
      ).pipe(Layer.provideMerge(RedisClient.layerCluster({ nodes })))
    )
    const topics = await runtime.runPromise(PartitionedTopics.PartitionedTopics)
    const publisher = await runtime.runPromise(Publisher.Publisher)
    const subscriber = await runtime.runPromise(Subscriber.Subscriber)
    const masters = cluster.nodes.map((node) => new Redis(node.url, { protocol: 2 }))
    const rawClient = new Cluster(nodes, { redisOptions: { protocol: 2 } })
    const rawReaders = Array.from({ length: consumers }, () => new Cluster(nodes, { redisOptions: { protocol: 2 } }))
    let round = 0

    /** Each master's share of the commands since `reset` (in %), in node order. */
    /** Each master's CPU time so far (user + system, µs), from INFO cpu. */
    const cpuNow = () =>
      Promise.all(
        masters.map(async (master) => {
          const info = await master.info("cpu")
          const seconds = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? 0)
          return (seconds("used_cpu_user") + seconds("used_cpu_sys")) * 1e6
        })
      )
    let cpuAtReset: ReadonlyArray<number> = []

    /**
     * Each master's share of the topic's commands since `reset` (in %, node order; a script's own commands count too),
     * and the CPU time the masters spent per message meanwhile (µs: all together, and the busiest one).
     */
    const shares = async () => {
      const calls = await Promise.all(
        masters.map(async (master) => {
          const info = await master.info("commandstats")
          let count = 0
          for (const line of info.split("\n")) {
            const match = /^(cmdstat_[^:]+):calls=(\d+)/.exec(line.trim())
            if (match !== null && !overhead.test(match[1] as string)) count += Number(match[2])
          }
          return count
        })
      )
      const cpu = (await cpuNow()).map((micros, i) => micros - (cpuAtReset[i] ?? 0))
      const sum = calls.reduce((a, b) => a + b, 0)
      const perMessage = (micros: number) => (micros / total).toFixed(2)
      return (
        `${calls.map((count) => Math.round((100 * count) / sum)).join(" / ")}; Redis CPU per message ` +
        `${perMessage(cpu.reduce((a, b) => a + b, 0))} µs, busiest master ${perMessage(Math.max(...cpu))} µs`
      )
    }
    const reset = async () => {
      await Promise.all(masters.map((master) => master.config("RESETSTAT")))
      cpuAtReset = await cpuNow()
    }
    const lastShares = new Map<string, string>()

    const messagesOf = (key: string) =>
      Array.from({ length: perKeyPerRound }, () => Message.make(payload, { metadata: { key } }))
    const batches = Array.from({ length: keys }, (_, n) => [`key-${n}`, messagesOf(`key-${n}`)] as const)

    /** Runs `consume` in 4 fibers, waits for `ready`, then times `produce` until `total` were handled. */
    const timed = async (
      label: string,
      consume: (member: number, handled: () => void) => Effect.Effect<never, unknown>,
      ready: Effect.Effect<void, unknown>,
      produce: () => Effect.Effect<void, unknown>
    ) => {
      let handled = 0
      const finished = deferred()
      const count = () => {
        if (++handled === total) finished.resolve()
      }
      const fibers = await runtime.runPromise(
        Effect.forEach(Array.from({ length: consumers }), (_, member) => Effect.forkDetach(consume(member, count)))
      )
      await runtime.runPromise(ready)
      await reset()
      const started = performance.now()
      await runtime.runPromise(produce())
      await finished.promise
      const elapsed = performance.now() - started
      lastShares.set(label, await shares())
      await runtime.runPromise(Effect.forEach(fibers, Fiber.interrupt, { concurrency: "unbounded" }))
      return perSecond(elapsed)
    }

    /** Every partition owned (the members settled) before the clock starts. */
    const owned = (topic: string) =>
      topics.inspect(topic, "g").pipe(
        Effect.repeat({
          until: (states) => states.every((state) => state.owner !== undefined),
          schedule: Schedule.spaced("50 millis")
        }),
        Effect.andThen(Effect.sleep("1 second")) // the last handoffs drained
      )

    const partitioned = (mode: "keyed" | "keyless" | "batches") => async () => {
      const topic = `p${++round}`
      await runtime.runPromise(topics.create(topic, partitions))
      const options = { group: "g", concurrency, maxInFlight: 400 }
      return timed(
        `partitioned ${mode}`,
        (member, handled) =>
          mode === "batches"
            ? topics.consumeBatches(topic, (batch) => Effect.sync(() => batch.forEach(handled)), {
                ...options,
                member: `m${member}`,
                maxBatch: 100,
                maxWait: "5 millis"
              })
            : topics.consume(topic, () => Effect.sync(handled), { ...options, member: `m${member}` }),
        owned(topic),
        () =>
          Effect.forEach(
            Array.from({ length: rounds }),
            () =>
              Effect.forEach(
                batches,
                ([key, messages]) => topics.publish(topic, messages, mode === "keyless" ? {} : { key }),
                { concurrency: "unbounded", discard: true }
              ),
            { discard: true }
          )
      )
    }

    const unpartitioned = async () => {
      const topic = `u${++round}`
      return timed(
        "unpartitioned",
        (member, handled) =>
          subscriber.consume(topic, () => Effect.sync(handled), {
            group: "g",
            consumer: `c${member}`,
            concurrency,
            maxInFlight: 400
          }),
        Effect.sleep("200 millis"),
        () =>
          Effect.forEach(
            Array.from({ length: rounds }),
            () =>
              Effect.forEach(batches, ([, messages]) => publisher.publish(topic, ...messages), {
                concurrency: "unbounded",
                discard: true
              }),
            { discard: true }
          )
      )
    }

    /** Raw ioredis: one stream, pipelined XADD per round, 4 XREADGROUP/XACK loops. */
    const raw = async () => {
      const key = `bench:raw:{${++round}}`
      await rawClient.xgroup("CREATE", key, "g", "$", "MKSTREAM")
      await reset()
      const started = performance.now()
      const progress = { handled: 0 }
      const loops = rawReaders.map((reader, i) => rawReader(reader, key, `c${i}`, total, progress, () => undefined))
      for (let r = 0; r < rounds; r++) {
        const pipeline = rawClient.pipeline()
        for (const [n] of batches.entries()) {
          for (let j = 0; j < perKeyPerRound; j++) {
            pipeline.xadd(key, "*", "uuid", `${r}-${n}-${j}`, "payload", payload, "metadata", `{"key":"key-${n}"}`)
          }
        }
        await pipeline.exec()
      }
      await Promise.all(loops)
      const elapsed = performance.now() - started
      lastShares.set("raw", await shares())
      await rawClient.del(key)
      return perSecond(elapsed)
    }

    /** Every figure measured per row, for the ratios between our rows (their medians). */
    const results = new Map<string, Array<number>>()
    const remembered = (label: string, measure: () => Promise<number>) => async () => {
      const figure = await measure()
      results.set(label, [...(results.get(label) ?? []), figure])
      return figure
    }
    const medianOf = (label: string) => {
      const sorted = (results.get(label) ?? []).slice(1).sort((a, b) => a - b) // the first is the warm-up
      return sorted.length === 0 ? Number.NaN : (sorted[Math.floor((sorted.length - 1) / 2)] as number)
    }
    const shareNote = (label: string) => `share of commands per master (%): ${lastShares.get(label) ?? "not measured"}`
    const ratio = (a: string, b: string) => (medianOf(a) / medianOf(b)).toFixed(2)

    const scenario = (
      name: string,
      label: string,
      ours: () => Promise<number>,
      notes: () => ReadonlyArray<string>
    ): Scenario => ({
      name: `${name}: ${total / 1000}k messages of ${keys} keys, ${consumers} consumers × ${concurrency}, 3-master Cluster`,
      unit: "msgs/s",
      higherIsBetter: true,
      ours: remembered(label, ours),
      raw: remembered("raw", raw),
      notes: () => [shareNote(label), `raw ioredis (one stream): ${shareNote("raw")}`, ...notes()]
    })

    return {
      scenarios: [
        scenario("unpartitioned topic (Subscriber, no order per key)", "unpartitioned", unpartitioned, () => []),
        scenario(`partitioned topic (${partitions}), per-key order`, "partitioned keyed", partitioned("keyed"), () => [
          `partitioned (per-key order) ÷ unpartitioned: ${ratio("partitioned keyed", "unpartitioned")}×`
        ]),
        scenario(`partitioned topic (${partitions}), no keys`, "partitioned keyless", partitioned("keyless"), () => [
          `per-key order ÷ no keys (the cost of ordering): ${ratio("partitioned keyed", "partitioned keyless")}×`
        ]),
        scenario(
          `partitioned topic (${partitions}), batches of up to 100`,
          "partitioned batches",
          partitioned("batches"),
          () => [`batches ÷ unpartitioned: ${ratio("partitioned batches", "unpartitioned")}×`]
        )
      ],
      close: async () => {
        for (const connection of [...masters, rawClient, ...rawReaders]) connection.disconnect()
        await runtime.dispose()
        await clusterRuntime.dispose()
      }
    }
  }
}

export default suite
