import { assert, describe, it } from "@effect/vitest"
import { Schedule } from "effect"
import { classify, scrub } from "../../src/internal/redis/errors.js"
import { fromSchedule } from "../../src/internal/redis/reconnect.js"
import { parseUrl } from "../../src/internal/redis/spec.js"

const replyError = (message: string) => Object.assign(new Error(message), { name: "ReplyError" })
const socketError = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:6379`), { code })

describe("classify", () => {
  const cases: ReadonlyArray<readonly [unknown, string, boolean]> = [
    [socketError("ECONNREFUSED"), "Connection", true],
    [socketError("ECONNRESET"), "Connection", true],
    [socketError("ETIMEDOUT"), "Timeout", true],
    [new Error("Command timed out"), "Timeout", true],
    [new Error("Connection is closed."), "Connection", true],
    [new Error("Stream isn't writeable and enableOfflineQueue options is false"), "Connection", true],
    [replyError("WRONGPASS invalid username-password pair or user is disabled."), "Auth", false],
    [replyError("NOAUTH Authentication required."), "Auth", false],
    [replyError("NOPERM this user has no permissions to run the 'xadd' command"), "Auth", false],
    [replyError("CROSSSLOT Keys in request don't hash to the same slot"), "CrossSlot", false],
    [replyError("READONLY You can't write against a read only replica."), "ReadOnly", true],
    [replyError("LOADING Redis is loading the dataset in memory"), "Loading", true],
    [replyError("CLUSTERDOWN The cluster is down"), "ClusterDown", true],
    [replyError("TRYAGAIN Multiple keys request during rehashing of slot"), "ClusterDown", true],
    [replyError("OOM command not allowed when used memory > 'maxmemory'."), "OutOfMemory", true],
    [replyError("BUSY Redis is busy running a script."), "Busy", true],
    [replyError("ERR Error running script (call to f_abc): @user_script:1: boom"), "Script", false],
    [replyError("WRONGTYPE Operation against a key holding the wrong kind of value"), "Command", false],
    [replyError("NOGROUP No such key 'k' or consumer group 'g'"), "Command", false],
    ["a plain string", "Command", false]
  ]
  for (const [cause, reason, retryable] of cases) {
    it(`${String(cause instanceof Error ? cause.message : cause).slice(0, 40)} → ${reason}`, () => {
      const error = classify(cause, "op")
      assert.strictEqual(error.reason._tag, reason)
      assert.strictEqual(error.isRetryable, retryable)
      assert.isTrue(error.message.startsWith("op: "))
    })
  }

  it("keeps the Redis error code", () => {
    assert.strictEqual(classify(replyError("BUSYGROUP Consumer Group name already exists"), "x").code, "BUSYGROUP")
    assert.strictEqual(classify(socketError("ECONNREFUSED"), "x").code, "ECONNREFUSED")
  })

  it("scrubs every secret from the message", () => {
    const error = classify(new Error("AUTH pa55word failed for pa55word"), "auth", ["pa55word"])
    assert.notInclude(error.message, "pa55word")
    assert.strictEqual(scrub("a-s-a", ["s", ""]), "a-<redacted>-a")
  })
})

describe("fromSchedule", () => {
  it("gives the schedule's delays to ioredis, stops when it ends, and starts over after reset", () => {
    const strategy = fromSchedule(Schedule.exponential("10 millis").pipe(Schedule.upTo({ times: 3 })))
    const delays = [1, 2, 3, 4].map((n) => strategy.retryStrategy(n))
    assert.deepStrictEqual(delays, [10, 20, 40, null])
    strategy.reset()
    assert.strictEqual(strategy.retryStrategy(1), 10)
  })
})

describe("parseUrl", () => {
  it("reads host, port, credentials, database and TLS", () => {
    assert.deepStrictEqual(parseUrl("rediss://bob:p%40ss@cache.local:6380/2"), {
      host: "cache.local",
      port: 6380,
      username: "bob",
      password: "p@ss",
      db: 2,
      tls: true
    })
    assert.deepStrictEqual(parseUrl("redis://[::1]"), {
      host: "::1",
      port: 6379,
      username: undefined,
      password: undefined,
      db: undefined,
      tls: false
    })
  })

  it("rejects a malformed URL without echoing it", () => {
    assert.throws(() => parseUrl("redis://user:secret@host:notaport"), /invalid Redis URL/)
    const thrown = (() => {
      try {
        parseUrl("http://user:secret@host")
        return undefined
      } catch (error) {
        return error
      }
    })()
    assert.instanceOf(thrown, Error)
    assert.notInclude(String(thrown), "secret")
  })
})
