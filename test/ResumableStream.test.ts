import { assert } from "@effect/vitest"
import { Effect, Fiber, Option, Redacted, Schema, Stream } from "effect"
import { Redis } from "ioredis"
import * as RedisClient from "../src/RedisClient.js"
import * as ResumableStream from "../src/ResumableStream.js"
import * as Scripts from "../src/internal/resumable/scripts.js"
import * as RedisServer from "../src/testing/RedisServer.js"
import { all, Boom, Counter, Failing, Forever, testOptions } from "./support/definitions.js"
import { firstLine, outputOf, spawnChild } from "./support/child.js"
import { anotherClient, forEachTarget, maxClientConnections, TestTopology } from "./support/targets.js"
import { counterCount } from "./support/metrics.js"

type Options = Omit<ResumableStream.Options<typeof all>, "streams">

const fastOptions = (overrides: Options = {}) => testOptions("rs", overrides)

/** Runs `f` with a ResumableStream service built from `options` on the suite's client. */
const withStreams = <A, E, R>(
  options: ResumableStream.Options<typeof all>,
  f: (streams: ResumableStream.Service) => Effect.Effect<A, E, R>
) => Effect.flatMap(ResumableStream.ResumableStream, f).pipe(Effect.provide(ResumableStream.layer(options)))

const chunksOf = <A>(entries: ReadonlyArray<ResumableStream.Entry<A>>) => entries.map((entry) => entry.chunk)
/** The entries are numbered 1…n, in order: none missing, none repeated. */
const assertSequence = (entries: ReadonlyArray<ResumableStream.Entry<unknown>>, n: number) =>
  assert.deepStrictEqual(
    entries.map((entry) => entry.seq),
    Array.from({ length: n }, (_, i) => i + 1)
  )
const counted = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`)

const secret = Redacted.make("test-secret-1")

forEachTarget("ResumableStream", (it) => {
  it.effect("the live caller and a resumer from the start see every chunk once, in order, then the end", () =>
    withStreams(fastOptions(), (streams) =>
      Effect.gen(function* () {
        const started = yield* streams.start(Counter, { n: 30, delayMs: 2 })
        const live = yield* Stream.runCollect(started.stream)
        const resumed = yield* Stream.runCollect(streams.resume(Counter, started.token))
        assert.deepStrictEqual(chunksOf(live), counted(30))
        assert.deepStrictEqual(resumed, live)
        assertSequence(resumed, 30)
      })
    )
  )

  it.effect(
    "one running run per key: a second start is AlreadyRunning; after the end, active is none and a new run starts",
    () =>
      withStreams(fastOptions(), (streams) =>
        Effect.gen(function* () {
          const first = yield* streams.start(Counter, { n: 20, delayMs: 10 }, { key: "chat: 1/ä" })
          assert.strictEqual(yield* streams.status(first.token), "running")
          const refused = yield* Effect.flip(streams.start(Counter, { n: 1, delayMs: 0 }, { key: "chat: 1/ä" }))
          assert.strictEqual(refused.reason._tag, "AlreadyRunning")
          assert.strictEqual(refused.runId, first.runId)
          const active = yield* streams.active(Counter, "chat: 1/ä")
          assert.deepStrictEqual(
            Option.map(active, (run) => [run.runId, run.state]),
            Option.some([first.runId, "running"])
          )
          assert.isTrue(Option.isNone(yield* streams.active(Counter, "another chat")))
          // the token of the active run reads the run
          const token = Option.getOrThrow(active).token
          assert.deepStrictEqual(chunksOf(yield* Stream.runCollect(streams.resume(Counter, token))), counted(20))
          assert.strictEqual(yield* streams.status(first.token), "completed")
          assert.isTrue(Option.isNone(yield* streams.active("counter", "chat: 1/ä")))
          const second = yield* streams.start(Counter, { n: 2, delayMs: 0 }, { key: "chat: 1/ä" })
          assert.deepStrictEqual(chunksOf(yield* Stream.runCollect(second.stream)), counted(2))
        })
      )
  )

  it.effect("a key whose run lost its producer gives way to a new run; a cancelled run's key is free", () =>
    Effect.gen(function* () {
      const options = fastOptions()
      const lost = yield* withStreams({ ...options, shutdownGrace: 0 }, (streams) =>
        streams.start(Forever, { everyMs: 20 }, { key: "k" })
      )
      yield* withStreams(options, (streams) =>
        Effect.gen(function* () {
          assert.strictEqual(yield* streams.status(lost.token), "lost")
          // the key still names its run, lost, until a new run takes it
          const holder = yield* streams.active(Forever, "k")
          assert.deepStrictEqual(
            Option.map(holder, (run) => [run.runId, run.state]),
            Option.some([lost.runId, "lost"])
          )
          const next = yield* streams.start(Forever, { everyMs: 20 }, { key: "k" })
          assert.strictEqual(yield* streams.cancel(next.token), "cancelled")
          assert.isTrue(Option.isNone(yield* streams.active(Forever, "k")))
          const third = yield* streams.start(Counter, { n: 1, delayMs: 0 }, { key: "k" })
          assert.strictEqual((yield* Stream.runCollect(third.stream)).length, 1)
        })
      )
    })
  )

  it.effect("closing the layer: a run that ends within shutdownGrace completes; a longer one ends ProducerLost", () =>
    Effect.gen(function* () {
      const options = fastOptions({ shutdownGrace: "1500 millis" })
      const closing = Date.now()
      const [short, long] = yield* withStreams(options, (streams) =>
        Effect.all([streams.start(Counter, { n: 10, delayMs: 50 }), streams.start(Forever, { everyMs: 20 })])
      )
      const closedAfter = Date.now() - closing
      yield* withStreams(options, (streams) =>
        Effect.gen(function* () {
          assert.deepStrictEqual(chunksOf(yield* Stream.runCollect(streams.resume(Counter, short.token))), counted(10))
          const error = yield* Effect.flip(Stream.runDrain(streams.resume(Forever, long.token)))
          assert.strictEqual(error.reason._tag, "ProducerLost")
        })
      )
      assert.isAtLeast(closedAfter, 1_400)
      assert.isBelow(closedAfter, 3_000)
    })
  )

  it.effect("a reader that disconnects after k chunks resumes after the last id it saw: no gap, no duplicate", () =>
    withStreams(fastOptions(), (streams) =>
      Effect.gen(function* () {
        const started = yield* streams.start(Counter, { n: 40, delayMs: 5 })
        const firstPart = yield* Stream.runCollect(Stream.take(streams.resume(Counter, started.token), 7))
        const lastSeen = firstPart.at(-1)?.id
        const rest = yield* Stream.runCollect(streams.resume(Counter, started.token, { after: lastSeen }))
        assert.deepStrictEqual([...chunksOf(firstPart), ...chunksOf(rest)], counted(40))
      })
    )
  )

  it.effect("a disconnected live caller does not stop the run: every chunk is persisted", () =>
    withStreams(fastOptions(), (streams) =>
      Effect.gen(function* () {
        const started = yield* streams.start(Counter, { n: 25, delayMs: 5 })
        const seen = yield* Stream.runCollect(Stream.take(started.stream, 3))
        assert.deepStrictEqual(chunksOf(seen), counted(3))
        const resumed = yield* Stream.runCollect(streams.resume(Counter, started.token))
        assert.deepStrictEqual(chunksOf(resumed), counted(25))
      })
    )
  )

  it.effect("8 quiet runs (on every master of a Cluster) outlive producerTimeout without ProducerLost", () =>
    withStreams(fastOptions(), (streams) =>
      Effect.gen(function* () {
        // a chunk, then 2.5 s of silence (an LLM thinking: 2.5 × producerTimeout), then another, then the end
        const runs = yield* Effect.forEach(Array.from({ length: 8 }), () =>
          streams.start(Counter, { n: 2, delayMs: 2_500 })
        )
        const read = yield* Effect.forEach(
          runs,
          (run) => Stream.runCollect(streams.resume(Counter, run.token)).pipe(Effect.map(chunksOf)),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(
          read,
          runs.map(() => counted(2))
        )
      })
    )
  )

  it.effect("a token with any character inserted, or an offset beyond Redis' ids, is refused; 0-0 reads it all", () =>
    withStreams(fastOptions({ secret }), (streams) =>
      Effect.gen(function* () {
        const started = yield* streams.start(Counter, { n: 3, delayMs: 0 })
        yield* Stream.runDrain(started.stream)
        const token = started.token
        const mutants = Array.from({ length: token.length }, (_, at) =>
          ["=", "!", " ", "\n", "*", "+", "/"].map((junk) => `${token.slice(0, at)}${junk}${token.slice(at)}`)
        ).flat()
        const reasons = yield* Effect.forEach(mutants, (mutant) =>
          Effect.map(Effect.flip(streams.cancel(mutant)), (error) => error.reason._tag)
        )
        assert.isTrue(
          reasons.every((reason) => reason === "InvalidToken"),
          `${reasons.filter((reason) => reason !== "InvalidToken").length} of ${mutants.length} accepted`
        )
        const beyond = yield* Effect.flip(
          Stream.runDrain(streams.resume(Counter, token, { after: "18446744073709551616-0" }))
        )
        assert.strictEqual(beyond.reason._tag, "InvalidOffset")
        const all = yield* Stream.runCollect(streams.resume(Counter, token, { after: "0-0" }))
        assert.deepStrictEqual(chunksOf(all), counted(3))
      })
    )
  )

  it.effect("one run id in two streams is two runs: cancelling one leaves the other running", () =>
    withStreams(fastOptions(), (streams) =>
      Effect.gen(function* () {
        const forever = yield* streams.start(Forever, { everyMs: 5 }, { runId: "shared-id" })
        const counter = yield* streams.start(Counter, { n: 20, delayMs: 10 }, { runId: "shared-id" })
        yield* streams.cancel(forever.token)
        assert.deepStrictEqual(chunksOf(yield* Stream.runCollect(counter.stream)), counted(20))
      })
    )
  )

  it.effect("the runner's span continues the trace of start", () => {
    const spans: Array<{ readonly traceId: string; readonly name: string }> = []
    const Traced = ResumableStream.define({
      name: "traced",
      input: Schema.Struct({}),
      chunk: Schema.String,
      run: (_, writer) =>
        Effect.gen(function* () {
          const span = yield* Effect.currentSpan
          spans.push({ traceId: span.traceId, name: span.name })
          yield* writer.append("done")
        })
    })
    return Effect.flatMap(ResumableStream.ResumableStream, (streams) =>
      Effect.gen(function* () {
        const started = yield* streams.start(Traced, {})
        const caller = yield* Effect.currentSpan
        yield* Stream.runDrain(started.stream)
        assert.deepStrictEqual(spans, [{ traceId: caller.traceId, name: "ResumableStream.run traced" }])
      }).pipe(Effect.withSpan("request"))
    ).pipe(Effect.provide(ResumableStream.layer({ ...fastOptions(), streams: [Traced] })))
  })

  it.effect("50 concurrent readers see identical sequences", () =>
    withStreams(fastOptions(), (streams) =>
      Effect.gen(function* () {
        const started = yield* streams.start(Counter, { n: 60, delayMs: 3 })
        const results = yield* Effect.forEach(
          Array.from({ length: 50 }, (_, i) => i),
          (i) =>
            // a third of the readers join late, while the run is live
            Effect.sleep(i % 3 === 0 ? 60 : 0).pipe(
              Effect.andThen(Stream.runCollect(streams.resume(Counter, started.token)))
            ),
          { concurrency: "unbounded" }
        )
        for (const result of results) assert.deepStrictEqual(chunksOf(result), counted(60))
      })
    )
  )

  it.effect("1,000 concurrent readers of 100 runs share a handful of connections", () =>
    withStreams(fastOptions(), (streams) =>
      Effect.gen(function* () {
        const topology = yield* TestTopology
        const runs = yield* Effect.forEach(Array.from({ length: 100 }), () =>
          streams.start(Counter, { n: 20, delayMs: 5 })
        )
        const readers = Effect.forEach(
          runs.flatMap((run) => Array.from({ length: 10 }, () => run)),
          (run) => Stream.runCollect(streams.resume(Counter, run.token)),
          { concurrency: "unbounded" }
        )
        const connections = Effect.promise(async () => {
          let total = 0
          for (const node of topology.nodes) {
            const admin = new Redis(node.url)
            const info = await admin.info("clients")
            total += Number(/connected_clients:(\d+)/.exec(info)?.[1] ?? 0) - 1 // less this one
            admin.disconnect()
          }
          return total
        })
        const [results, during] = yield* Effect.all([readers, Effect.delay(connections, "50 millis")], {
          concurrency: "unbounded"
        })
        for (const result of results) assert.deepStrictEqual(chunksOf(result), counted(20))
        // the suite's client's connections only, whatever the number of readers
        assert.isAtMost(during, maxClientConnections(topology), `${during} connections`)
      })
    )
  )

  it.effect(
    "consumers 100,000 chunks behind hold at most their live buffer, then still get every chunk in order",
    () =>
      Effect.gen(function* () {
        const topology = yield* TestTopology
        const bound = 4 * 1024 * 1024
        // 100,000 chunks of 1 KB (100 MB) while the starter's stream and a reader stall (in a process of their own)
        const child = yield* spawnChild(
          "test/support/backlog-child.ts",
          topology,
          [RedisServer.uniquePrefix("backlog"), "100000", "1000", String(bound)],
          ["--expose-gc"]
        )
        const output = yield* outputOf(child).pipe(Effect.timeout("60 seconds"))
        assert.strictEqual(output.code, 0)
        const report = JSON.parse(output.lines[0] ?? "{}") as {
          growth: number
          overflows: number
          starterInOrder: boolean
          readerInOrder: boolean
        }
        assert.isTrue(report.starterInOrder, "the starter's stream: 1…100,000 in order")
        assert.isTrue(report.readerInOrder, "the reader: 1…100,000 in order")
        assert.isAtLeast(report.overflows, 2, "both fell back to reading from Redis")
        // each holds at most `bound` (unbounded, they held 100 MB each: ~217 MB of growth)
        assert.isBelow(report.growth, 2 * bound + 16 * 1024 * 1024)
      }),
    90_000
  )

  it.effect("a starter's stream nobody reads yet keeps at most 64 KiB; read after the run, it gets every chunk", () =>
    withStreams(fastOptions(), (streams) =>
      Effect.gen(function* () {
        const overflows = counterCount("resumable_stream_live_overflows")
        const before = yield* overflows
        // 10,000 chunks of ~14 bytes of JSON each: ~140 KB, more than an unread stream keeps
        const started = yield* streams.start(Counter, { n: 10_000, delayMs: 0 })
        yield* Stream.runDrain(streams.resume(Counter, started.token))
        assert.strictEqual((yield* overflows) - before, 1)
        const live = yield* Stream.runCollect(started.stream)
        assertSequence(live, 10_000)
        assert.deepStrictEqual(chunksOf(live), counted(10_000))
      })
    )
  )

  it.effect("a failing runner: live caller and readers get its typed error, also on resume after the fact", () =>
    withStreams(fastOptions(), (streams) =>
      Effect.gen(function* () {
        const started = yield* streams.start(Failing, { code: 42 })
        const liveError = yield* Effect.flip(Stream.runCollect(started.stream))
        for (const error of [
          liveError,
          yield* Effect.flip(Stream.runCollect(streams.resume(Failing, started.token)))
        ]) {
          const failure = error.reason._tag === "Failed" ? error.reason.error : undefined
          assert.instanceOf(failure, Boom)
          assert.strictEqual((failure as Boom).code, 42)
        }
        const beforeError = yield* streams.resume(Failing, started.token).pipe(
          Stream.catch(() => Stream.empty),
          Stream.runCollect
        )
        assert.deepStrictEqual(chunksOf(beforeError), ["a", "b", "c"])
      })
    )
  )

  it.effect("tampered, foreign, unsigned and expired tokens are refused with typed errors", () =>
    Effect.gen(function* () {
      const options = fastOptions({ secret, tokenTtl: "300 millis" })
      const token = yield* withStreams(options, (streams) =>
        Effect.gen(function* () {
          const started = yield* streams.start(Counter, { n: 3, delayMs: 0 })
          yield* Stream.runDrain(started.stream)
          const [version, body, signature] = started.token.split(".")
          const forged = Buffer.from(
            JSON.stringify({ ...JSON.parse(Buffer.from(body ?? "", "base64url").toString()), r: "other-run" })
          ).toString("base64url")
          for (const bad of [
            `${version}.${forged}.${signature}`,
            `${version}.${body}`,
            "not-a-token",
            `${started.token}x`,
            "v1.e30.AAAA"
          ]) {
            const error = yield* Effect.flip(Stream.runCollect(streams.resume(Counter, bad)))
            assert.strictEqual(error.reason._tag, "InvalidToken", bad)
          }
          // a valid token of another stream is refused, not read with the wrong chunk schema
          const otherStream = yield* Effect.flip(Stream.runCollect(streams.resume(Forever, started.token)))
          assert.strictEqual(otherStream.reason._tag, "InvalidToken")
          return started.token
        })
      )
      const foreign = yield* withStreams({ ...options, secret: Redacted.make("another-secret") }, (streams) =>
        Effect.flip(Stream.runCollect(streams.resume(Counter, token)))
      )
      assert.strictEqual(foreign.reason._tag, "InvalidToken")
      const rotated = yield* withStreams(
        { ...options, secret: [Redacted.make("new-secret"), secret], tokenTtl: "1 minute" },
        (streams) => Stream.runCollect(streams.resume(Counter, token))
      )
      assert.deepStrictEqual(chunksOf(rotated), counted(3))
      yield* Effect.sleep("400 millis")
      const expired = yield* withStreams(options, (streams) =>
        Effect.flip(Stream.runCollect(streams.resume(Counter, token)))
      )
      assert.strictEqual(expired.reason._tag, "Expired")
    })
  )

  it.effect("a bad offset, an unknown run and an unregistered stream get typed errors", () =>
    withStreams(fastOptions(), (streams) =>
      Effect.gen(function* () {
        const started = yield* streams.start(Counter, { n: 2, delayMs: 0 })
        yield* Stream.runDrain(started.stream)
        const badOffset = yield* Effect.flip(Stream.runCollect(streams.resume(Counter, started.token, { after: "x" })))
        assert.strictEqual(badOffset.reason._tag, "InvalidOffset")
        const missingOffset = yield* Effect.flip(
          Stream.runCollect(streams.resume(Counter, started.token, { after: "1-1" }))
        )
        assert.strictEqual(missingOffset.reason._tag, "Truncated")
        const unknownRun = Buffer.from(JSON.stringify({ n: "counter", r: "no-such-run", iat: 0 })).toString("base64url")
        const notFound = yield* Effect.flip(Stream.runCollect(streams.resume(Counter, `v1.${unknownRun}`)))
        assert.strictEqual(notFound.reason._tag, "NotFound")
        const Other = ResumableStream.define({ ...Counter, name: "other" })
        const unregistered = yield* Effect.flip(streams.start(Other, { n: 1, delayMs: 0 }))
        assert.strictEqual(unregistered.reason._tag, "NotFound")
        const badInput = yield* Effect.flip(streams.startEncoded("counter", { n: "many" }))
        assert.strictEqual(badInput.reason._tag, "InvalidInput")
        // in code too: input that breaks the schema (here past the type system) is refused before anything runs
        const untyped = { n: "many", delayMs: 0 } as unknown as { n: number; delayMs: number }
        const badTypedInput = yield* Effect.flip(streams.start(Counter, untyped))
        assert.strictEqual(badTypedInput.reason._tag, "InvalidInput")
        assert.include(badTypedInput.message, "input does not match the schema")
      })
    )
  )

  it.effect("a chunk larger than maxChunkBytes fails the append with ChunkTooLarge; the runner can go on", () => {
    const Big = ResumableStream.define({
      name: "big",
      input: Schema.Struct({}),
      chunk: Schema.String,
      run: (_, writer) =>
        writer.append("x".repeat(2000)).pipe(
          Effect.catchIf(
            (error) => error.reason._tag === "ChunkTooLarge",
            () => writer.append("recovered")
          )
        )
    })
    return Effect.flatMap(ResumableStream.ResumableStream, (streams) =>
      Effect.gen(function* () {
        const started = yield* streams.start(Big, {})
        assert.deepStrictEqual(chunksOf(yield* Stream.runCollect(started.stream)), ["recovered"])
      })
    ).pipe(Effect.provide(ResumableStream.layer({ ...fastOptions(), streams: [Big], maxChunkBytes: 1000 })))
  })

  it.effect("a runner that lets the writer's failure through ends the run with that reason, for every reader", () => {
    const Big = ResumableStream.define({
      name: "big",
      input: Schema.Struct({}),
      chunk: Schema.String,
      run: (_, writer) => Effect.andThen(writer.append("small"), writer.append("x".repeat(2000)))
    })
    return Effect.flatMap(ResumableStream.ResumableStream, (streams) =>
      Effect.gen(function* () {
        const started = yield* streams.start(Big, {})
        const live = yield* Effect.flip(Stream.runCollect(started.stream))
        const resumed = yield* Effect.flip(Stream.runCollect(streams.resume(Big, started.token)))
        assert.deepStrictEqual([live.reason._tag, resumed.reason._tag], ["ChunkTooLarge", "ChunkTooLarge"])
        assert.include(resumed.message, "bytes exceeds 1000")
      })
    ).pipe(Effect.provide(ResumableStream.layer({ ...fastOptions(), streams: [Big], maxChunkBytes: 1000 })))
  })

  it.effect("cancelling is idempotent: a cancelled or finished run reports how it ended", () =>
    withStreams(fastOptions(), (streams) =>
      Effect.gen(function* () {
        const running = yield* streams.start(Forever, { everyMs: 10 })
        assert.strictEqual(yield* streams.cancel(running.token), "cancelled")
        assert.strictEqual(yield* streams.cancel(running.token), "cancelled")
        const done = yield* streams.start(Counter, { n: 2, delayMs: 0 })
        yield* Stream.runDrain(done.stream)
        assert.strictEqual(yield* streams.cancel(done.token), "completed")
      })
    )
  )

  it.effect("the layer refuses to build without a secret, with an empty one, or with two streams of one name", () =>
    Effect.gen(function* () {
      const build = (options: ResumableStream.Options<ReadonlyArray<ResumableStream.AnyDefinition>>) =>
        Effect.flip(Effect.scoped(ResumableStream.make(options)))
      const missing = yield* build({ streams: [Counter] })
      const empty = yield* build({ streams: [Counter], secret: Redacted.make(process.env.NO_SUCH_SECRET ?? "") })
      const twice = yield* build({ streams: [Counter, Counter], unsignedTokens: true })
      assert.deepStrictEqual(
        [missing, empty, twice].map((error) => error.reason._tag),
        ["InvalidInput", "InvalidInput", "InvalidInput"]
      )
      assert.include(missing.message, "secret")
      assert.include(empty.message, "empty")
      assert.include(twice.message, "counter")
    })
  )

  it.effect("cancel from a second instance stops the runner and readers get Cancelled", () =>
    Effect.gen(function* () {
      const topology = yield* TestTopology
      const options = fastOptions()
      yield* withStreams(options, (streams) =>
        Effect.gen(function* () {
          const started = yield* streams.start(Forever, { everyMs: 10 })
          const reader = yield* Effect.forkChild(Stream.runCollect(streams.resume(Forever, started.token)))
          yield* Effect.sleep("150 millis")
          yield* Effect.provide(
            withStreams(options, (other) => other.cancel(started.token, "user pressed stop")),
            anotherClient(topology)
          )
          const error = yield* Effect.flip(Fiber.join(reader))
          assert.strictEqual(error.reason._tag, "Cancelled")
          assert.include(error.message, "user pressed stop")
          const liveError = yield* Effect.flip(Stream.runCollect(started.stream))
          assert.strictEqual(liveError.reason._tag, "Cancelled")
          // the runner stopped: no chunk after the cancel marker, and nothing grows any more
          const length = (yield* RedisClient.RedisClient).use("xlen", (c) =>
            c.xlen(`${options.keyPrefix}forever:{${started.runId}}`)
          )
          const before = yield* length
          yield* Effect.sleep("300 millis")
          assert.strictEqual(yield* length, before)
          // cancelling again succeeds
          yield* streams.cancel(started.token)
        })
      )
    })
  )

  it.effect("a second producer of the same run is refused while the first lives, and fences it out after", () =>
    Effect.gen(function* () {
      const topology = yield* TestTopology
      const options = fastOptions({ heartbeatInterval: "10 seconds" }) // the first producer will look dead soon
      const runId = "fenced-run"
      yield* withStreams(options, (first) =>
        Effect.gen(function* () {
          const started = yield* first.start(Forever, { everyMs: 20 }, { runId })
          const takeOver = withStreams({ ...options, heartbeatInterval: "100 millis" }, (second) =>
            Effect.gen(function* () {
              const refused = yield* Effect.flip(second.start(Forever, { everyMs: 20 }, { runId }))
              assert.strictEqual(refused.reason._tag, "AlreadyRunning")
              yield* Effect.sleep("1200 millis") // past producerTimeout since the first producer's last heartbeat
              const taken = yield* second.start(Forever, { everyMs: 20 }, { runId })
              const firstError = yield* Effect.flip(Stream.runCollect(started.stream))
              assert.strictEqual(firstError.reason._tag, "Fenced")
              const fromSecond = yield* Stream.runCollect(Stream.take(taken.stream, 3))
              assert.strictEqual(fromSecond.length, 3)
              // one run, one sequence: the second producer continued where the first stopped
              const whole = yield* Stream.runCollect(Stream.take(first.resume(Forever, started.token), 40))
              assertSequence(whole, 40)
              yield* second.cancel(taken.token)
            })
          )
          yield* Effect.provide(takeOver, anotherClient(topology))
        })
      )
    })
  )

  it.effect("a producer killed without an end marker: readers fail with ProducerLost within the timeout", () =>
    Effect.gen(function* () {
      const topology = yield* TestTopology
      const options = fastOptions({ producerTimeout: "800 millis" })
      const child = yield* spawnChild("test/support/producer-child.ts", topology, [options.keyPrefix ?? ""])
      const token = yield* firstLine(child)
      yield* withStreams(options, (streams) =>
        Effect.gen(function* () {
          const reader = yield* Effect.forkChild(Stream.runCollect(streams.resume(Forever, token)))
          yield* Effect.sleep("300 millis")
          child.kill("SIGKILL")
          const killedAt = Date.now()
          const error = yield* Effect.flip(Fiber.join(reader))
          const waited = Date.now() - killedAt
          assert.strictEqual(error.reason._tag, "ProducerLost")
          assert.isBelow(waited, 800 + 100 + 1500, `ProducerLost after ${waited} ms`)
        })
      )
    })
  )

  it.effect("a finished run expires after completedTtl: a signed token then gets Expired", () =>
    withStreams(fastOptions({ secret, completedTtl: "200 millis" }), (streams) =>
      Effect.gen(function* () {
        const started = yield* streams.start(Counter, { n: 2, delayMs: 0 })
        yield* Stream.runDrain(started.stream)
        assert.deepStrictEqual(chunksOf(yield* Stream.runCollect(streams.resume(Counter, started.token))), counted(2))
        yield* Effect.sleep("400 millis")
        const error = yield* Effect.flip(Stream.runCollect(streams.resume(Counter, started.token)))
        assert.strictEqual(error.reason._tag, "Expired")
      })
    )
  )

  it.effect("a run longer than maxLifetime is stopped and fails LifetimeExceeded", () =>
    withStreams(fastOptions({ maxLifetime: "300 millis" }), (streams) =>
      Effect.gen(function* () {
        const started = yield* streams.start(Forever, { everyMs: 20 })
        const error = yield* Effect.flip(Stream.runCollect(streams.resume(Forever, started.token)))
        assert.strictEqual(error.reason._tag, "LifetimeExceeded")
      })
    )
  )

  it.effect("maxChunks trims old chunks: a reader from the start fails Truncated, a recent offset still works", () =>
    withStreams(fastOptions({ maxChunks: 10 }), (streams) =>
      Effect.gen(function* () {
        const started = yield* streams.start(Counter, { n: 300, delayMs: 0 })
        const live = yield* Stream.runCollect(started.stream)
        const error = yield* Effect.flip(Stream.runCollect(streams.resume(Counter, started.token)))
        assert.strictEqual(error.reason._tag, "Truncated")
        const tail = yield* Stream.runCollect(streams.resume(Counter, started.token, { after: live.at(-3)?.id }))
        assert.deepStrictEqual(chunksOf(tail), ["c298", "c299"])
      })
    )
  )

  it.effect("the stream keeps River's format: XRANGE shows data={item} entries and an end marker", () => {
    const options = fastOptions()
    return withStreams(options, (streams) =>
      Effect.gen(function* () {
        const redis = yield* RedisClient.RedisClient
        const started = yield* streams.start(Counter, { n: 2, delayMs: 0 })
        yield* Stream.runDrain(started.stream)
        const entries = yield* redis.use("xrange", (c) =>
          c.xrange(`${options.keyPrefix}counter:{${started.runId}}`, "-", "+")
        )
        // read exactly as River's consumer does: fields as a map, JSON in `data`, stop at `end`
        const fields = entries.map(([, list]) => {
          const map: Record<string, string> = {}
          for (let i = 0; i < list.length; i += 2) map[list[i] as string] = list[i + 1] as string
          return map
        })
        assert.deepStrictEqual(
          fields.slice(0, 2).map((f) => JSON.parse(f.data ?? "null").item),
          ["c0", "c1"]
        )
        assert.strictEqual(fields[2]?.end, "true")
        assert.strictEqual(fields.length, 3)
      })
    )
  })

  it.effect("a stored chunk that does not decode fails the reader with Decode and its entry id", () => {
    const options = fastOptions()
    return withStreams(options, (streams) =>
      Effect.gen(function* () {
        const redis = yield* RedisClient.RedisClient
        const started = yield* streams.start(Forever, { everyMs: 60_000 })
        yield* Stream.runDrain(Stream.take(started.stream, 1)) // chunk 1 is in: the bad entry below is number 2
        const key = `${options.keyPrefix}forever:{${started.runId}}`
        const badId = yield* redis.use("xadd", (c) => c.xadd(key, "*", "data", "not json", "seq", "2"))
        const error = yield* Effect.flip(Stream.runCollect(streams.resume(Forever, started.token)))
        assert.strictEqual(error.reason._tag === "Decode" ? error.reason.entryId : undefined, badId)
        yield* redis.use("xdel", (c) => c.xdel(key, badId ?? ""))
        yield* redis.use("xadd", (c) => c.xadd(key, "*", "data", JSON.stringify({ item: "text" }), "seq", "2"))
        const wrongType = yield* Effect.flip(Stream.runCollect(streams.resume(Forever, started.token)))
        assert.strictEqual(wrongType.reason._tag, "Decode")
        yield* streams.cancel(started.token)
      })
    )
  })

  it.effect("appends are group-committed: 1,000 unawaited appends take a few writes, and flush waits for them", () => {
    const options = fastOptions()
    const Burst = ResumableStream.define({
      name: "burst",
      input: Schema.Struct({}),
      chunk: Schema.Number,
      run: (_, writer) =>
        Effect.gen(function* () {
          for (let i = 0; i < 1000; i++) yield* writer.append(i)
          yield* writer.flush
          const length = yield* Effect.flatMap(RedisClient.RedisClient, (redis) =>
            redis.use("xlen", (c) => c.xlen(`${options.keyPrefix}burst:{${writer.runId}}`))
          )
          yield* writer.append(length) // what was in Redis once flush returned
        })
    })
    return Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const streams = yield* ResumableStream.ResumableStream
      let announcements = 0
      const runId = "burst-run"
      yield* redis.listen([`${options.keyPrefix}burst:{${runId}}:live`], (event) => {
        if (event._tag === "Message") announcements += 1
      })
      const started = yield* streams.start(Burst, {}, { runId })
      const chunks = chunksOf(yield* Stream.runCollect(started.stream))
      assert.deepStrictEqual(
        chunks.slice(0, 1000),
        Array.from({ length: 1000 }, (_, i) => i)
      )
      assert.strictEqual(chunks[1000], 1000)
      assert.isBelow(announcements, 20, `${announcements} writes for 1,001 chunks`)
    }).pipe(Effect.scoped, Effect.provide(ResumableStream.layer({ ...options, streams: [Burst] })))
  })

  it.effect("a batch written again after a lost reply is not duplicated (idempotent append)", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const prefix = RedisServer.uniquePrefix("rs-idem")
      const keys = [`${prefix}{r}`, `${prefix}{r}:meta`] as const
      yield* redis.eval(Scripts.claim, [keys[1]], ["producer", 60_000, 1000])
      const append = (firstSeq: number, data: ReadonlyArray<string>) =>
        redis.eval(Scripts.append, [keys[0], keys[1]], ["1", 1000, `${prefix}:live`, firstSeq, ...data])
      const first = yield* append(1, ['"a"', '"b"'])
      const again = yield* append(1, ['"a"', '"b"'])
      assert.deepStrictEqual(again, first)
      assert.strictEqual(first[0], "WRITTEN")
      assert.strictEqual(String(first[1]).split(" ").length, 2)
      const next = yield* append(3, ['"c"'])
      assert.strictEqual(next[0] === "WRITTEN" ? next[1].split(" ").length : 0, 1)
      assert.deepStrictEqual(yield* append(7, ['"x"']), ["BEHIND", 3]) // Redis has fewer chunks than the writer wrote
      assert.deepStrictEqual(yield* append(2, ['"y"']), ["FENCED"]) // an overlap: another writer's sequence
      assert.strictEqual(yield* redis.use("xlen", (c) => c.xlen(keys[0])), 3)
    })
  )

  it.effect("connections dropped while a run is written and read: the reader continues, no gap, no duplicate", () =>
    withStreams(fastOptions(), (streams) =>
      Effect.gen(function* () {
        const topology = yield* TestTopology
        const started = yield* streams.start(Counter, { n: 150, delayMs: 4 })
        const reader = yield* Effect.forkChild(Stream.runCollect(streams.resume(Counter, started.token)))
        yield* Effect.sleep("150 millis")
        // every client connection is cut (the data stays): shared, subscriber, all of them
        const killed = yield* Effect.promise(() =>
          Promise.all(
            topology.nodes.map(async (node) => {
              const admin = new Redis(node.url)
              const normal = Number(await admin.call("CLIENT", "KILL", "TYPE", "normal"))
              const pubsub = Number(await admin.call("CLIENT", "KILL", "TYPE", "pubsub"))
              admin.disconnect()
              return normal + pubsub
            })
          )
        )
        assert.isAtLeast(
          killed.reduce((a, b) => a + b, 0),
          2,
          "the shared and the subscriber connections were cut"
        )
        const entries = yield* Fiber.join(reader)
        assert.deepStrictEqual(chunksOf(entries), counted(150))
        assertSequence(entries, 150)
      })
    )
  )
})
