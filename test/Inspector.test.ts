import { NodeHttpServer } from "@effect/platform-node"
import { assert } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Layer, Redacted, Schedule, Schema, Stream } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { createServer } from "node:http"
import * as EventSink from "../src/EventSink.js"
import * as Inspector from "../src/Inspector.js"
import * as Message from "../src/Message.js"
import * as Publisher from "../src/Publisher.js"
import * as RedisClient from "../src/RedisClient.js"
import * as ResumableStream from "../src/ResumableStream.js"
import * as StreamAdapter from "../src/StreamAdapter.js"
import * as SubjectStorage from "../src/SubjectStorage.js"
import * as Subscriber from "../src/Subscriber.js"
import * as RedisServer from "../src/testing/RedisServer.js"
import { Forever, testOptions } from "./support/definitions.js"
import { entriesOf } from "./support/streams.js"
import { forEachTarget } from "./support/targets.js"

/** Runs `f` with the base URL of a real HTTP server (random port) serving the inspector's routes. */
const withInspector = <A, E, R>(options: Inspector.Options, f: (baseUrl: string) => Effect.Effect<A, E, R>) =>
  HttpServer.addressFormattedWith((url) => f(`${url}${options.path ?? "/inspector"}`)).pipe(
    Effect.provide(
      HttpRouter.serve(Inspector.routes(options), { disableLogger: true, disableListenLog: true }).pipe(
        Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
      )
    )
  )

/** A GET's status and JSON body. */
const getJson = <A>(url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url)
    return { status: response.status, body: (await response.json()) as A }
  })

/** A POST of a JSON body: its status and JSON body. */
const postJson = <A>(url: string, body: unknown) =>
  Effect.promise(async () => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body)
    })
    return { status: response.status, body: (await response.json()) as A }
  })

/** Every page of a paged endpoint, following its cursors. */
const allPages = <A>(url: string, field: string) =>
  Effect.gen(function* () {
    const items: Array<A> = []
    let cursor: string | null = ""
    while (cursor !== null) {
      const separator = url.includes("?") ? "&" : "?"
      const page: { status: number; body: Record<string, unknown> } = yield* getJson<Record<string, unknown>>(
        `${url}${cursor === "" ? "" : `${separator}cursor=${encodeURIComponent(cursor)}`}`
      )
      assert.strictEqual(page.status, 200)
      items.push(...(page.body[field] as Array<A>))
      cursor = page.body.cursor as string | null
    }
    return items
  })

/** Fast claims and polls for the subscribers of the tests. */
const fast = { pollInterval: "100 millis", claimIdleTime: "400 millis", claimInterval: "100 millis" } as const

/** A topic's raw figures: XLEN, XINFO GROUPS and each group's XPENDING summary. */
const rawFigures = (key: string) =>
  Effect.flatMap(RedisClient.RedisClient, (redis) =>
    redis.use("raw", async (client) => {
      const length = await client.xlen(key)
      const groups = (await client.xinfo("GROUPS", key)) as Array<Array<unknown>>
      const byName = new Map<string, Map<string, unknown>>()
      for (const row of groups) {
        const fields = new Map<string, unknown>()
        for (let i = 0; i + 1 < row.length; i += 2) fields.set(String(row[i]), row[i + 1])
        const name = String(fields.get("name"))
        fields.set("xpending", await client.xpending(key, name))
        byName.set(name, fields)
      }
      return { length, groups: byName }
    })
  )

/** Polls `f` until `until` holds (at most 10 s). */
const eventually = <A, E, R>(f: Effect.Effect<A, E, R>, until: (a: A) => boolean) =>
  f.pipe(Effect.repeat({ schedule: Schedule.spaced("50 millis"), until }), Effect.timeout("10 seconds"))

forEachTarget("Inspector", (it) => {
  it.effect("a topic's figures match XINFO and XPENDING: length, groups, consumers, pending, lag, oldest", () =>
    Effect.gen(function* () {
      const keyPrefix = RedisServer.uniquePrefix("insp")
      const publisher = yield* Publisher.make({ keyPrefix })
      const subscriber = yield* Subscriber.make({ keyPrefix })
      yield* publisher.publish("orders", ...Array.from({ length: 7 }, (_, i) => Message.make(`o${i}`)))
      // group g: consumer c1 takes 3 and acknowledges 1 (2 pending); group idle: created, reads nothing
      const taken = yield* subscriber
        .subscribe("orders", { group: "g", consumer: "c1", batchCount: 3, maxInFlight: 3, ...fast })
        .pipe(Stream.take(3), Stream.runCollect)
      yield* (taken[0] as Subscriber.Received).ack
      yield* subscriber
        .subscribe("orders", { group: "idle", start: "$", ...fast })
        .pipe(Stream.interruptWhen(Effect.sleep("200 millis")), Stream.runDrain)
      yield* publisher.publish("other", Message.make("x"))

      yield* withInspector({ messaging: { keyPrefix }, authorize: Inspector.allowEveryone }, (baseUrl) =>
        Effect.gen(function* () {
          const raw = yield* rawFigures(`${keyPrefix}{orders}`)
          const { status, body: topic } = yield* getJson<Inspector.InspectedTopic>(`${baseUrl}/api/topic?topic=orders`)
          assert.strictEqual(status, 200)
          assert.strictEqual(topic.length, raw.length)
          assert.strictEqual(topic.length, 7)
          assert.isTrue(topic.exists)
          assert.strictEqual(topic.deadLetters, 0)
          assert.deepStrictEqual(topic.groups.map((g) => g.name).sort(), [...raw.groups.keys()].sort())
          const g = topic.groups.find((group) => group.name === "g") as Inspector.InspectedGroup
          const rawG = raw.groups.get("g") as Map<string, unknown>
          const [pendingCount, minId, , perConsumer] = rawG.get("xpending") as [
            number,
            string,
            string,
            Array<[string, string]>
          ]
          assert.strictEqual(g.pending, Number(rawG.get("pending")))
          assert.strictEqual(g.pending, pendingCount)
          assert.strictEqual(g.pending, 2)
          assert.strictEqual(g.lag, rawG.get("lag") === null ? null : Number(rawG.get("lag")))
          assert.strictEqual(g.lastDeliveredId, String(rawG.get("last-delivered-id")))
          assert.deepStrictEqual(
            g.consumers.map((c) => [c.name, c.pending]),
            perConsumer.map(([name, count]) => [name, Number(count)])
          )
          assert.strictEqual(g.oldestPending?.id, minId)
          assert.strictEqual(g.oldestPending?.id, taken[1]?.id)
          assert.strictEqual(g.oldestPending?.consumer, "c1")
          assert.strictEqual(g.oldestPending?.deliveries, 1)
          assert.isAtLeast(g.oldestPending?.ageMs ?? -1, g.oldestPending?.idleMs ?? 0)
          // its lag in time: the age of the first entry after its last delivered one (the 4th published)
          const redis = yield* RedisClient.RedisClient
          const [[firstUnread]] = (yield* redis.use("xrange", (client) =>
            client.xrange(`${keyPrefix}{orders}`, `(${g.lastDeliveredId}`, "+", "COUNT", 1)
          )) as [[string, Array<string>]]
          const unreadAge = Date.now() - Number(firstUnread.split("-")[0])
          assert.isAtLeast(g.oldestUnreadAgeMs ?? -1, unreadAge - 1000)
          assert.isAtMost(g.oldestUnreadAgeMs ?? Infinity, unreadAge)
          assert.deepStrictEqual(g.retrying, { count: 0, nextDueAt: null })
          const idle = topic.groups.find((group) => group.name === "idle") as Inspector.InspectedGroup
          assert.isNull(idle.oldestUnreadAgeMs)
          assert.strictEqual(idle.pending, 0)
          assert.strictEqual(idle.lag, 0)
          assert.isNull(idle.oldestPending)
          // the list finds both topics of the prefix, each once, in pages of one
          const listed = yield* allPages<Inspector.InspectedTopic>(`${baseUrl}/api/topics?limit=1`, "topics")
          assert.deepStrictEqual(listed.map((t) => t.topic).sort(), ["orders", "other"])
          assert.strictEqual(listed.find((t) => t.topic === "other")?.length, 1)
          const missing = yield* getJson(`${baseUrl}/api/topic?topic=nothing`)
          assert.strictEqual(missing.status, 404)
        })
      )
    })
  )

  it.effect(
    "a message that fails maxDeliveries times is listed with reason, origin and deliveries; replay moves it once",
    () =>
      Effect.gen(function* () {
        const keyPrefix = RedisServer.uniquePrefix("insp")
        const publisher = yield* Publisher.make({ keyPrefix })
        const subscriber = yield* Subscriber.make({ keyPrefix })
        const [poisonId] = yield* publisher.publish("t", Message.make("poison", { metadata: { kind: "bad" } }))
        yield* publisher.publish("t", Message.make("fine"), Message.make("poison"))
        const consumer = yield* Effect.forkChild(
          subscriber.consume(
            "t",
            (received) =>
              Message.text(received.message) === "poison" ? Effect.fail(new Error("cannot digest")) : Effect.void,
            { group: "g", maxDeliveries: 3, ...fast }
          )
        )
        yield* withInspector(
          { messaging: { keyPrefix }, actions: true, authorize: Inspector.allowEveryone },
          (baseUrl) =>
            Effect.gen(function* () {
              type Page = { total: number; deadLetters: Array<Inspector.InspectedDeadLetter>; cursor: string | null }
              const listed = yield* eventually(
                getJson<Page>(`${baseUrl}/api/dead-letters?topic=t`),
                (page) => page.body.total === 2
              )
              yield* Fiber.interrupt(consumer)
              const letter = listed.body.deadLetters.find(
                (d) => d.origin.id === poisonId
              ) as Inspector.InspectedDeadLetter
              assert.strictEqual(letter.reason, "Error: cannot digest")
              assert.strictEqual(letter.origin.topic, "t")
              assert.strictEqual(letter.deliveries, 3)
              assert.strictEqual(letter.group, "g")
              assert.strictEqual(letter.payload?.preview, "poison")
              // the metadata as published (with the publisher's traceparent)
              assert.strictEqual(letter.metadata?.kind, "bad")
              // the same as the stream holds
              const raw = yield* entriesOf(`${keyPrefix}{t}:dead`)
              assert.deepStrictEqual(
                raw.map((entry) => [entry.id, entry.dead_reason, entry.dead_id, entry.dead_deliveries]),
                listed.body.deadLetters.map((d) => [d.id, d.reason, d.origin.id, String(d.deliveries)])
              )
              const topic = yield* getJson<Inspector.InspectedTopic>(`${baseUrl}/api/topic?topic=t`)
              assert.strictEqual(topic.body.deadLetters, 2)
              // pages of one
              const paged = yield* allPages<Inspector.InspectedDeadLetter>(
                `${baseUrl}/api/dead-letters?topic=t&limit=1`,
                "deadLetters"
              )
              assert.deepStrictEqual(
                paged.map((d) => d.id),
                raw.map((entry) => entry.id)
              )

              // replay: back on its topic once (same uuid, payload, metadata), gone from the dead letters
              const before = yield* entriesOf(`${keyPrefix}{t}`)
              const replayed = yield* postJson<{
                count: number
                moved: Array<{ deadLetterId: string; topicId: string }>
              }>(`${baseUrl}/api/dead-letters/replay`, { topic: "t", ids: [letter.id] })
              assert.strictEqual(replayed.status, 200)
              assert.strictEqual(replayed.body.count, 1)
              const again = yield* postJson<{ count: number }>(`${baseUrl}/api/dead-letters/replay`, {
                topic: "t",
                ids: [letter.id]
              })
              assert.strictEqual(again.body.count, 0)
              const after = yield* entriesOf(`${keyPrefix}{t}`)
              assert.strictEqual(after.length, before.length + 1)
              const back = after.at(-1) as Record<string, string>
              assert.strictEqual(back.id, replayed.body.moved[0]?.topicId)
              assert.strictEqual(back.uuid, letter.uuid)
              assert.strictEqual(back.payload, "poison")
              assert.strictEqual(back.metadata, before.find((entry) => entry.id === poisonId)?.metadata)
              assert.isFalse(Object.keys(back).some((field) => field.startsWith("dead_")))
              const left = yield* entriesOf(`${keyPrefix}{t}:dead`)
              assert.deepStrictEqual(
                left.map((entry) => entry.id),
                raw.filter((entry) => entry.id !== letter.id).map((entry) => entry.id)
              )
              // a subscriber gets the replayed message
              const redelivered = yield* subscriber.subscribe("t", { group: "after-replay", start: "0", ...fast }).pipe(
                Stream.filter((received) => received.id === back.id),
                Stream.take(1),
                Stream.runCollect
              )
              assert.strictEqual(Message.text((redelivered[0] as Subscriber.Received).message), "poison")

              // delete all: the dead letters are empty, the topic is unchanged
              const deleted = yield* postJson<{ count: number; more: boolean }>(`${baseUrl}/api/dead-letters/delete`, {
                topic: "t",
                all: true
              })
              assert.deepStrictEqual([deleted.status, deleted.body.count, deleted.body.more], [200, 1, false])
              assert.deepStrictEqual(yield* entriesOf(`${keyPrefix}{t}:dead`), [])
              assert.strictEqual((yield* entriesOf(`${keyPrefix}{t}`)).length, after.length)
            })
        )
      })
  )

  it.effect(
    "replay all moves every dead letter up to the newest, in batches, each once; dead letters of dead letters too",
    () =>
      Effect.gen(function* () {
        const keyPrefix = RedisServer.uniquePrefix("insp")
        const deadKey = `${keyPrefix}{bulk}:dead`
        /** `n` dead letters as the dead-letter move writes them. */
        const seed = (key: string, n: number) =>
          Effect.flatMap(RedisClient.RedisClient, (redis) =>
            redis.use("seed", async (client) => {
              const pipeline = client.pipeline()
              for (let i = 0; i < n; i++) {
                pipeline.xadd(key, "*", "uuid", `u${i}`, "payload", `p${i}`, "metadata", "{}", "dead_reason", "r")
              }
              await pipeline.exec()
            })
          )
        // more than one batch of 100
        yield* seed(deadKey, 250)
        yield* withInspector(
          { messaging: { keyPrefix }, actions: true, authorize: Inspector.allowEveryone },
          (baseUrl) =>
            Effect.gen(function* () {
              const listed = yield* allPages<Inspector.InspectedTopic>(`${baseUrl}/api/topics`, "topics")
              assert.deepStrictEqual(
                listed.map((t) => [t.topic, t.exists, t.deadLetters]),
                [["bulk", false, 250]]
              )
              const replayed = yield* postJson<{ count: number; more: boolean }>(`${baseUrl}/api/dead-letters/replay`, {
                topic: "bulk",
                all: true
              })
              assert.deepStrictEqual([replayed.body.count, replayed.body.more], [250, false])
              const topic = yield* entriesOf(`${keyPrefix}{bulk}`)
              assert.deepStrictEqual(
                topic.map((entry) => entry.uuid),
                Array.from({ length: 250 }, (_, i) => `u${i}`)
              )
              assert.deepStrictEqual(yield* entriesOf(deadKey), [])

              // the dead letters of a dead-letter topic (`bulk:dead`), in the slot of `bulk` as well
              const deadOfDead = `${keyPrefix}{bulk}:dead:dead`
              yield* seed(deadOfDead, 3)
              const topics = yield* allPages<Inspector.InspectedTopic>(`${baseUrl}/api/topics`, "topics")
              assert.deepStrictEqual(
                topics.map((t) => [t.topic, t.deadLetters]),
                [
                  ["bulk", 0],
                  ["bulk:dead", 3]
                ]
              )
              const [first] = yield* entriesOf(deadOfDead)
              const one = yield* postJson<{ count: number }>(`${baseUrl}/api/dead-letters/replay`, {
                topic: "bulk:dead",
                ids: [first?.id]
              })
              const rest = yield* postJson<{ count: number }>(`${baseUrl}/api/dead-letters/replay`, {
                topic: "bulk:dead",
                all: true
              })
              assert.deepStrictEqual([one.body.count, rest.body.count], [1, 2])
              assert.deepStrictEqual(
                (yield* entriesOf(deadKey)).map((entry) => entry.uuid),
                ["u0", "u1", "u2"]
              )
              assert.deepStrictEqual(yield* entriesOf(deadOfDead), [])

              // a heavy dead letter is listed cut short: its size and a preview
              yield* Effect.flatMap(RedisClient.RedisClient, (redis) =>
                redis.use("seed", (client) =>
                  client.xadd(
                    `${keyPrefix}{heavy}:dead`,
                    "*",
                    "uuid",
                    "h",
                    "payload",
                    "x".repeat(10_000),
                    "dead_reason",
                    "r"
                  )
                )
              )
              const heavy = yield* getJson<{ deadLetters: Array<Inspector.InspectedDeadLetter> }>(
                `${baseUrl}/api/dead-letters?topic=heavy`
              )
              assert.deepStrictEqual(heavy.body.deadLetters[0]?.payload, {
                bytes: 10_000,
                preview: "x".repeat(256),
                truncated: true
              })
            })
        )
      })
  )

  it.effect("cancel ends a resumable run: through the service in context, and with the finish script without it", () =>
    Effect.gen(function* () {
      const streamOptions = testOptions("insp-rs")
      const keyPrefix = streamOptions.keyPrefix as string
      const streams = yield* ResumableStream.make(streamOptions)
      const inspector = {
        resumable: { keyPrefix },
        actions: true,
        authorize: Inspector.allowEveryone
      } satisfies Inspector.Options

      const cancelOne = (throughService: boolean) =>
        Effect.gen(function* () {
          const started = yield* streams.start(Forever, { everyMs: 10 })
          const reader = yield* Effect.forkChild(Stream.runDrain(streams.resume(Forever, started.token)))
          const serve = <A, E, R>(f: (baseUrl: string) => Effect.Effect<A, E, R>) =>
            throughService
              ? withInspector(inspector, f).pipe(Effect.provideService(ResumableStream.ResumableStream, streams))
              : withInspector(inspector, f)
          yield* serve((baseUrl) =>
            Effect.gen(function* () {
              const running = yield* eventually(
                allPages<Inspector.InspectedRun>(`${baseUrl}/api/runs`, "runs"),
                (runs) => (runs.find((r) => r.runId === started.runId)?.chunks ?? 0) > 2
              )
              const run = running.find((r) => r.runId === started.runId) as Inspector.InspectedRun
              assert.strictEqual(run.stream, "forever")
              assert.strictEqual(run.state, "running")
              assert.isAtMost(run.heartbeatAgeMs ?? Infinity, 1000)
              const cancelled = yield* postJson<{ status: string }>(`${baseUrl}/api/runs/cancel`, {
                stream: "forever",
                runId: started.runId,
                reason: "from the test"
              })
              assert.deepStrictEqual([cancelled.status, cancelled.body.status], [200, "cancelled"])
              const exit = yield* Fiber.await(reader).pipe(Effect.timeout("5 seconds"))
              assert.isTrue(Exit.isFailure(exit))
              const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
              assert.strictEqual(
                error?._tag === "Fail" ? (error.error as ResumableStream.ResumableStreamError).reason._tag : undefined,
                "Cancelled"
              )
              // the producer stops (at once with the service, at its next heartbeat without): chunks stop growing
              yield* Effect.sleep("400 millis")
              const first = yield* streams.status(started.token)
              const counted = yield* allPages<Inspector.InspectedRun>(`${baseUrl}/api/runs`, "runs")
              yield* Effect.sleep("300 millis")
              const later = yield* allPages<Inspector.InspectedRun>(`${baseUrl}/api/runs`, "runs")
              assert.strictEqual(first, "cancelled")
              const chunksOf = (runs: ReadonlyArray<Inspector.InspectedRun>) =>
                runs.find((r) => r.runId === started.runId)?.chunks
              assert.strictEqual(chunksOf(later), chunksOf(counted))
              assert.strictEqual(later.find((r) => r.runId === started.runId)?.state, "cancelled")
              // cancelling again says how it ended
              const again = yield* postJson<{ status: string }>(`${baseUrl}/api/runs/cancel`, {
                stream: "forever",
                runId: started.runId
              })
              assert.strictEqual(again.body.status, "cancelled")
              const unknown = yield* postJson(`${baseUrl}/api/runs/cancel`, { stream: "forever", runId: "nope" })
              assert.strictEqual(unknown.status, 404)
            })
          )
        })

      // the service in context: the routes cancel through it
      yield* cancelOne(true)
      // no service: the finish script
      yield* cancelOne(false)
    })
  )

  it.effect("actions are refused with 403 unless actions: true and authorize accepts; reads can be refused too", () =>
    Effect.gen(function* () {
      const keyPrefix = RedisServer.uniquePrefix("insp")
      const replay = (baseUrl: string) =>
        postJson<{ reason: string }>(`${baseUrl}/api/dead-letters/replay`, { topic: "t", all: true })
      const cancel = (baseUrl: string) =>
        postJson<{ reason: string }>(`${baseUrl}/api/runs/cancel`, { stream: "s", runId: "r" })
      yield* withInspector({ messaging: { keyPrefix }, authorize: Inspector.allowEveryone }, (baseUrl) =>
        Effect.gen(function* () {
          const refused = yield* replay(baseUrl)
          assert.deepStrictEqual([refused.status, refused.body.reason], [403, "Forbidden"])
          assert.strictEqual((yield* cancel(baseUrl)).status, 403)
          assert.strictEqual((yield* getJson(`${baseUrl}/api/topics`)).status, 200)
        })
      )
      const authorize: Inspector.Authorize = (request, access) =>
        Effect.succeed(access === "read" || request.headers["x-admin"] === "yes")
      yield* withInspector({ messaging: { keyPrefix }, actions: true, authorize }, (baseUrl) =>
        Effect.gen(function* () {
          const refused = yield* replay(baseUrl)
          assert.deepStrictEqual([refused.status, refused.body.reason], [403, "Forbidden"])
          assert.strictEqual((yield* cancel(baseUrl)).status, 403)
          const admitted = yield* Effect.promise(() =>
            fetch(`${baseUrl}/api/dead-letters/replay`, {
              method: "POST",
              headers: { "content-type": "application/json", "x-admin": "yes" },
              body: JSON.stringify({ topic: "t", all: true })
            })
          )
          assert.strictEqual(admitted.status, 200)
          // not JSON: refused before anything is done (a cross-site form cannot send JSON)
          const form = yield* Effect.promise(() =>
            fetch(`${baseUrl}/api/dead-letters/replay`, {
              method: "POST",
              headers: { "content-type": "application/x-www-form-urlencoded", "x-admin": "yes" },
              body: "topic=t&all=true"
            })
          )
          assert.strictEqual(form.status, 415)
        })
      )
      yield* withInspector({ messaging: { keyPrefix }, authorize: () => Effect.succeed(false) }, (baseUrl) =>
        Effect.gen(function* () {
          assert.strictEqual((yield* getJson(`${baseUrl}/api/topics`)).status, 403)
          assert.strictEqual((yield* Effect.promise(() => fetch(baseUrl))).status, 403)
        })
      )
      // no access decision (a cast, or JavaScript): the routes are not built
      const built = yield* Effect.exit(
        Effect.sync(() => Inspector.routes({ actions: true } as unknown as Inspector.Options))
      )
      assert.isTrue(Exit.isFailure(built))
      assert.include(String(Exit.isFailure(built) ? Cause.squash(built.cause) : ""), "Inspector.allowEveryone")
    })
  )

  it.effect(
    "messages' data needs data access; withToken lets in only the token's bearer (header, or the page's cookie)",
    () =>
      Effect.gen(function* () {
        const keyPrefix = RedisServer.uniquePrefix("insp")
        const redis = yield* RedisClient.RedisClient
        const secretPayload = "card 4111 1111 1111 1111, password hunter2"
        yield* redis.use("xadd", (c) =>
          c.xadd(
            `${keyPrefix}{orders}:dead`,
            "*",
            "uuid",
            "u1",
            "payload",
            secretPayload,
            "metadata",
            '{"authorization":"Bearer x"}',
            "dead_reason",
            "Error: no",
            "dead_topic",
            "orders",
            "dead_id",
            "1-0"
          )
        )
        type Page = { deadLetters: Array<Inspector.InspectedDeadLetter>; dataHidden?: boolean }
        const readsOnly: Inspector.Authorize = (_request, access) => Effect.succeed(access === "read")
        yield* withInspector({ messaging: { keyPrefix }, authorize: readsOnly }, (baseUrl) =>
          Effect.gen(function* () {
            const page = yield* getJson<Page>(`${baseUrl}/api/dead-letters?topic=orders`)
            assert.strictEqual(page.status, 200)
            const [letter] = page.body.deadLetters
            assert.deepStrictEqual(
              [letter?.reason, letter?.payload?.preview, letter?.metadata],
              ["Error: no", "", null]
            )
            assert.strictEqual(letter?.payload?.bytes, secretPayload.length)
            assert.isTrue(page.body.dataHidden)
            assert.notInclude(JSON.stringify(page.body), "4111")
          })
        )
        const token = "a-long-random-access-token"
        yield* withInspector(
          { messaging: { keyPrefix }, authorize: Inspector.withToken(Redacted.make(token)) },
          (baseUrl) =>
            Effect.gen(function* () {
              const list = `${baseUrl}/api/dead-letters?topic=orders`
              assert.strictEqual((yield* getJson(list)).status, 403)
              assert.strictEqual((yield* Effect.promise(() => fetch(baseUrl))).status, 403)
              const wrong = yield* Effect.promise(() => fetch(list, { headers: { authorization: "Bearer nope" } }))
              assert.strictEqual(wrong.status, 403)
              const bearer = yield* Effect.promise(async () => {
                const response = await fetch(list, { headers: { authorization: `Bearer ${token}` } })
                return (await response.json()) as Page
              })
              assert.strictEqual(bearer.deadLetters[0]?.payload?.preview, secretPayload)
              // the page opened with ?token=: a cookie of the inspector's path, and a redirect out of the address bar
              const opened = yield* Effect.promise(() => fetch(`${baseUrl}?token=${token}`, { redirect: "manual" }))
              assert.strictEqual(opened.status, 303)
              const cookie = opened.headers.get("set-cookie") ?? ""
              assert.match(cookie, /^inspector-token=a-long-random-access-token;/)
              assert.match(cookie, /HttpOnly/i)
              assert.match(cookie, /SameSite=Strict/i)
              const withCookie = yield* Effect.promise(() =>
                fetch(list, { headers: { cookie: cookie.split(";")[0] ?? "" } })
              )
              assert.strictEqual(withCookie.status, 200)
            })
        )
      })
  )

  it.effect("the page is HTML with no external URL; sinks, live state and subjects have their endpoints", () =>
    Effect.gen(function* () {
      const keyPrefix = RedisServer.uniquePrefix("insp")
      const sink = yield* EventSink.make({ streamKey: `${keyPrefix}events`, flushInterval: "10 millis" })
      yield* sink.emitAll(Array.from({ length: 5 }, (_, i) => ({ event_type: "test", data: { i } })))
      yield* sink.flush
      const adapter = yield* StreamAdapter.make({ keyPrefix })
      const Tasks = StreamAdapter.define({ name: "tasks", item: Schema.Struct({ title: Schema.String }) })
      const tasks = adapter.stream(Tasks)
      yield* tasks.set("board", "a", { title: "a" })
      yield* tasks.set("board", "b", { title: "b" })
      yield* tasks.set("other board", "c", { title: "c" })
      const storage = yield* SubjectStorage.make({ keyPrefix })
      yield* Effect.forEach(["s1", "s2", "s3"], (subject) => storage.set(subject, "n", 1))

      yield* withInspector(
        {
          path: "/ops/inspect",
          adapter: { keyPrefix },
          subjects: { keyPrefix },
          sinks: [sink],
          authorize: Inspector.allowEveryone
        },
        (baseUrl) =>
          Effect.gen(function* () {
            for (const url of [baseUrl, `${baseUrl}/`]) {
              const response = yield* Effect.promise(() => fetch(url))
              const html = yield* Effect.promise(() => response.text())
              assert.strictEqual(response.status, 200)
              assert.match(response.headers.get("content-type") ?? "", /^text\/html/)
              assert.match(html, /^<!doctype html>/)
              assert.include(html, '"/ops/inspect"')
              assert.notMatch(html, /https?:\/\//)
              // one script, of this origin: the page's own (its CSP allows no inline script)
              assert.deepStrictEqual(
                Array.from(html.matchAll(/\s(src|href)\s*=\s*"([^"]*)"/gi), (match) => match[2]),
                ["/ops/inspect/page.js"]
              )
              assert.include(response.headers.get("content-security-policy") ?? "", "script-src 'self';")
              const script = yield* Effect.promise(() => fetch(`${baseUrl}/page.js`))
              assert.match(script.headers.get("content-type") ?? "", /^text\/javascript/)
            }
            const { body: sinks } = yield* getJson<{ sinks: Array<Inspector.InspectedSink> }>(`${baseUrl}/api/sinks`)
            assert.deepStrictEqual(
              sinks.sinks.map((s) => [s.streamKey, s.written, s.buffered, s.dropped, s.breaker, s.stream?.length]),
              [[`${keyPrefix}events`, 5, 0, { overflow: 0, rejected: 0, shutdown: 0 }, "Closed", 5]]
            )
            const streams = yield* allPages<Inspector.InspectedAdapterStream>(`${baseUrl}/api/adapter`, "streams")
            assert.deepStrictEqual(streams, [
              {
                stream: "tasks",
                groupCount: 2,
                groups: [
                  { groupId: "board", items: 2, version: 2 },
                  { groupId: "other board", items: 1, version: 1 }
                ]
              }
            ])
            let subjects = 0
            let cursor: string | null = ""
            while (cursor !== null) {
              const page: { body: { count: number; cursor: string | null } } = yield* getJson<{
                count: number
                cursor: string | null
              }>(`${baseUrl}/api/subjects${cursor === "" ? "" : `?cursor=${cursor}`}`)
              subjects += page.body.count
              cursor = page.body.cursor
            }
            assert.strictEqual(subjects, 3)
            const config = yield* getJson<{ actions: boolean; messaging: unknown }>(`${baseUrl}/api/config`)
            assert.deepStrictEqual([config.body.actions, config.body.messaging], [false, { keyPrefix: "" }])
            assert.strictEqual((yield* getJson(`${baseUrl}/api/topics?limit=0`)).status, 400)
            assert.strictEqual((yield* getJson(`${baseUrl}/api/topics?cursor=x`)).status, 400)
          })
      )
    })
  )
})
