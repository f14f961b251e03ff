/**
 * Running an example as a newcomer runs it (`npm run …`): a Node process of its own, without REDIS_URL (so it starts
 * a redis-server of its own), ended after `timeoutMs`.
 */
import { execFile } from "node:child_process"
import { join } from "node:path"

const root = join(import.meta.dirname, "..", "..")

/** Runs `examples/{file}`; resolves with its exit code and what it printed. */
export const runExample = (file: string, timeoutMs: number) => {
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env.REDIS_URL
  return new Promise<{ readonly code: number; readonly stdout: string }>((resolve) =>
    execFile(
      process.execPath,
      ["--import", "tsx", join(root, "examples", file)],
      { env, cwd: root, timeout: timeoutMs },
      (error, stdout) => resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout })
    )
  )
}
