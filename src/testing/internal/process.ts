/**
 * Spawning and killing `redis-server` processes for tests, examples and benchmarks.
 *
 * Every process is recorded so that it is killed when the Node process exits, also when a test failed or the worker
 * was interrupted; its process title carries `ers-test` (and the run id from `ERS_TEST_RUN` when set), so a test run
 * can find and report orphans.
 *
 * @internal
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"

const live = new Set<ChildProcess>()
let exitHookInstalled = false

const installExitHook = () => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once("exit", () => {
    for (const child of live) child.kill("SIGKILL")
  })
}

/** The marker every spawned server carries in its process title. */
export const titleMarker = (): string => `ers-test${process.env.ERS_TEST_RUN ? `-${process.env.ERS_TEST_RUN}` : ""}`

/** True when `port` can be bound on 127.0.0.1 right now. */
const isFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = createServer()
    server.once("error", () => resolve(false))
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)))
  })

/** A port that the OS says is free (and, for cluster nodes, whose bus port `port + 10000` is free too). */
export const freePort = async (withBusPort = false): Promise<number> => {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 35000)
    if ((await isFree(port)) && (!withBusPort || (await isFree(port + 10000)))) return port
  }
  throw new Error("no free port found after 50 attempts")
}

/** A running `redis-server`. */
export interface ServerProcess {
  readonly child: ChildProcess
  readonly exited: Promise<number | null>
}

/**
 * Starts `redis-server` on `port` with `args` (after `configFile` when given: a sentinel needs one) and resolves once
 * its output shows `readyText`. Rejects with the server's own last output when it exits first or is not ready within
 * 10 seconds.
 */
export const startServer = (
  port: number,
  args: ReadonlyArray<string>,
  options: { readonly configFile?: string | undefined; readonly readyText?: string | undefined } = {}
): Promise<ServerProcess> =>
  new Promise((resolve, reject) => {
    installExitHook()
    const timeoutMs = 10_000
    const readyText = options.readyText ?? "Ready to accept connections"
    const persistence = options.configFile === undefined ? ["--save", "", "--appendonly", "no"] : []
    const child = spawn(
      "redis-server",
      [
        ...(options.configFile === undefined ? [] : [options.configFile]),
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        ...persistence,
        "--proc-title-template",
        `{title} {listen-addr} ${titleMarker()}`,
        ...args
      ],
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    live.add(child)
    const exited = new Promise<number | null>((done) =>
      child.once("exit", (code) => {
        live.delete(child)
        done(code)
      })
    )
    let output = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`redis-server on port ${port} not ready within ${timeoutMs} ms: ${output.slice(-500)}`))
    }, timeoutMs)
    const onData = (data: Buffer) => {
      output += data.toString()
      if (output.includes(readyText)) {
        clearTimeout(timer)
        child.stdout?.off("data", onData)
        child.stdout?.resume()
        resolve({ child, exited })
      }
    }
    child.stdout?.on("data", onData)
    child.stderr?.on("data", (data: Buffer) => {
      output += data.toString()
    })
    child.once("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`redis-server on port ${port} exited with code ${code}: ${output.slice(-500)}`))
    })
  })

/** Kills a server with `signal` and waits until it has exited (a frozen server is resumed to act on it). */
export const stopServer = async (server: ServerProcess, signal: NodeJS.Signals = "SIGKILL"): Promise<void> => {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return
  server.child.kill(signal)
  server.child.kill("SIGCONT")
  await server.exited
}

/** Runs a command to completion and resolves with its output; rejects when it exits non-zero. */
export const run = (command: string, args: ReadonlyArray<string>): Promise<string> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stdout.on("data", (d: Buffer) => (output += d.toString()))
    child.stderr.on("data", (d: Buffer) => (output += d.toString()))
    child.once("error", reject)
    child.once("exit", (code) =>
      code === 0 ? resolve(output) : reject(new Error(`${command} exited with ${code}: ${output.slice(-800)}`))
    )
  })

/** True when `command` can be run from PATH. */
export const onPath = (command: string): Promise<boolean> =>
  run(command, ["--version"]).then(
    () => true,
    () => false
  )
