/**
 * The Durable Streams conformance suite against the reference in-memory server of `@durable-streams/server`: the
 * baseline the Redis-backed server is measured against.
 *
 *   CONFORMANCE_TARGET=reference npx vitest run          (or: npx vitest run reference.test.ts)
 *
 * CONFORMANCE_SUBSCRIPTIONS=1 also runs the "Reserved subscription APIs" block (off by default, as for our server) and
 * turns on the reference server's webhook subscriptions, which that block exercises.
 */
import { DurableStreamTestServer } from "@durable-streams/server"
import { runConformanceTests } from "@durable-streams/server-conformance-tests"
import { afterAll, beforeAll, describe } from "vitest"

/** The server's long-poll timeout, and the hint the suite sizes its long-poll tests by (it adds 1s to it). */
const longPollTimeoutMs = 2_000
const subscriptions = process.env["CONFORMANCE_SUBSCRIPTIONS"] === "1"

describe("reference in-memory server (@durable-streams/server)", () => {
  let server: DurableStreamTestServer | undefined
  // The suite reads `baseUrl` lazily, per test, so it can be filled in once the server has a port.
  const config = { baseUrl: "", longPollTimeoutMs, subscriptions }

  beforeAll(async () => {
    server = new DurableStreamTestServer({ port: 0, longPollTimeout: longPollTimeoutMs, webhooks: subscriptions })
    config.baseUrl = await server.start()
  })

  afterAll(async () => {
    await server?.stop()
  })

  runConformanceTests(config)
})
