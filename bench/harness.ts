/**
 * The benchmark harness: every scenario measures our implementation, raw ioredis and, where one exists, the real npm
 * package users would pick instead (the peer) doing the same work, in the same run, in rotating order, and reports
 * the median of each and the ratios.
 *
 * A bench file (`bench/*.bench.ts`) default-exports a `Suite`: a name and a function that gets a Redis URL and returns
 * its scenarios. Figures are "higher is better" (throughput) or "lower is better" (latency); the ratios are always
 * oriented so that > 1 means ours beats the other side.
 */
import { Session } from "node:inspector/promises"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"

/** One measured figure of one side. */
export type Measure = () => Promise<number>

/** A real npm package doing the scenario's work, measured beside ours and raw ioredis. */
export interface Peer {
  /** The package, e.g. `bullmq 6.7.0`. */
  readonly name: string
  readonly measure: Measure
}

/** One scenario: the same work done by our code, by raw ioredis and by a peer package. */
export interface Scenario {
  readonly name: string
  /** Unit of the figures, e.g. `ops/s` or `µs/op`. */
  readonly unit: string
  readonly higherIsBetter: boolean
  readonly ours: Measure
  /** Raw ioredis doing the same work; absent when raw code has no equivalent worth measuring. */
  readonly raw?: Measure
  /** The real package doing the same work; absent when none exists or it cannot do this work (say why in notes). */
  readonly peer?: Peer
  /** Extra notes to print under the table (e.g. connections used); may measure something once. */
  readonly notes?: () => ReadonlyArray<string> | Promise<ReadonlyArray<string>>
}

/** What a bench file exports. */
export interface Suite {
  readonly name: string
  /** Builds the scenarios for a Redis at `url`; `close` releases what they hold. */
  readonly setup: (
    url: string
  ) => Promise<{ readonly scenarios: ReadonlyArray<Scenario>; readonly close: () => Promise<void> }>
}

/** A measured scenario; `null` where a side was not measured. */
export interface Result {
  readonly scenario: string
  readonly unit: string
  readonly ours: number
  readonly raw: number | null
  /** > 1 means ours is better than raw. */
  readonly ratio: number | null
  readonly peerName: string | null
  readonly peer: number | null
  /** > 1 means ours is better than the peer. */
  readonly ratioPeer: number | null
}

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

/** The `p`th percentile (0–100) of `values`. */
export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

/**
 * Runs a scenario `rounds` times after one warm-up of each side. The order of the sides rotates from round to round
 * (raw, ours, peer; then ours, peer, raw; …), so no side always runs first or right after another.
 */
export const measure = async (scenario: Scenario, rounds: number): Promise<Result> => {
  const candidates = [
    { side: "raw", measure: scenario.raw },
    { side: "ours", measure: scenario.ours },
    { side: "peer", measure: scenario.peer?.measure }
  ] as const
  const sides = candidates.flatMap(({ side, measure: m }) =>
    m === undefined ? [] : [{ side, measure: m, figures: [] as Array<number> }]
  )
  for (const { measure: m } of sides) await m() // warm-up
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < sides.length; i++) {
      const { measure: m, figures } = sides[(round + i) % sides.length] as (typeof sides)[number]
      figures.push(await m())
    }
  }
  const medianOf = (side: (typeof candidates)[number]["side"]) => {
    const figures = sides.find((s) => s.side === side)?.figures
    return figures === undefined ? null : median(figures)
  }
  const o = medianOf("ours") as number
  const ratioTo = (other: number | null) => (other === null ? null : scenario.higherIsBetter ? o / other : other / o)
  const r = medianOf("raw")
  const p = medianOf("peer")
  return {
    scenario: scenario.name,
    unit: scenario.unit,
    ours: o,
    raw: r,
    ratio: ratioTo(r),
    peerName: scenario.peer?.name ?? null,
    peer: p,
    ratioPeer: ratioTo(p)
  }
}

/** What a side measures of `count` operations done by `work`: `throughput`, or `allocatedPerOp`. */
export type Meter = (count: number, work: () => Promise<unknown>) => Promise<number>

/** Times `work` and returns `count` per second. */
export const throughput = async (count: number, work: () => Promise<unknown>): Promise<number> => {
  const started = performance.now()
  await work()
  return count / ((performance.now() - started) / 1000)
}

/** Times `work` and returns microseconds per operation. */
export const latencyMicros = async (count: number, work: () => Promise<unknown>): Promise<number> => {
  const started = performance.now()
  await work()
  return ((performance.now() - started) * 1000) / count
}

/** The inspector session of this process, connected on first use (the heap profiler lives in it). */
let inspector: Session | undefined

/**
 * Bytes the whole process allocates per operation while `work` runs `count` operations: V8's sampling heap profiler,
 * objects already collected by a minor or major garbage collection included, each sample scaled by V8 to the bytes it
 * stands for. Run apart from the speed figures (sampling slows the work down).
 */
export const allocatedPerOp = async (count: number, work: () => Promise<unknown>): Promise<number> => {
  if (inspector === undefined) {
    inspector = new Session()
    inspector.connect()
  }
  await inspector.post("HeapProfiler.startSampling", {
    samplingInterval: 8192,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true
  })
  await work()
  const { profile } = await inspector.post("HeapProfiler.stopSampling")
  let total = 0
  const pending = [profile.head]
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    total += node.selfSize
    pending.push(...node.children)
  }
  return total / count
}

/** V8's full garbage collection, reached without starting Node with `--expose-gc`. */
const collectGarbage = (() => {
  setFlagsFromString("--expose-gc")
  // the bytecode of functions not run lately is otherwise dropped by full collections: not the items' heap
  setFlagsFromString("--no-flush-bytecode")
  return runInNewContext("gc") as () => void
})()

/**
 * Bytes of heap held per item: `hold(n)` keeps `n` more items alive and resolves, once they are held, with the
 * function that lets them go. The heap in use after full garbage collections is measured with `count` items held and
 * with `2 × count`; the difference over `count` is the figure (a difference of two held states, not against the heap
 * before: collections also free what the process held before, such as the bytecode of functions no longer run, and a
 * peer may keep state after its items are let go).
 */
export const heapHeldPer = async (
  count: number,
  hold: (count: number) => Promise<() => Promise<void>>
): Promise<number> => {
  const heapAfterCollections = () => {
    for (let i = 0; i < 3; i++) collectGarbage()
    return process.memoryUsage().heapUsed
  }
  const first = await hold(count)
  const once = heapAfterCollections()
  const second = await hold(count)
  const twice = heapAfterCollections()
  await Promise.all([first(), second()])
  return (twice - once) / count
}

/** Runs `f(0)` … `f(count - 1)` with at most `limit` of them in flight (the promise-side `concurrency: limit`). */
export const inFlight = async (count: number, limit: number, f: (i: number) => Promise<unknown>): Promise<void> => {
  let next = 0
  const lane = async () => {
    while (next < count) await f(next++)
  }
  await Promise.all(Array.from({ length: Math.min(limit, count) }, lane))
}

/**
 * Calls `send(count)` so that `perMs` operations per millisecond are sent for `seconds`: each tick sends what is due
 * (awaited, so a side that cannot keep up falls behind, and its latencies show it).
 */
export const atFixedRate = async (
  perMs: number,
  seconds: number,
  send: (count: number) => Promise<unknown>
): Promise<void> => {
  const start = performance.now()
  const target = perMs * 1000 * seconds
  let sent = 0
  while (sent < target) {
    const due = Math.min(target, Math.floor((performance.now() - start) * perMs))
    if (due > sent) {
      const count = due - sent
      sent = due
      await send(count)
    } else {
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
  }
}

/** A promise with its `resolve` at hand. */
export const deferred = <A = void>() => {
  let resolve: (value: A) => void = () => undefined
  const promise = new Promise<A>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

/** Formats a figure with thousands separators and sensible precision. */
export const format = (value: number): string =>
  value >= 100 ? Math.round(value).toLocaleString("en-US") : value.toFixed(value >= 10 ? 1 : 2)
