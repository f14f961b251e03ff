/**
 * The Durable Streams conformance suite, unmodified, against this library's server on Redis: the example server
 * (`examples/durable-streams.ts`, run with the main project's tsx) on a free port, on a redis-server it starts
 * (`CONFORMANCE_REDIS=cluster`: a 3-master Redis Cluster).
 *
 *   CONFORMANCE_TARGET=redis npx vitest run
 */
import { runConformanceTests } from "@durable-streams/server-conformance-tests"
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe } from "vitest"

const longPollTimeoutMs = 2_000
const cluster = process.env["CONFORMANCE_REDIS"] === "cluster"
const root = join(dirname(fileURLToPath(import.meta.url)), "..")

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

describe(`effect-redis-streams on Redis${cluster ? " Cluster" : ""}`, () => {
  let child: ChildProcess | undefined
  const config = { baseUrl: "", longPollTimeoutMs }

  beforeAll(async () => {
    const port = await freePort()
    child = spawn(
      join(root, "node_modules", ".bin", "tsx"),
      ["examples/durable-streams.ts", ...(cluster ? ["--cluster"] : [])],
      {
        cwd: root,
        env: { ...process.env, PORT: String(port), LONG_POLL_MS: String(longPollTimeoutMs), REDIS_URL: "" },
        stdio: ["ignore", "pipe", "inherit"]
      }
    )
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the server did not start within 60 s")), 60_000)
      child!.on("exit", (code) => reject(new Error(`the server exited with ${code}`)))
      child!.stdout!.on("data", (data: Buffer) => {
        if (data.toString().includes("http://")) {
          clearTimeout(timer)
          resolve()
        }
      })
    })
    config.baseUrl = `http://127.0.0.1:${port}`
  }, 90_000)

  afterAll(async () => {
    if (child === undefined || child.exitCode !== null) return
    const exited = new Promise((resolve) => child!.once("exit", resolve))
    child.kill("SIGTERM")
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))])
    if (child.exitCode === null) child.kill("SIGKILL")
  }, 20_000)

  runConformanceTests(config)
})
