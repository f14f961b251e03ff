import { defineConfig } from "vitest/config"

/**
 * Which conformance run to execute. `CONFORMANCE_TARGET=reference` runs the suite against the in-memory reference server
 * from `@durable-streams/server`; `CONFORMANCE_TARGET=redis` against the Redis-backed server. Unset: every `*.test.ts`
 * here, narrowed as usual by a file filter on the command line (`npx vitest run reference.test.ts`).
 */
const target = process.env["CONFORMANCE_TARGET"]

export default defineConfig({
  test: {
    environment: "node",
    include: target === undefined || target === "" ? ["*.test.ts"] : [`${target}.test.ts`],
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
