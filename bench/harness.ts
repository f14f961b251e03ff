/**
 * The benchmark harness: every scenario measures our implementation and raw ioredis doing the same work, in the same
 * run, alternating, and reports the median of each and their ratio.
 *
 * A bench file (`bench/*.bench.ts`) default-exports a `Suite`: a name and a function that gets a Redis URL and returns
 * its scenarios. Figures are "higher is better" (throughput) or "lower is better" (latency); the ratio is always
 * oriented so that > 1 means ours beats raw.
 */

/** One measured figure of one side. */
export type Measure = () => Promise<number>

/** One scenario: the same work done by our code and by raw ioredis. */
export interface Scenario {
  readonly name: string
  /** Unit of the figures, e.g. `ops/s` or `µs/op`. */
  readonly unit: string
  readonly higherIsBetter: boolean
  readonly ours: Measure
  readonly raw: Measure
  /** Extra notes to print under the table (e.g. connections used). */
  readonly notes?: () => ReadonlyArray<string>
}

/** What a bench file exports. */
export interface Suite {
  readonly name: string
  /** Builds the scenarios for a Redis at `url`; `close` releases what they hold. */
  readonly setup: (
    url: string
  ) => Promise<{ readonly scenarios: ReadonlyArray<Scenario>; readonly close: () => Promise<void> }>
}

/** A measured scenario. */
export interface Result {
  readonly scenario: string
  readonly unit: string
  readonly ours: number
  readonly raw: number
  /** > 1 means ours is better than raw. */
  readonly ratio: number
}

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

/** Runs a scenario `rounds` times, alternating raw and ours, after one warm-up of each. */
export const measure = async (scenario: Scenario, rounds: number): Promise<Result> => {
  await scenario.raw()
  await scenario.ours()
  const ours: Array<number> = []
  const raw: Array<number> = []
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      raw.push(await scenario.raw())
      ours.push(await scenario.ours())
    } else {
      ours.push(await scenario.ours())
      raw.push(await scenario.raw())
    }
  }
  const o = median(ours)
  const r = median(raw)
  return {
    scenario: scenario.name,
    unit: scenario.unit,
    ours: o,
    raw: r,
    ratio: scenario.higherIsBetter ? o / r : r / o
  }
}

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

/** Formats a figure with thousands separators and sensible precision. */
export const format = (value: number): string =>
  value >= 100 ? Math.round(value).toLocaleString("en-US") : value.toFixed(value >= 10 ? 1 : 2)
