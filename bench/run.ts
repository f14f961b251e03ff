/**
 * `npm run bench [-- filter]`: runs every bench/*.bench.ts (or those whose suite or scenario name contains the
 * filter) against a Redis of its own (REDIS_URL if set, else a redis-server started for the run), prints a markdown
 * table of ours, raw ioredis and the real peer package (where one exists) with the ratios, and writes
 * bench/results.json. Each bench file runs in a Node process of its own
 * (one suite's heap and garbage collection never weigh on another's figures). Benches import the library from dist/
 * (built by `npm run bench`), the JavaScript users run, not the TypeScript sources through tsx's transform.
 */

import { spawn } from "node:child_process"
import { readdir, readFile, writeFile } from "node:fs/promises"
import { cpus, tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { ManagedRuntime } from "effect"
import * as RedisServer from "../dist/testing/RedisServer.js"
import { format, measure, type Result, type Suite } from "./harness.js"

const here = dirname(fileURLToPath(import.meta.url))
const filter = (process.argv[2] ?? "").toLowerCase()
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)

const startRedis = async () => {
  const runtime = ManagedRuntime.make(RedisServer.layer({ url: process.env.REDIS_URL }))
  const node = await runtime.runPromise(RedisServer.RedisServer)
  return { url: node.url, close: () => runtime.dispose() }
}

/** In a child process (`BENCH_FILE` set): runs one bench file's scenarios and writes their results to `out`. */
const runFile = async (file: string, url: string, out: string) => {
  const results: Array<Result> = []
  const notes: Array<string> = []
  const suite = ((await import(join(here, file))) as { default: Suite }).default
  process.stderr.write(`setting up ${suite.name}…\n`)
  const { scenarios, close } = await suite.setup(url)
  try {
    for (const scenario of scenarios) {
      const label = `${suite.name}: ${scenario.name}`
      if (filter !== "" && !label.toLowerCase().includes(filter)) continue
      process.stderr.write(`running ${label}…\n`)
      const result = await measure(scenario, rounds)
      results.push({ ...result, scenario: label })
      for (const note of (await scenario.notes?.()) ?? []) notes.push(`${label}: ${note}`)
    }
  } finally {
    await close()
  }
  await writeFile(out, JSON.stringify({ results, notes }))
}

/** How long one bench file may run (`BENCH_FILE_MINUTES`, default 10): a hung file is killed and named. */
const fileMinutes = Number(process.env.BENCH_FILE_MINUTES ?? 10)
if (!(fileMinutes > 0))
  throw new Error(`BENCH_FILE_MINUTES must be a positive number of minutes, not "${process.env.BENCH_FILE_MINUTES}"`)

/** Runs a bench file in a process of its own, so that no suite's heap or warm-up weighs on another's figures. */
const runIsolated = (file: string, url: string) =>
  new Promise<{ results: Array<Result>; notes: Array<string> }>((resolve, reject) => {
    const out = join(tmpdir(), `bench-${process.pid}-${file}.json`)
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), filter], {
      env: { ...process.env, BENCH_FILE: file, BENCH_REDIS_URL: url, BENCH_OUT: out },
      stdio: ["ignore", "inherit", "inherit"]
    })
    const timer = setTimeout(() => {
      process.stderr.write(`${file}: no result within ${fileMinutes} min (its last line above says where): killed\n`)
      child.kill("SIGKILL")
    }, fileMinutes * 60_000)
    child.on("exit", (code) => {
      clearTimeout(timer)
      if (code !== 0) return reject(new Error(`${file} failed (exit ${code})`))
      readFile(out, "utf8").then(
        (text) => resolve(JSON.parse(text) as { results: Array<Result>; notes: Array<string> }),
        reject
      )
    })
  })

const main = async () => {
  const files = (await readdir(here)).filter((file) => file.endsWith(".bench.ts")).sort()
  const redis = await startRedis()
  const results: Array<Result> = []
  const notes: Array<string> = []
  try {
    for (const file of files) {
      const outcome = await runIsolated(file, redis.url)
      results.push(...outcome.results)
      notes.push(...outcome.notes)
    }
  } finally {
    await redis.close()
  }
  const figure = (value: number | null) => (value === null ? "—" : format(value))
  const ratio = (value: number | null) => (value === null ? "—" : `${value.toFixed(2)}×`)
  const rows = results.map((r) => [
    r.scenario,
    r.unit,
    figure(r.ours),
    figure(r.raw),
    ratio(r.ratio),
    r.peerName ?? "—",
    figure(r.peer),
    ratio(r.ratioPeer)
  ])
  const header = ["scenario", "unit", "ours", "raw ioredis", "×raw", "peer (package)", "peer figure", "×peer"]
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)))
  const line = (cells: ReadonlyArray<string>) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`
  console.log(
    `\n${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, Node ${process.version}, median of ${rounds} rounds, ` +
      `sides in rotating order after a warm-up of each; × = ratio, > 1 means ours is better\n`
  )
  console.log(line(header))
  console.log(line(widths.map((w) => "-".repeat(w))))
  for (const row of rows) console.log(line(row))
  for (const note of notes) console.log(`- ${note}`)
  await writeFile(join(here, "results.json"), `${JSON.stringify(results, null, 2)}\n`)
}

const child = process.env.BENCH_FILE
;(child === undefined ? main() : runFile(child, process.env.BENCH_REDIS_URL ?? "", process.env.BENCH_OUT ?? "")).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
