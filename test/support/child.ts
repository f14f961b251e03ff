/**
 * Programs in child processes, for fault tests that kill them with SIGKILL (a crash, not a shutdown): spawning one
 * against the suite's topology, reading what it prints, and (in the child) connecting to the same servers.
 */
import { type ChildProcessByStdio, spawn } from "node:child_process"
import type { Readable } from "node:stream"
import { Effect, type Layer, type Scope } from "effect"
import type * as PersistenceRedis from "effect/persistence/Redis"
import * as RedisClient from "../../src/RedisClient.js"
import type { RedisError } from "../../src/RedisError.js"
import type { Topology } from "./targets.js"

/**
 * Runs `script` (a TypeScript file) with `mode target …args` (and Node options `nodeArgs`); killed with SIGKILL when
 * the scope closes.
 */
export const spawnChild = (
  script: string,
  topology: Topology,
  args: ReadonlyArray<string>,
  nodeArgs: ReadonlyArray<string> = []
): Effect.Effect<ChildProcessByStdio<null, Readable, null>, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const target =
        topology.kind === "cluster"
          ? ["cluster", topology.nodes.map((node) => `${node.host}:${node.port}`).join(",")]
          : ["single", topology.nodes[0]?.url ?? ""]
      return spawn(process.execPath, [...nodeArgs, "--import", "tsx", script, ...target, ...args], {
        stdio: ["ignore", "pipe", "inherit"]
      })
    }),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  )

/** The first line the child prints. */
export const firstLine = (child: ChildProcessByStdio<null, Readable, null>): Effect.Effect<string> =>
  Effect.promise(
    () => new Promise<string>((resolve) => child.stdout.once("data", (data: Buffer) => resolve(data.toString().trim())))
  )

/**
 * Every line the child prints from now on, its exit code and when it exited (ms since the epoch), once it exited and
 * its output was read to the end. Listening starts at this call, not when the effect runs: a child that exits in
 * between would otherwise never be seen to exit.
 */
export const outputOf = (
  child: ChildProcessByStdio<null, Readable, null>
): Effect.Effect<{
  readonly lines: ReadonlyArray<string>
  readonly code: number | null
  readonly exitedAt: number
}> => {
  let text = ""
  child.stdout.on("data", (data: Buffer) => (text += data.toString()))
  // the exit is when the process ended; "close" (its output read to the end) is when the lines are all here
  let exitedAt = Date.now()
  child.once("exit", () => (exitedAt = Date.now()))
  const closed = new Promise<number | null>((resolve) =>
    (child.exitCode !== null || child.signalCode !== null) && child.stdout.closed
      ? resolve(child.exitCode)
      : child.once("close", (code) => resolve(code))
  )
  return Effect.promise(() =>
    closed.then((code) => ({ lines: text.split("\n").filter((line) => line.length > 0), code, exitedAt }))
  )
}

/** In a child: a client of the servers its arguments name (`single <url>` or `cluster <host:port,…>`). */
export const clientFromArgs = (
  mode: string | undefined,
  target: string | undefined
): Layer.Layer<RedisClient.RedisClient | PersistenceRedis.Redis, RedisError> =>
  mode === "cluster"
    ? RedisClient.layerCluster({ nodes: (target ?? "").split(",") })
    : RedisClient.layer({ url: target ?? "" })

/** In a child: runs `program`, then exits 0, or prints its failure and exits 1. */
export const runChild = (program: Effect.Effect<unknown, unknown>): Promise<void> =>
  Effect.runPromise(program).then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`${String(error)}\n`)
      process.exit(1)
    }
  )
