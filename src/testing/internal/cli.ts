/**
 * Asking running test servers about their state with `redis-cli`: cluster health and roles, replication links,
 * and what the sentinels know. Every question is one `redis-cli` call; an unreachable node answers with a rejection.
 *
 * @internal
 */
import { run } from "./process.js"

/** A `host:port` address. */
export interface Address {
  readonly host: string
  readonly port: number
}

/** Runs one command on a server and resolves with its raw output. */
export const ask = (node: Address, ...command: ReadonlyArray<string>): Promise<string> =>
  run("redis-cli", ["-h", node.host, "-p", String(node.port), ...command])

/** The `field:value` lines of an `INFO` or `CLUSTER INFO` reply, as a map. */
export const fields = (text: string): ReadonlyMap<string, string> =>
  new Map(
    text
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line.includes(":") && !line.startsWith("#"))
      .map((line) => {
        const at = line.indexOf(":")
        return [line.slice(0, at), line.slice(at + 1)] as const
      })
  )

/** A node of `CLUSTER NODES`: its address, whether it is a master, and whether it is marked failed. */
export interface ClusterNodeState {
  readonly port: number
  readonly master: boolean
  readonly failed: boolean
  /** The slot ranges it serves (masters), as `[first, last]`. */
  readonly slots: ReadonlyArray<readonly [number, number]>
}

/** Parses `CLUSTER NODES`. */
export const clusterNodes = (text: string): ReadonlyArray<ClusterNodeState> =>
  text
    .split(/\r?\n/)
    .filter((line) => line.trim().length > 0)
    .map((line) => {
      const parts = line.trim().split(" ")
      const address = parts[1] ?? ""
      const flags = (parts[2] ?? "").split(",")
      const slots = parts.slice(8).flatMap((range): Array<readonly [number, number]> => {
        if (range.startsWith("[")) return [] // a slot being migrated
        const [first, last] = range.split("-").map(Number)
        return first === undefined ? [] : [[first, last ?? first]]
      })
      return {
        port: Number(address.split("@")[0]?.split(":").at(-1)),
        master: flags.includes("master"),
        failed: flags.includes("fail") || flags.includes("fail?"),
        slots
      }
    })

/** The reply of `SENTINEL MASTER <name>` (alternating names and values, one per line), as a map. */
export const sentinelMaster = (text: string): ReadonlyMap<string, string> => {
  const lines = text.split(/\r?\n/).map((line) => line.trim())
  const result = new Map<string, string>()
  for (let i = 0; i + 1 < lines.length; i += 2) result.set(lines[i] as string, lines[i + 1] as string)
  return result
}
