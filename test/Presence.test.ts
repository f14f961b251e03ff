/**
 * `npm run example:presence` as a user runs it: two instances (processes) keep their presence entries alive with a
 * heartbeat; one is killed (SIGKILL) and its entry expires on its own, within its time to live and the sweep interval;
 * the other stops cleanly and deletes its entry.
 */
import { assert, describe, it } from "@effect/vitest"
import { runExample } from "./support/example.js"

describe("npm run example:presence", () => {
  it(
    "a killed instance's entry expires everywhere within the bound; a stopped one's is deleted",
    { timeout: 45_000 },
    async () => {
      const { code, stdout } = await runExample("presence.ts", 30_000)
      console.log(stdout)
      assert.strictEqual(code, 0)
      const lines = stdout.trim().split("\n")
      assert.deepStrictEqual(lines.slice(0, 4), [
        "online: ann, bob",
        "bob's instance killed",
        "ann is online",
        "bob is online"
      ])
      const expired = /^bob expired (\d+) ms after the kill, (-?\d+) ms after its deadline/.exec(lines[4] ?? "")
      assert.isNotNull(expired, lines[4])
      // the ttl (3 s) counts from bob's last heartbeat, at most 1 s before the kill; the sweep runs every second
      const afterKill = Number(expired?.[1])
      const afterDeadline = Number(expired?.[2])
      assert.isAtLeast(afterKill, 2000)
      assert.isAtLeast(afterDeadline, -50, "expired before its deadline")
      assert.isBelow(afterDeadline, 1000 + 500, "expired later than the sweep interval allows")
      assert.deepStrictEqual(lines.slice(5), ["ann left", "online: nobody"])
    }
  )
})
