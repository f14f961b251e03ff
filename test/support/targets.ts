/**
 * The two topologies every capability's suite runs against: a single node and a 3-master Redis Cluster, each of real
 * redis-server processes started for the file, with a `RedisClient` connected to it and controls for fault tests.
 */
import { layer, type Vitest } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { Redis } from "ioredis"
import type * as PersistenceRedis from "effect/persistence/Redis"
import * as RedisClient from "../../src/RedisClient.js"
import type { RedisError } from "../../src/RedisError.js"
import * as RedisServer from "../../src/testing/RedisServer.js"

/** What a suite knows of the servers behind its client. */
export interface Topology {
  readonly kind: "single" | "cluster"
  readonly nodes: ReadonlyArray<RedisServer.Node>
  /** Kills every node (a crash). */
  readonly killAll: Effect.Effect<void, RedisServer.RedisServerError>
  /** Starts every node again and waits until they serve (a cluster: until it is healthy). */
  readonly startAll: Effect.Effect<void, RedisServer.RedisServerError>
}

/**
 * The most connections one `RedisClient` opens to `topology` for its calls, subscriptions and readers: a shared
 * connection to each node and one subscriber connection; on a cluster, one more for a moment, when ioredis reads the
 * slot map (every 2 s) on a connection of its own.
 */
export const maxClientConnections = (topology: Topology): number =>
  topology.nodes.length + 1 + (topology.kind === "cluster" ? 1 : 0)

/** A second, independent `RedisClient` on the same servers: another instance of the application. */
export const anotherClient = (
  topology: Topology,
  options: RedisClient.CommonOptions = {}
): Layer.Layer<RedisClient.RedisClient | PersistenceRedis.Redis, RedisError> =>
  topology.kind === "cluster"
    ? RedisClient.layerCluster({ ...options, nodes: topology.nodes.map(({ host, port }) => ({ host, port })) })
    : RedisClient.layer({ ...options, url: (topology.nodes[0] as RedisServer.Node).url })

/** The servers behind the `RedisClient` of a suite. */
export class TestTopology extends Context.Service<TestTopology, Topology>()("test/TestTopology") {}

const serverArgs = ["--enable-debug-command", "yes"]

const singleTopology = Layer.effect(
  TestTopology,
  Effect.map(RedisServer.RedisServer, (node): Topology => ({
    kind: "single",
    nodes: [node],
    killAll: node.kill,
    startAll: node.start
  }))
)

const clusterTopology = Layer.effect(
  TestTopology,
  Effect.map(RedisServer.RedisCluster, (cluster): Topology => ({
    kind: "cluster",
    nodes: cluster.nodes,
    killAll: Effect.forEach(cluster.nodes, (node) => node.kill, { discard: true }),
    startAll: Effect.forEach(cluster.nodes, (node) => node.start, { discard: true }).pipe(
      Effect.andThen(cluster.awaitHealthy)
    )
  }))
)

/** Everything a suite needs: the client (and effect's `Redis`), and the topology behind it. */
export type TargetServices = RedisClient.RedisClient | PersistenceRedis.Redis | TestTopology

/** A named topology whose layer gives a suite its client. */
export interface Target {
  readonly name: string
  readonly layer: (options?: RedisClient.CommonOptions) => Layer.Layer<TargetServices, unknown>
}

/** A single redis-server process. */
export const single: Target = {
  name: "single node",
  layer: (options) =>
    Layer.merge(RedisServer.layerClient(options), singleTopology).pipe(
      Layer.provideMerge(RedisServer.layer({ args: serverArgs }))
    )
}

/** A Redis Cluster of 3 masters. */
export const cluster: Target = {
  name: "cluster",
  layer: (options) =>
    Layer.merge(RedisServer.layerClusterClient(options), clusterTopology).pipe(
      Layer.provideMerge(RedisServer.layerCluster({ args: serverArgs }))
    )
}

/** Both topologies. */
export const targets: ReadonlyArray<Target> = [single, cluster]

/** Runs `suite` once per topology, each with its own servers and client (real clock). */
export const forEachTarget = (
  name: string,
  suite: (it: Vitest.MethodsNonLive<TargetServices>, target: Target) => void,
  options?: RedisClient.CommonOptions
) => {
  for (const target of targets) {
    layer(target.layer(options), { excludeTestServices: true, timeout: 60_000 })(`${name} (${target.name})`, (it) =>
      suite(it, target)
    )
  }
}

/** Runs a raw command on every node of the topology. */
export const onEveryNode = <A>(topology: Topology, f: (node: Redis) => Promise<A>) =>
  Effect.promise(() =>
    Promise.all(
      topology.nodes.map(async (node) => {
        const client = new Redis(node.url, { protocol: 2 })
        try {
          return await f(client)
        } finally {
          client.disconnect()
        }
      })
    )
  )

/** How many times the servers of the topology ran `command` so far (INFO commandstats, summed over the nodes). */
export const commandCalls = (topology: Topology, command: string) =>
  Effect.map(
    onEveryNode(topology, (node) => node.info("commandstats")),
    (infos) =>
      infos.reduce((sum, info) => sum + Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0), 0)
  )
