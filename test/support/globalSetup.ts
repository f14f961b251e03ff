/**
 * Gives this test run an id that every spawned redis-server carries in its process title, and fails the run when
 * any of them outlived it (an orphan).
 */
import { execFileSync } from "node:child_process"

const runId = `${process.pid}-${Date.now().toString(36)}`

const survivors = (): Array<string> => {
  try {
    return execFileSync("pgrep", ["-f", `ers-test-${runId}`])
      .toString()
      .trim()
      .split("\n")
      .filter(Boolean)
  } catch {
    return [] // pgrep exits 1 when nothing matches
  }
}

export const setup = () => {
  process.env.ERS_TEST_RUN = runId
}

export const teardown = async () => {
  // give workers' exit hooks a moment to finish killing their servers
  for (let i = 0; i < 20 && survivors().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 100))
  const orphans = survivors()
  if (orphans.length > 0) {
    for (const pid of orphans) process.kill(Number(pid), "SIGKILL")
    throw new Error(
      `${orphans.length} redis-server process(es) outlived the test run (killed now): ${orphans.join(", ")}`
    )
  }
}
