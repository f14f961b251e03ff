/**
 * Failures as real servers produce them: an out-of-memory server, a paused server, ACL denials, a wrong TLS
 * certificate authority. Each must reach the caller classified right (retryable when it can pass), and nothing the
 * library accepted may be lost or applied twice.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, layer } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Layer, Option, Schedule, Schema, Stream } from "effect"
import * as EventSink from "../src/EventSink.js"
import * as Message from "../src/Message.js"
import * as Publisher from "../src/Publisher.js"
import * as RedisClient from "../src/RedisClient.js"
import * as RedisScript from "../src/RedisScript.js"
import * as ResumableStream from "../src/ResumableStream.js"
import * as StreamAdapter from "../src/StreamAdapter.js"
import * as SubjectStorage from "../src/SubjectStorage.js"
import * as RedisServer from "../src/testing/RedisServer.js"
import { run } from "../src/testing/internal/process.js"
import { userMessage } from "./support/chat.js"
import { firstLine, outputOf, spawnChild } from "./support/child.js"
import type { Topology } from "./support/targets.js"

const chatChildScript = new URL("./support/chat-server-child.ts", import.meta.url).pathname

const prefix = () => RedisServer.uniquePrefix("fail")

/** The reason tag of the first failure of `effect`. */
const reasonOf = <A, E extends { readonly reason: { readonly _tag: string } }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.flip(effect), (error) => error.reason._tag)

const writeScript = RedisScript.make<[key: string], [value: string], string>()(
  "test.write",
  "redis.call('SET', KEYS[1], ARGV[1]) return 'OK'"
)
const failingScript = RedisScript.make<[key: string], [], string>()(
  "test.failing",
  "return redis.call('NOSUCHCOMMAND', KEYS[1])"
)
const wrongTypeScript = RedisScript.make<[key: string], [], string>()(
  "test.wrongType",
  "redis.call('SET', KEYS[1], 'text') return redis.call('HGET', KEYS[1], 'f')"
)

/** Runs `f` with a client of `node` (with `options`), closed afterwards. */
const withClient = <A, E>(
  node: RedisServer.Node,
  options: RedisClient.Options,
  f: (redis: RedisClient.Service) => Effect.Effect<A, E, RedisClient.RedisClient>
) => Effect.provide(Effect.flatMap(RedisClient.RedisClient, f), RedisClient.layer({ ...options, url: node.url }))

const cli = (node: RedisServer.Node, ...args: ReadonlyArray<string>) =>
  Effect.promise(() => run("redis-cli", ["-p", String(node.port), ...args]))

/** Fills the server past its `maxmemory`, and frees it again. */
const fill = (node: RedisServer.Node) => cli(node, "eval", "redis.call('SET', 'filler', string.rep('x', 3000000))", "0")
const free = (node: RedisServer.Node) => cli(node, "del", "filler")

layer(RedisServer.layer({ args: ["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"] }), {
  excludeTestServices: true,
  timeout: 60_000
})("an out-of-memory server (maxmemory 3mb, noeviction)", (it) => {
  it.effect("real replies are classified by their code: OOM from a command or a script is OutOfMemory, retryable", () =>
    Effect.gen(function* () {
      const node = yield* RedisServer.RedisServer
      const key = `${prefix()}k`
      yield* withClient(node, {}, (redis) =>
        Effect.gen(function* () {
          assert.strictEqual(yield* reasonOf(redis.eval(failingScript, [key], [])), "Script")
          assert.strictEqual(yield* reasonOf(redis.eval(wrongTypeScript, [key], [])), "Command")
          yield* fill(node)
          const command = yield* Effect.flip(redis.use("set", (c) => c.set(key, "v")))
          const script = yield* Effect.flip(redis.eval(writeScript, [key], ["v"]))
          yield* free(node)
          for (const error of [command, script]) {
            assert.strictEqual(error.reason._tag, "OutOfMemory", error.message)
            assert.isTrue(error.isRetryable)
            assert.strictEqual(error.code, "OOM")
          }
          // the script's own error text names the script, and must not turn OOM into a script bug
          assert.include(script.message, "script")
        })
      )
    })
  )

  it.effect("every capability refuses writes retryably while memory is full, and the sink loses nothing", () =>
    Effect.gen(function* () {
      const node = yield* RedisServer.RedisServer
      const keyPrefix = prefix()
      const Count = ResumableStream.define({
        name: "count",
        input: Schema.Struct({}),
        chunk: Schema.Number,
        run: (_, writer) => writer.append(1)
      })
      const Item = StreamAdapter.define({ name: "items", item: Schema.Struct({ n: Schema.Number }) })
      const quick = { outageTimeout: "200 millis" } as const
      yield* Effect.gen(function* () {
        const sink = yield* EventSink.EventSink
        const publisher = yield* Publisher.Publisher
        const storage = yield* SubjectStorage.SubjectStorage
        const board = (yield* StreamAdapter.StreamAdapter).stream(Item)
        const streams = yield* ResumableStream.ResumableStream
        yield* fill(node)
        const refusals = yield* Effect.all([
          Effect.flip(publisher.publish("t", Message.make("m"))),
          Effect.flip(storage.set("s", "p", 1)),
          Effect.flip(storage.increment("s", "n")),
          Effect.flip(board.set("g", "i", { n: 1 })),
          Effect.flip(streams.start(Count, {}))
        ])
        for (const error of refusals) {
          assert.strictEqual(error.reason._tag, "Redis", error.message)
          assert.isTrue(error.isRetryable, error.message)
          assert.include(error.message, "OOM")
        }
        for (let n = 0; n < 100; n++) yield* sink.emit({ event_type: "while-full", data: { n } })
        yield* Effect.sleep("500 millis")
        const full = yield* sink.stats
        assert.strictEqual(full.written, 0)
        assert.strictEqual(full.dropped.rejected, 0)
        assert.strictEqual(full.buffered, 100)
        assert.isAbove(full.failedWrites, 0)
        yield* free(node)
        yield* sink.flush.pipe(
          Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 100, while: (error) => error.isRetryable })
        )
        const events = yield* Stream.runCollect(sink.events())
        assert.deepStrictEqual(
          events.map((stored) => (stored.event.data as { n: number }).n),
          Array.from({ length: 100 }, (_, n) => n)
        )
      }).pipe(
        Effect.provide(
          Layer.mergeAll(
            EventSink.layer({
              streamKey: `${keyPrefix}{sink}`,
              flushInterval: "10 millis",
              openDuration: "100 millis"
            }),
            Publisher.layer({ keyPrefix, ...quick }),
            SubjectStorage.layer({ keyPrefix, ...quick }),
            StreamAdapter.layer({ keyPrefix, ...quick }),
            ResumableStream.layer({ streams: [Count], keyPrefix, unsignedTokens: true })
          ).pipe(Layer.provide(RedisClient.layer({ url: node.url })))
        )
      )
    })
  )
})

layer(RedisServer.layer({ args: [] }), { excludeTestServices: true, timeout: 60_000 })("a paused server", (it) => {
  it.effect("writes whose replies time out are retried with their request id: each applied once", () =>
    Effect.gen(function* () {
      const node = yield* RedisServer.RedisServer
      const keyPrefix = prefix()
      const run = (outageTimeout: Duration.Input) =>
        Effect.gen(function* () {
          const storage = yield* SubjectStorage.SubjectStorage
          const board = (yield* StreamAdapter.StreamAdapter).stream(
            StreamAdapter.define({ name: "b", item: Schema.Struct({ n: Schema.Number }) })
          )
          yield* cli(node, "client", "pause", "1200", "write")
          const label = Duration.format(Duration.fromInputUnsafe(outageTimeout))
          const results: ReadonlyArray<Exit.Exit<unknown, { readonly reason: { readonly _tag: string } }>> =
            yield* Effect.all(
              [
                ...Array.from({ length: 20 }, () => Effect.exit(storage.increment(`s-${label}`, "n"))),
                ...Array.from({ length: 5 }, (_, i) => Effect.exit(board.set(`g-${label}`, `i${i}`, { n: i })))
              ],
              { concurrency: "unbounded" }
            )
          yield* Effect.sleep("1500 millis") // the pause is over: what was sent has run
          const count = yield* storage.get(`s-${label}`, "n")
          const snapshot = yield* board.snapshot(`g-${label}`)
          return { results, count, version: snapshot.position.version }
        }).pipe(
          Effect.provide(
            Layer.mergeAll(
              SubjectStorage.layer({ keyPrefix, outageTimeout }),
              StreamAdapter.layer({ keyPrefix, outageTimeout })
            ).pipe(Layer.provide(RedisClient.layer({ url: node.url, commandTimeout: "150 millis" })))
          )
        )

      // retried past the pause: every write succeeds, and each was applied once
      const patient = yield* run(Duration.seconds(5))
      assert.isTrue(patient.results.every(Exit.isSuccess))
      assert.deepStrictEqual(patient.count._tag === "Some" ? patient.count.value : undefined, 20)
      assert.strictEqual(patient.version, 5)

      // given up before the pause ends: the caller is told the outcome is unknown, and nothing ran twice
      const hasty = yield* run(Duration.millis(300))
      const reasons = hasty.results.map((exit) =>
        Option.match(Exit.findErrorOption(exit), { onNone: () => "ok", onSome: (error) => error.reason._tag })
      )
      assert.isTrue(
        reasons.every((reason) => reason === "OutcomeUnknown"),
        reasons.join(",")
      )
      assert.deepStrictEqual(hasty.count._tag === "Some" ? hasty.count.value : undefined, 20)
      assert.strictEqual(hasty.version, 5)
    })
  )

  it.effect("writes and transactions end within their outageTimeout while a server stops answering", () =>
    Effect.gen(function* () {
      const node = yield* RedisServer.RedisServer
      const keyPrefix = prefix()
      yield* Effect.gen(function* () {
        const storage = yield* SubjectStorage.SubjectStorage
        yield* cli(node, "client", "pause", "2500", "all")
        const started = Date.now()
        const timed = <A, E>(effect: Effect.Effect<A, E>) =>
          Effect.map(Effect.flip(effect), (error) => ({ error, took: Date.now() - started }))
        const [write, transaction] = yield* Effect.all(
          [timed(storage.set("s", "n", 1)), timed(storage.transaction(["t"], (tx) => tx.set("t", "n", 1)))],
          { concurrency: "unbounded" }
        )
        // 600 ms of retries, and scheduling: an outcome that may have been applied is OutcomeUnknown, else retryable
        for (const { error, took } of [write, transaction]) {
          assert.isBelow(took, 1200, `${error.message}: after ${took} ms`)
          assert.include(["OutcomeUnknown", "Redis"], error.reason._tag)
        }
        yield* Effect.sleep("2 seconds") // the pause ends
      }).pipe(
        Effect.provide(
          SubjectStorage.layer({ keyPrefix, outageTimeout: "600 millis" }).pipe(
            Layer.provide(RedisClient.layer({ url: node.url, commandTimeout: "200 millis" }))
          )
        )
      )
    })
  )

  it.effect(
    "an idempotent script ends within its retryWithin while the server hangs, even under a longer command timeout; it is applied once when the server answers",
    () =>
      Effect.gen(function* () {
        const node = yield* RedisServer.RedisServer
        const key = `${prefix()}counter`
        const incr = RedisScript.make<[string], [], number>()("incr", "return redis.call('INCR', KEYS[1])")
        yield* withClient(node, { commandTimeout: "5 seconds" }, (redis) =>
          Effect.gen(function* () {
            yield* redis.eval(incr, [key], []) // loaded: the retry after the pause needs no EVAL
            yield* cli(node, "client", "pause", "1500", "all")
            const started = Date.now()
            const error = yield* Effect.flip(
              redis.evalIdempotent(incr, [key], [], { requestId: "once", retryWithin: "400 millis" })
            )
            const took = Date.now() - started
            assert.strictEqual(error._tag, "OutcomeUnknown", error.message)
            assert.isAtLeast(took, 390)
            assert.isBelow(took, 900, `ended after ${took} ms`)
            yield* Effect.sleep("1500 millis") // the pause ends: the attempt in the server's queue runs
            // the same request again: applied once (the marker answers), the counter at 2 (1 before, 1 for it)
            assert.strictEqual(yield* redis.evalIdempotent(incr, [key], [], { requestId: "once" }), 2)
            assert.strictEqual(Number(yield* redis.send("GET", key)), 2)
          })
        )
      })
  )

  it.effect("a server that stops answering fails calls with Timeout within the command timeout", () =>
    Effect.gen(function* () {
      const node = yield* RedisServer.RedisServer
      yield* withClient(node, { commandTimeout: "200 millis" }, (redis) =>
        Effect.gen(function* () {
          yield* cli(node, "client", "pause", "1000", "all")
          const started = Date.now()
          const error = yield* Effect.flip(redis.use("get", (c) => c.get("k")))
          assert.strictEqual(error.reason._tag, "Timeout")
          assert.isTrue(error.isRetryable)
          assert.isBelow(Date.now() - started, 900)
          yield* Effect.sleep("1 second")
        })
      )
    })
  )
})

layer(RedisServer.layer({ persistent: true }), { excludeTestServices: true, timeout: 60_000 })(
  "a server down when a reader starts",
  (it) => {
    it.effect("a resume opened while Redis is down waits for it (outageTimeout) and then reads the whole run", () =>
      Effect.gen(function* () {
        const node = yield* RedisServer.RedisServer
        const Count = ResumableStream.define({
          name: "count",
          input: Schema.Struct({ n: Schema.Number }),
          chunk: Schema.Number,
          run: ({ n }, writer) => writer.appendAll(Array.from({ length: n }, (_, i) => i))
        })
        yield* Effect.gen(function* () {
          const streams = yield* ResumableStream.ResumableStream
          const started = yield* streams.start(Count, { n: 50 })
          yield* Stream.runDrain(started.stream)
          yield* node.kill
          const opened = Date.now()
          const reader = yield* Effect.forkChild(Stream.runCollect(streams.resume(Count, started.token)))
          yield* Effect.sleep("1500 millis")
          yield* node.start // with its append-only file: the run is still there
          const chunks = yield* Fiber.join(reader)
          assert.deepStrictEqual(
            chunks.map((entry) => entry.chunk),
            Array.from({ length: 50 }, (_, i) => i)
          )
          assert.isAtLeast(Date.now() - opened, 1500)
        }).pipe(
          Effect.provide(
            ResumableStream.layer({
              streams: [Count],
              keyPrefix: prefix(),
              unsignedTokens: true,
              outageTimeout: "10 seconds"
            }).pipe(Layer.provide(RedisClient.layer({ url: node.url })))
          )
        )
      })
    )
  }
)

layer(
  RedisServer.layerSentinel({
    replicas: 1,
    downAfter: "60 seconds",
    args: ["--min-replicas-to-write", "1", "--min-replicas-max-lag", "10"]
  }),
  { excludeTestServices: true, timeout: 60_000 }
)("a master that must not accept writes without a replica (min-replicas-to-write)", (it) => {
  it.effect("its NOREPLICAS refusal is retryable: a write goes through once the replica is back", () =>
    Effect.gen(function* () {
      const sentinel = yield* RedisServer.RedisSentinel
      const replica = sentinel.replicas[0] as RedisServer.Node
      yield* Effect.gen(function* () {
        const storage = yield* SubjectStorage.SubjectStorage
        yield* storage.set("s", "n", 1)
        yield* replica.kill
        const refused = yield* Effect.flip(storage.set("s", "n", 2))
        assert.isTrue(refused.isRetryable)
        assert.include(refused.message, "NOREPLICAS")
        yield* replica.start
        // the application retries as it does any retryable failure
        const written = yield* storage
          .set("s", "n", 3)
          .pipe(Effect.retry({ schedule: Schedule.spaced("200 millis"), times: 50, while: (e) => e.isRetryable }))
        assert.deepStrictEqual(written.previous, Option.some(1))
      }).pipe(
        Effect.provide(
          SubjectStorage.layer({ keyPrefix: prefix(), outageTimeout: "300 millis" }).pipe(
            Layer.provide(RedisClient.layerSentinel({ sentinels: [sentinel.sentinel], name: sentinel.name }))
          )
        )
      )
    })
  )
})

layer(RedisServer.layer(), { excludeTestServices: true, timeout: 60_000 })("Redis gone at shutdown", (it) => {
  it.effect(
    "a chat server answering when Redis died exits within shutdownGrace and 1.5 s after SIGTERM (it waited minutes)",
    () =>
      Effect.gen(function* () {
        const node = yield* RedisServer.RedisServer
        const topology: Topology = { kind: "single", nodes: [node], killAll: node.kill, startAll: node.start }
        const grace = 1000
        const child = yield* spawnChild(chatChildScript, topology, [prefix(), String(grace)])
        const url = yield* firstLine(child)
        const answering = yield* Effect.promise(() =>
          fetch(`${url}/api/chat`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ id: "c", trigger: "submit-message", messages: [userMessage("a long one")] })
          })
        )
        assert.strictEqual(answering.status, 200)
        yield* node.kill
        yield* Effect.sleep("300 millis")
        const exited = outputOf(child)
        const signalled = Date.now()
        child.kill("SIGTERM")
        const exitedAfter = (yield* exited).exitedAt - signalled
        console.log(`SIGTERM with Redis gone: exited after ${exitedAfter} ms (shutdownGrace ${grace} ms)`)
        assert.isBelow(exitedAfter, grace + 1500)
        yield* node.start
      }).pipe(Effect.scoped)
  )
})

layer(RedisServer.layer({ args: ["--requirepass", "right-password"] }), { excludeTestServices: true, timeout: 60_000 })(
  "ACL",
  (it) => {
    it.effect("a denied command is Auth (NOPERM), a wrong password is Auth, neither retryable", () =>
      Effect.gen(function* () {
        const node = yield* RedisServer.RedisServer
        yield* cli(node, "-a", "right-password", "acl", "setuser", "reader", "on", ">reader-pw", "~*", "+get", "+ping")
        yield* cli(node, "-a", "right-password", "acl", "setuser", "reader", "+hello", "+client", "+info")
        const denied = yield* withClient(node, { username: "reader", password: "reader-pw" }, (redis) =>
          Effect.flip(redis.use("set", (c) => c.set("k", "v")))
        )
        assert.strictEqual(denied.reason._tag, "Auth")
        assert.strictEqual(denied.code, "NOPERM")
        const wrong = yield* Effect.flip(withClient(node, { password: "wrong-password" }, () => Effect.void))
        assert.strictEqual(wrong.reason._tag, "Auth")
        assert.isFalse(wrong.isRetryable)
        assert.notInclude(wrong.message, "wrong-password")
      })
    )
  }
)

/**
 * Two certificate authorities and a certificate for 127.0.0.1 signed by the first, made with openssl in a temporary
 * folder.
 */
const certificates = () => {
  const dir = mkdtempSync(join(tmpdir(), "ers-tls-"))
  const ssl = (...args: ReadonlyArray<string>) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" })
  const key = ["-newkey", "rsa:2048", "-nodes"]
  for (const ca of ["ca", "other-ca"]) {
    ssl("req", "-x509", ...key, "-days", "1", "-subj", `/CN=${ca}`, "-keyout", `${ca}.key`, "-out", `${ca}.crt`)
  }
  ssl("req", ...key, "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost")
  ssl(
    "req",
    ...key,
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-keyout",
    "server.key",
    "-out",
    "server.csr"
  )
  ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1")
  ssl(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "1",
    "-copy_extensions",
    "copy",
    "-out",
    "server.crt"
  )
  return { dir, file: (name: string) => join(dir, name), read: (name: string) => readFileSync(join(dir, name)) }
}

const tls = certificates()

layer(
  RedisServer.layer({ tls: { cert: tls.file("server.crt"), key: tls.file("server.key"), ca: tls.file("ca.crt") } }),
  { excludeTestServices: true, timeout: 60_000 }
)("TLS", (it) => {
  it.effect("a server whose certificate no trusted authority signed fails Connection, not Command", () =>
    Effect.gen(function* () {
      const node = yield* RedisServer.RedisServer
      const trusted = yield* withClient(node, { tls: { ca: tls.read("ca.crt") } }, (redis) =>
        redis.use("ping", (c) => c.ping())
      )
      assert.strictEqual(trusted, "PONG")
      const error = yield* Effect.flip(
        withClient(node, { tls: { ca: tls.read("other-ca.crt") }, connectTimeout: "2 seconds" }, () => Effect.void)
      )
      assert.strictEqual(error.reason._tag, "Connection", error.message)
    })
  )
})

layer(RedisServer.layer({ args: [] }), { excludeTestServices: true, timeout: 90_000 })("a long outage", (it) => {
  it.effect("an application starts while Redis is down (connectInBackground): calls fail typed, the sink buffers", () =>
    Effect.gen(function* () {
      const node = yield* RedisServer.RedisServer
      const streamKey = `${prefix()}{sink}`
      yield* node.kill
      yield* Effect.gen(function* () {
        const redis = yield* RedisClient.RedisClient
        const sink = yield* EventSink.EventSink
        const down = yield* Effect.flip(redis.use("ping", (c) => c.ping()))
        assert.strictEqual(down.reason._tag, "Connection")
        assert.isTrue(down.isRetryable)
        for (let n = 0; n < 10; n++) yield* sink.emit({ event_type: "early", data: { n } })
        yield* node.start
        yield* sink.flush.pipe(
          Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 50, while: (error) => error.isRetryable })
        )
        assert.strictEqual((yield* sink.stats).written, 10)
        assert.strictEqual(yield* redis.use("ping", (c) => c.ping()), "PONG")
      }).pipe(
        Effect.provide(
          EventSink.layer({ streamKey, flushInterval: "10 millis" }).pipe(
            Layer.provideMerge(RedisClient.layer({ url: node.url, connectInBackground: true }))
          )
        )
      )
    })
  )

  it.effect("after 20 s without Redis, the sink writes again within 1 s of its return, and loses nothing", () =>
    Effect.gen(function* () {
      const node = yield* RedisServer.RedisServer
      const streamKey = `${prefix()}{sink}`
      yield* Effect.gen(function* () {
        const sink = yield* EventSink.EventSink
        yield* sink.emit({ event_type: "before" })
        yield* sink.flush
        yield* node.kill
        // the breaker opens, and its openings grow (1 s, 2 s, 4 s, 8 s…) while the events pile up
        for (let n = 0; n < 200; n++) {
          yield* sink.emit({ event_type: "during", data: { n } })
          yield* Effect.sleep("100 millis")
        }
        const down = yield* sink.stats
        assert.strictEqual(down.breaker, "Open")
        assert.strictEqual(down.buffered, 200)
        yield* node.start
        const back = Date.now()
        while ((yield* sink.stats).written === 1) yield* Effect.sleep("10 millis")
        const resumedAfter = Date.now() - back
        process.stdout.write(`EventSink: writing again ${resumedAfter} ms after Redis came back from a 20 s outage\n`)
        assert.isBelow(resumedAfter, 1_000)
        yield* sink.flush
        // the server kept nothing of before the outage; every event of the outage is there, in order
        const events = yield* Stream.runCollect(sink.events())
        assert.deepStrictEqual(
          events.map((stored) => (stored.event.data as { n: number }).n),
          Array.from({ length: 200 }, (_, n) => n)
        )
      }).pipe(
        Effect.provide(
          EventSink.layer({ streamKey, flushInterval: "10 millis" }).pipe(
            Layer.provide(RedisClient.layer({ url: node.url }))
          )
        )
      )
    })
  )
})
