/**
 * The official Durable Streams server conformance suite (`@durable-streams/server-conformance-tests` 0.3.6, on its own
 * vitest 4, from `conformance/` with its own lockfile), unmodified, against the reference server
 * (`@durable-streams/server` 0.3.7, in memory) and against ours on a single Redis node and on a 3-master Cluster, one
 * after the other: ours must pass every test the reference passes in the same run, and every test it does not pass
 * must be named in the README's "Durable Streams" section.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { existsSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const root = join(import.meta.dirname, "..")
const folder = join(root, "conformance")

interface Report {
  readonly testResults: ReadonlyArray<{
    readonly assertionResults: ReadonlyArray<{
      readonly title: string
      readonly ancestorTitles: ReadonlyArray<string>
      readonly status: string
    }>
  }>
}

/** Runs a command in the conformance folder; resolves when it exited (its failures are the report's business). */
const run = (command: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}) =>
  new Promise<void>((resolve) =>
    execFile(command, args, { cwd: folder, env: { ...process.env, ...env }, timeout: 240_000 }, () => resolve())
  )

/** Each test of a conformance run by its name (describe blocks below the server's, then the title), and its status. */
const conformance = async (target: "reference" | "redis", redis?: "cluster"): Promise<Map<string, string>> => {
  const output = join(tmpdir(), `conformance-${target}-${redis ?? "single"}-${process.pid}.json`)
  rmSync(output, { force: true })
  await run(join(folder, "node_modules", ".bin", "vitest"), ["run", "--reporter=json", `--outputFile=${output}`], {
    CONFORMANCE_TARGET: target,
    ...(redis === undefined ? {} : { CONFORMANCE_REDIS: redis })
  })
  const report = JSON.parse(readFileSync(output, "utf8")) as Report
  rmSync(output, { force: true })
  const statuses = new Map<string, string>()
  for (const file of report.testResults) {
    for (const test of file.assertionResults) {
      statuses.set([...test.ancestorTitles.slice(1), test.title].join(" > "), test.status)
    }
  }
  return statuses
}

const withStatus = (statuses: Map<string, string>, status: string) =>
  [...statuses].filter(([, found]) => found === status).map(([name]) => name)

describe("Durable Streams conformance (official suite 0.3.6)", () => {
  it(
    "ours passes every test the reference server passes, on a node and on a Cluster; failures are in the README",
    { timeout: 900_000 },
    async () => {
      if (!existsSync(join(folder, "node_modules", ".bin", "vitest"))) {
        await run("npm", ["ci", "--no-audit", "--no-fund"])
      }
      const reference = await conformance("reference")
      const readme = readFileSync(join(root, "README.md"), "utf8")
      const section = readme.slice(
        readme.indexOf("\n## Durable Streams"),
        readme.indexOf("\n## ", readme.indexOf("\n## Durable Streams") + 1)
      )
      const referencePassed = withStatus(reference, "passed")
      assert.isAbove(referencePassed.length, 300, "the reference run did not run")
      for (const redis of [undefined, "cluster"] as const) {
        const ours = await conformance("redis", redis)
        const where = redis ?? "a single node"
        const missing = referencePassed.filter((name) => ours.get(name) !== "passed")
        assert.deepStrictEqual(missing, [], `on ${where}: tests the reference passes and ours does not`)
        const unnamed = withStatus(ours, "failed").filter((name) => !section.includes(name.split(" > ").at(-1)!))
        assert.deepStrictEqual(unnamed, [], `on ${where}: failures not named in the README's Durable Streams section`)
        assert.isAtLeast(withStatus(ours, "passed").length, referencePassed.length)
      }
    }
  )
})
