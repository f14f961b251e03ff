/**
 * The fault suite: every capability's probe works while a server is killed, on the topologies users run. Each
 * scenario checks that nothing a capability accepted is lost, and that each works again within a stated bound of the
 * moment the topology recovered (the server restarted, or the failover done). It prints what it measured.
 */
import { layer } from "@effect/vitest"
import { assert } from "@effect/vitest"
import { Effect, type Layer, Option } from "effect"
import type * as PersistenceRedis from "effect/persistence/Redis"
import * as RedisClient from "../src/RedisClient.js"
import type { RedisError } from "../src/RedisError.js"
import * as RedisServer from "../src/testing/RedisServer.js"
import * as Probes from "./support/probes.js"

/** How soon after the topology recovered every capability must work again. */
const recoveryBound = 5_000

/** The fault: when it struck, and when the topology was whole again. */
interface Fault {
  readonly at: number
  readonly recoveredAt: number
}

/**
 * Runs every probe on a client of `client`: one second of work, the fault, two more seconds, then the reports are
 * checked and printed.
 */
const scenario = (
  name: string,
  client: Layer.Layer<RedisClient.RedisClient | PersistenceRedis.Redis, RedisError>,
  fault: Effect.Effect<Fault, RedisServer.RedisServerError>
) =>
  Effect.gen(function* () {
    const prefix = RedisServer.uniquePrefix("fault")
    const running = yield* Effect.forEach(Probes.all, (probe) => probe.start(prefix))
    yield* Effect.sleep("1 second")
    const { at, recoveredAt } = yield* fault
    yield* Effect.sleep("2 seconds")
    const reports = yield* Effect.forEach(running, (probe) => probe.finish, { concurrency: "unbounded" })
    const lines = reports.map((report) => {
      const back = report.workingAgain(at)
      const outage = Option.match(back, { onNone: () => "never", onSome: (t) => `${t - at} ms` })
      return `  ${report.name}: ${report.accepted} accepted, ${report.lost.length} lost, working again after ${outage} (${report.notes.join("; ")})`
    })
    process.stdout.write(`fault: ${name}: topology back after ${recoveredAt - at} ms\n${lines.join("\n")}\n`)
    for (const report of reports) {
      assert.isAbove(report.accepted, 0, `${report.name} accepted nothing`)
      assert.deepStrictEqual(report.lost.slice(0, 10), [], `${report.name} lost ${report.lost.length}`)
      const back = report.workingAgain(at)
      assert.isTrue(Option.isSome(back), `${report.name} never worked again`)
      assert.isAtMost(Option.getOrElse(back, () => Infinity) - recoveredAt, recoveryBound, report.name)
    }
  }).pipe(Effect.scoped, Effect.provide(client))

/** Kills `node` (the fault strikes once its process is gone), then waits until the topology is whole again. */
const kill = (node: RedisServer.Node, recovered: Effect.Effect<void, RedisServer.RedisServerError>) =>
  Effect.gen(function* () {
    yield* node.kill
    const at = Date.now()
    yield* recovered
    return { at, recoveredAt: Date.now() }
  })

/**
 * Freezes `node` (SIGSTOP: a hung host or a partition, its sockets open and silent), waits until `failedOver`, keeps
 * it frozen until `frozenFor` has passed, then thaws it: for a moment it still acts as the master it was, then it
 * learns it is not (the split brain that loses writes it confirmed then).
 */
const freeze = (
  node: RedisServer.Node,
  failedOver: Effect.Effect<void, RedisServer.RedisServerError>,
  frozenFor: number
) =>
  Effect.gen(function* () {
    yield* node.freeze
    const at = Date.now()
    yield* failedOver
    const recoveredAt = Date.now()
    yield* Effect.sleep(Math.max(0, at + frozenFor - Date.now()))
    yield* node.thaw
    return { at, recoveredAt }
  })

layer(RedisServer.layer({ persistent: true }), { excludeTestServices: true, timeout: 120_000 })(
  "faults: single node (append-only file)",
  (it) => {
    it.effect("the server killed and restarted a second later", () =>
      Effect.gen(function* () {
        const node = yield* RedisServer.RedisServer
        yield* scenario(
          "single node restart",
          RedisClient.layer({ url: node.url }),
          kill(node, Effect.andThen(Effect.sleep("1 second"), node.start))
        )
      })
    )
  }
)

layer(RedisServer.layerCluster({ replicas: 1, nodeTimeout: "1 second" }), {
  excludeTestServices: true,
  timeout: 120_000
})("faults: Cluster of 3 masters and 3 replicas", (it) => {
  it.effect("the master of the probes' keys killed: a replica takes over (the client knows every node)", () =>
    Effect.gen(function* () {
      const cluster = yield* RedisServer.RedisCluster
      const victim = yield* cluster.masterOf("{probe}")
      yield* scenario(
        "Cluster failover, all seeds",
        RedisClient.layerCluster({ nodes: cluster.nodes.map(({ host, port }) => ({ host, port })) }),
        kill(victim, cluster.awaitHealthy)
      )
      yield* victim.start
      yield* cluster.awaitHealthy
    })
  )

  it.effect(
    "the master of the probes' keys hangs (SIGSTOP) for 8 s: its replica takes over, the thawed node rejoins",
    () =>
      Effect.gen(function* () {
        const cluster = yield* RedisServer.RedisCluster
        const victim = yield* cluster.masterOf("{probe}")
        yield* scenario(
          "Cluster, hung master",
          RedisClient.layerCluster({ nodes: cluster.nodes.map(({ host, port }) => ({ host, port })) }),
          freeze(victim, cluster.awaitHealthy, 8_000)
        )
        yield* cluster.awaitHealthy
      })
  )

  it.effect("the one seed node given to the client is the master killed (a configuration endpoint)", () =>
    Effect.gen(function* () {
      const cluster = yield* RedisServer.RedisCluster
      const victim = yield* cluster.masterOf("{probe}")
      yield* scenario(
        "Cluster failover, one seed",
        RedisClient.layerCluster({ nodes: [{ host: victim.host, port: victim.port }] }),
        kill(victim, cluster.awaitHealthy)
      )
      yield* victim.start
      yield* cluster.awaitHealthy
    })
  )
})

layer(RedisServer.layerSentinel({ replicas: 1, sentinels: 3, downAfter: "1 second" }), {
  excludeTestServices: true,
  timeout: 120_000
})("faults: Sentinel (master, replica, 3 sentinels)", (it) => {
  it.effect("the master killed: the sentinels promote the replica", () =>
    Effect.gen(function* () {
      const sentinel = yield* RedisServer.RedisSentinel
      const master = yield* sentinel.currentMaster
      yield* scenario(
        "Sentinel failover",
        RedisClient.layerSentinel({
          sentinels: sentinel.sentinels.map(({ host, port }) => ({ host, port })),
          name: sentinel.name
        }),
        kill(master, Effect.asVoid(sentinel.awaitFailover(master)))
      )
    })
  )
})

// a topology of its own: the failover above left the sentinels' master without a replica to promote
layer(RedisServer.layerSentinel({ replicas: 1, sentinels: 3, downAfter: "1 second" }), {
  excludeTestServices: true,
  timeout: 120_000
})("faults: Sentinel, hung master", (it) => {
  it.effect("the master hangs (SIGSTOP) for 8 s: the sentinels promote the replica, the thawed node is demoted", () =>
    Effect.gen(function* () {
      const sentinel = yield* RedisServer.RedisSentinel
      const master = yield* sentinel.currentMaster
      yield* scenario(
        "Sentinel, hung master",
        RedisClient.layerSentinel({
          sentinels: sentinel.sentinels.map(({ host, port }) => ({ host, port })),
          name: sentinel.name
        }),
        freeze(master, Effect.asVoid(sentinel.awaitFailover(master)), 8_000)
      )
    })
  )
})
