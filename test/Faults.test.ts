/**
 * The fault suite: every capability's probe works while servers fail, on the topologies users run. Two kinds of
 * fault: an outage (servers killed or hung, their data kept), where each scenario checks that nothing a capability
 * accepted is lost; and a wipe (servers killed and started again empty, as without persistence), where what was
 * accepted before is gone (counted and printed), but nothing accepted after may be, and each capability must find
 * its feet on the empty servers (a group created again, a reader ended typed, a subscriber told to reset). Either way
 * each capability works again within a stated bound of the moment the topology recovered (the servers restarted, or
 * the failover done). It prints what it measured.
 */
import { layer } from "@effect/vitest"
import { assert } from "@effect/vitest"
import { type Duration, Effect, type Layer, Option } from "effect"
import type * as PersistenceRedis from "effect/persistence/Redis"
import * as RedisClient from "../src/RedisClient.js"
import type { RedisError } from "../src/RedisError.js"
import * as RedisServer from "../src/testing/RedisServer.js"
import * as Probes from "./support/probes.js"

/** How soon after the topology recovered every capability must work again. */
const recoveryBound = 5_000

/** A probe's report as one line: what it accepted, lost, what a wipe took, when it worked again. */
const reportLine = (report: Probes.Report, fault: Probes.Fault) => {
  const back = Option.match(report.workingAgain(fault.at), {
    onNone: () => "never",
    onSome: (t) => `${t - fault.at} ms`
  })
  const gone = fault.kind === "wipe" ? `, ${report.gone.length} gone with the wipe` : ""
  const broken = report.broken.length > 0 ? ` BROKEN: ${report.broken.join("; ")}` : ""
  return `  ${report.name}: ${report.accepted} accepted, ${report.lost.length} lost${gone}, working again after ${back} (${report.notes.join("; ")})${broken}`
}

/** Checks a probe's report: it did some work, lost nothing it had to keep, broke no promise, and recovered in time. */
const checkReport = (report: Probes.Report, fault: Probes.Fault) => {
  assert.isAbove(report.accepted, 0, `${report.name} accepted nothing`)
  assert.deepStrictEqual(report.lost.slice(0, 10), [], `${report.name} lost ${report.lost.length}`)
  assert.deepStrictEqual(report.broken, [], report.name)
  const back = report.workingAgain(fault.at)
  assert.isTrue(Option.isSome(back), `${report.name} never worked again`)
  assert.isAtMost(Option.getOrElse(back, () => Infinity) - fault.recoveredAt, recoveryBound, report.name)
  for (const [what, at] of report.settled) {
    assert.isAtMost(at - fault.recoveredAt, recoveryBound, `${report.name}: ${what}`)
  }
}

/**
 * Runs every probe on a client of `client`: one second of work, the fault, two more seconds, then the reports are
 * checked and printed.
 */
const scenario = (
  name: string,
  client: Layer.Layer<RedisClient.RedisClient | PersistenceRedis.Redis, RedisError>,
  fault: Effect.Effect<Probes.Fault, RedisServer.RedisServerError>
) =>
  Effect.gen(function* () {
    const prefix = RedisServer.uniquePrefix("fault")
    const running = yield* Effect.forEach(Probes.all, (probe) => probe.start(prefix))
    yield* Effect.sleep("1 second")
    const struck = yield* fault
    yield* Effect.sleep("2 seconds")
    const reports = yield* Effect.forEach(running, (probe) => probe.finish(struck), { concurrency: "unbounded" })
    const gone = reports.reduce((sum, report) => sum + report.gone.length, 0)
    const header = `fault: ${name}: topology back after ${struck.recoveredAt - struck.at} ms`
    const wiped = struck.kind === "wipe" ? `, ${gone} accepted before the wipe gone with it` : ""
    process.stdout.write(`${header}${wiped}\n${reports.map((report) => reportLine(report, struck)).join("\n")}\n`)
    for (const report of reports) checkReport(report, struck)
    // a wipe that took nothing was no wipe: the servers kept their data
    if (struck.kind === "wipe") assert.isAbove(gone, 0, "nothing accepted before the wipe is gone")
  }).pipe(Effect.scoped, Effect.provide(client))

/** Kills `node` (the fault strikes once its process is gone), then waits until the topology is whole again. */
const kill = (node: RedisServer.Node, recovered: Effect.Effect<void, RedisServer.RedisServerError>) =>
  Effect.gen(function* () {
    yield* node.kill
    const at = Date.now()
    yield* recovered
    return { kind: "outage", at, recoveredAt: Date.now() } as const
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
    return { kind: "outage", at, recoveredAt } as const
  })

/**
 * Kills `nodes` (the fault strikes once their processes are gone), deletes their data, starts them again a second
 * later, empty, then waits until the topology is whole again (`recovered`).
 */
const wipe = (nodes: ReadonlyArray<RedisServer.Node>, recovered: Effect.Effect<void, RedisServer.RedisServerError>) =>
  Effect.gen(function* () {
    yield* Effect.forEach(nodes, (node) => node.kill, { concurrency: "unbounded", discard: true })
    const at = Date.now()
    yield* Effect.forEach(nodes, (node) => node.wipe, { discard: true })
    yield* Effect.sleep("1 second")
    const restartedAt = Date.now()
    yield* Effect.forEach(nodes, (node) => node.start, { concurrency: "unbounded", discard: true })
    yield* recovered
    return { kind: "wipe", at, restartedAt, recoveredAt: Date.now() } as const
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

    it.effect(
      "the data wiped: the server killed, its append-only file deleted, started again empty a second later",
      () =>
        Effect.gen(function* () {
          const node = yield* RedisServer.RedisServer
          yield* scenario("single node wiped", RedisClient.layer({ url: node.url }), wipe([node], Effect.void))
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

  it.effect(
    "the data wiped: every node killed and started again empty a second later (its cluster configuration kept)",
    () =>
      Effect.gen(function* () {
        const cluster = yield* RedisServer.RedisCluster
        yield* scenario(
          "Cluster wiped",
          RedisClient.layerCluster({ nodes: cluster.nodes.map(({ host, port }) => ({ host, port })) }),
          wipe(cluster.nodes, cluster.awaitHealthy)
        )
      })
  )
})

/** A client of the master `sentinel`'s sentinels know, through all of them. */
/** A Sentinel topology of its own (a master, a replica, 3 sentinels judging a master down after `downAfter`). */
const sentinelTopology = (downAfter: Duration.Input) =>
  layer(RedisServer.layerSentinel({ replicas: 1, sentinels: 3, downAfter }), {
    excludeTestServices: true,
    timeout: 120_000
  })

const sentinelClient = (sentinel: RedisServer.RedisSentinel["Service"]) =>
  RedisClient.layerSentinel({
    sentinels: sentinel.sentinels.map(({ host, port }) => ({ host, port })),
    name: sentinel.name
  })

sentinelTopology("1 second")("faults: Sentinel (master, replica, 3 sentinels)", (it) => {
  it.effect("the master killed: the sentinels promote the replica", () =>
    Effect.gen(function* () {
      const sentinel = yield* RedisServer.RedisSentinel
      const master = yield* sentinel.currentMaster
      yield* scenario(
        "Sentinel failover",
        sentinelClient(sentinel),
        kill(master, Effect.asVoid(sentinel.awaitFailover(master)))
      )
    })
  )
})

// a topology of its own: the failover above left the sentinels' master without a replica to promote
sentinelTopology("1 second")("faults: Sentinel, hung master", (it) => {
  it.effect("the master hangs (SIGSTOP) for 8 s: the sentinels promote the replica, the thawed node is demoted", () =>
    Effect.gen(function* () {
      const sentinel = yield* RedisServer.RedisSentinel
      const master = yield* sentinel.currentMaster
      yield* scenario(
        "Sentinel, hung master",
        sentinelClient(sentinel),
        freeze(master, Effect.asVoid(sentinel.awaitFailover(master)), 8_000)
      )
    })
  )
})

// a topology of its own, whose sentinels wait longer before a failover: the master is back, empty, before they act
sentinelTopology("10 seconds")("faults: Sentinel, the master wiped", (it) => {
  it.effect(
    "the master killed and started again empty a second later: its replica syncs the empty data, no failover",
    () =>
      Effect.gen(function* () {
        const sentinel = yield* RedisServer.RedisSentinel
        const master = yield* sentinel.currentMaster
        yield* scenario(
          "Sentinel, master wiped",
          sentinelClient(sentinel),
          wipe([master], sentinel.awaitReplicasInSync)
        )
        // no failover took the replica's copy of the data: the wiped master is still the master
        assert.strictEqual((yield* sentinel.currentMaster).port, master.port)
      })
  )
})
