/**
 * `npm run demo` as a newcomer runs it: no REDIS_URL, so it starts a redis-server of its own; it must tell the story
 * of the five capabilities, end by itself within 30 s, and leave no redis-server behind.
 */
import { connect } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { runExample } from "./support/example.js"

/** Whether something accepts TCP connections on `port` of 127.0.0.1. */
const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

describe("npm run demo", () => {
  it(
    "tells the story of the five capabilities, ends within 30 s and leaves no redis-server behind",
    { timeout: 45_000 },
    async () => {
      const started = Date.now()
      const { code, stdout } = await runExample("demo.ts", 30_000)
      const took = Date.now() - started
      console.log(`the demo took ${took} ms:\n${stdout}`)
      assert.strictEqual(code, 0)
      assert.isBelow(took, 30_000)
      for (const capability of ["CommandBus", "ResumableStream", "EventSink", "SubjectStorage", "StreamAdapter"]) {
        assert.match(stdout, new RegExp(`^${capability}`, "m"))
      }
      assert.match(stdout, /dead/)
      assert.match(stdout, /^Inspector: http:\/\/127\.0\.0\.1:\d+\/inspector\?token=[\w-]{32}$/m)
      const port = Number(/^Redis: redis:\/\/127\.0\.0\.1:(\d+) \(started for this demo\)$/m.exec(stdout)?.[1])
      assert.isAbove(port, 0)
      assert.isFalse(await listening(port))
    }
  )
})
