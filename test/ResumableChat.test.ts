import { assert } from "@effect/vitest"
import { DefaultChatTransport, type UIMessageChunk } from "ai"
import { Effect, Fiber, Layer } from "effect"
import { HttpServer, type HttpServerRequest } from "effect/http"
import { answerFor } from "../examples/chat/answer.js"
import * as ResumableChat from "../src/ResumableChat.js"
import * as RedisServer from "../src/testing/RedisServer.js"
import { chatOptions, chatServer, readAnswer, stopRequest, userMessage } from "./support/chat.js"
import { firstLine, outputOf, spawnChild } from "./support/child.js"
import { anotherClient, forEachTarget, TestTopology } from "./support/targets.js"

const childScript = new URL("./support/chat-server-child.ts", import.meta.url).pathname

/**
 * Runs `f` with the URL of a chat server on the suite's client (`other`: on a second client, another instance), its
 * routes with `routes` over every request allowed.
 */
const withChatServer = <A, E, R>(
  keyPrefix: string,
  f: (baseUrl: string) => Effect.Effect<A, E, R>,
  other = false,
  routes: Parameters<typeof chatServer>[1] = {}
) =>
  Effect.flatMap(TestTopology, (topology) =>
    HttpServer.addressFormattedWith((url) => f(url)).pipe(
      Effect.provide(
        other
          ? chatServer(chatOptions(keyPrefix), routes).pipe(Layer.provide(anotherClient(topology)))
          : chatServer(chatOptions(keyPrefix), routes)
      )
    )
  )

const transportOf = (baseUrl: string) => new DefaultChatTransport({ api: `${baseUrl}/api/chat` })

/** Sends a question as `useChat` does; the answer's chunk stream. */
const ask = (baseUrl: string, chatId: string, prompt: string, abortSignal?: AbortSignal) =>
  Effect.promise(() =>
    transportOf(baseUrl).sendMessages({
      chatId,
      messages: [userMessage(prompt)],
      trigger: "submit-message",
      messageId: undefined,
      abortSignal
    })
  )

/** Reconnects as `useChat({ resume: true })` does after a reload: the answer's stream, or null (204). */
const reconnect = (baseUrl: string, chatId: string) =>
  Effect.promise(() => transportOf(baseUrl).reconnectToStream({ chatId }))

const read = (stream: ReadableStream<UIMessageChunk>) => Effect.promise(() => readAnswer(stream))

/** Reads `stream` until `count` chunks arrived, then cancels it (the client goes away). */
const readSome = (stream: ReadableStream<UIMessageChunk>, count: number) =>
  Effect.promise(async () => {
    const reader = stream.getReader()
    for (let i = 0; i < count; i++) await reader.read()
    await reader.cancel()
  })

const chatId = () => `chat-${Math.random().toString(36).slice(2)}`

/** The `x-user` header of a request: who sends it, in the owner tests (a stand-in for a session). */
const userOf = (http: HttpServerRequest.HttpServerRequest) =>
  http.headers["x-user"] === undefined
    ? Effect.fail(new ResumableChat.ChatRefused({ status: 401, message: "who are you?" }))
    : Effect.succeed(http.headers["x-user"])

forEachTarget("ResumableChat with the AI SDK's client", (it) => {
  it.effect(
    "a chat belongs to whoever started it: a stranger who knows its id can neither replay nor stop its answer, nor take it over",
    () =>
      withChatServer(
        RedisServer.uniquePrefix("chat"),
        (url) =>
          Effect.gen(function* () {
            const id = chatId()
            const as = (user: string | undefined, init: RequestInit = {}) => ({
              ...init,
              headers: {
                ...(init.headers as Record<string, string>),
                ...(user === undefined ? {} : { "x-user": user })
              }
            })
            const status = (path: string, init: RequestInit) =>
              Effect.promise(async () => {
                const response = await fetch(`${url}/api/chat/${path}`, init)
                if (response.status !== 200 || !path.endsWith("/stream"))
                  return { status: response.status, body: await response.text() }
                await response.body?.cancel()
                return { status: response.status, body: "" }
              })
            const question = JSON.stringify({ id, trigger: "submit-message", messages: [userMessage("mine alone")] })
            const post = { method: "POST", headers: { "content-type": "application/json" }, body: question }
            const started = yield* Effect.promise(() => fetch(`${url}/api/chat`, as("ann", post)))
            assert.strictEqual(started.status, 200)
            // the stranger: 403 on replay, stop and a new start of ann's chat; no session at all: 401
            for (const [path, init] of [
              [`${id}/stream`, {}],
              [`${id}/stop`, stopRequest],
              ["", post]
            ] as const) {
              const stranger = yield* status(path, as("bob", init))
              assert.strictEqual(stranger.status, 403, `bob: ${path}`)
              assert.deepStrictEqual(JSON.parse(stranger.body), {
                reason: "ChatRefused",
                message: "this chat belongs to someone else"
              })
              assert.strictEqual((yield* status(path, as(undefined, init))).status, 401, `nobody: ${path}`)
            }
            // ann's answer went on to its end, and ann may replay it while it runs
            const answer = yield* Effect.promise(() => started.text())
            assert.include(answer, '"type":"finish"')
            assert.notInclude(answer, '"type":"abort"')
            assert.strictEqual((yield* status(`${id}/stop`, as("ann", stopRequest))).status, 200)
          }),
        false,
        { authorize: (http) => Effect.asVoid(userOf(http)), owner: userOf }
      )
  )

  it.effect("a second POST for a running chat answers 409 without naming the run; a too long chat id 400", () =>
    withChatServer(RedisServer.uniquePrefix("chat"), (url) =>
      Effect.gen(function* () {
        const id = chatId()
        const first = yield* ask(url, id, "first")
        const second = yield* Effect.promise(async () => {
          const response = await fetch(`${url}/api/chat`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ id, trigger: "submit-message", messages: [userMessage("second")] })
          })
          return { status: response.status, body: (await response.json()) as { reason: string; message: string } }
        })
        assert.deepStrictEqual(second, {
          status: 409,
          body: { reason: "AlreadyRunning", message: "a run is already running for this key" }
        })
        yield* read(first)
        const long = yield* Effect.promise(() =>
          fetch(`${url}/api/chat`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ id: "x".repeat(300), trigger: "submit-message", messages: [userMessage("hi")] })
          })
        )
        assert.strictEqual(long.status, 400)
      })
    )
  )

  it.effect("a full answer: the AI SDK builds exactly the model's text, start to finish", () =>
    withChatServer(RedisServer.uniquePrefix("chat"), (url) =>
      Effect.gen(function* () {
        const answer = yield* read(yield* ask(url, chatId(), "hello"))
        assert.strictEqual(answer.text, answerFor("hello"))
        assert.strictEqual(answer.types[0], "start")
        assert.strictEqual(answer.types.at(-1), "finish")
        for (const text of answer.texts) assert.isTrue(answer.text.startsWith(text))
      })
    )
  )

  it.effect("the client aborts mid-answer; reconnectToStream replays the whole answer once; after the end, 204", () =>
    withChatServer(RedisServer.uniquePrefix("chat"), (url) =>
      Effect.gen(function* () {
        const id = chatId()
        const controller = new AbortController()
        const first = yield* ask(url, id, "resume me", controller.signal)
        yield* readSome(first, 5)
        controller.abort()
        const resumed = yield* reconnect(url, id)
        assert.isNotNull(resumed)
        const answer = yield* read(resumed as ReadableStream<UIMessageChunk>)
        assert.strictEqual(answer.text, answerFor("resume me"))
        assert.strictEqual(answer.types.filter((type) => type === "start").length, 1)
        assert.isNull(yield* reconnect(url, id))
      })
    )
  )

  it.effect("stop cancels the answer: the reader gets an abort part, a later resume gets 204", () =>
    withChatServer(RedisServer.uniquePrefix("chat"), (url) =>
      Effect.gen(function* () {
        const id = chatId()
        const stream = yield* ask(url, id, "stop me")
        const reading = yield* Effect.forkChild(read(stream))
        yield* Effect.sleep("100 millis")
        const stopped = yield* Effect.promise(() =>
          fetch(`${url}/api/chat/${id}/stop`, stopRequest).then((response) => response.json())
        )
        assert.deepStrictEqual(stopped, { status: "cancelled" })
        const answer = yield* Fiber.join(reading)
        assert.strictEqual(answer.types.at(-1), "abort")
        assert.isTrue(answerFor("stop me").startsWith(answer.text))
        assert.isBelow(answer.text.length, answerFor("stop me").length)
        assert.isNull(yield* reconnect(url, id))
      })
    )
  )

  it.effect("a second answer while one runs for the chat is refused with 409; another chat is not", () =>
    withChatServer(RedisServer.uniquePrefix("chat"), (url) =>
      Effect.gen(function* () {
        const id = chatId()
        const first = yield* ask(url, id, "one")
        const refused = yield* Effect.flip(
          Effect.tryPromise(() =>
            transportOf(url).sendMessages({
              chatId: id,
              messages: [userMessage("two")],
              trigger: "submit-message",
              messageId: undefined,
              abortSignal: undefined
            })
          )
        )
        assert.include(String(refused.cause), "AlreadyRunning")
        const other = yield* read(yield* ask(url, chatId(), "three"))
        assert.strictEqual(other.text, answerFor("three"))
        assert.strictEqual((yield* read(first)).text, answerFor("one"))
      })
    )
  )

  it.effect("another instance serves the resume of an answer this one produces (two layers, one Redis)", () => {
    const keyPrefix = RedisServer.uniquePrefix("chat")
    return withChatServer(keyPrefix, (producing) =>
      withChatServer(
        keyPrefix,
        (serving) =>
          Effect.gen(function* () {
            const id = chatId()
            yield* readSome(yield* ask(producing, id, "two instances"), 3)
            const resumed = yield* reconnect(serving, id)
            assert.isNotNull(resumed)
            assert.strictEqual(
              (yield* read(resumed as ReadableStream<UIMessageChunk>)).text,
              answerFor("two instances")
            )
          }),
        true
      )
    )
  })

  it.effect(
    "SIGTERM with a client reading: its response ends at once, the process exits within 2 s, the client completes from another instance",
    () =>
      Effect.gen(function* () {
        const topology = yield* TestTopology
        const keyPrefix = RedisServer.uniquePrefix("chat")
        const child = yield* spawnChild(childScript, topology, [keyPrefix, "3000"])
        const childUrl = yield* firstLine(child)
        yield* withChatServer(keyPrefix, (other) =>
          Effect.gen(function* () {
            const id = chatId()
            const stream = yield* ask(childUrl, id, "a deploy")
            const reading = yield* Effect.forkChild(read(stream).pipe(Effect.exit))
            yield* Effect.sleep("100 millis")
            const exited = outputOf(child)
            const signalled = Date.now()
            child.kill("SIGTERM")
            yield* Fiber.join(reading) // the response ended (or failed: the connection closed)
            const responseEndedAfter = Date.now() - signalled

            const resumed = yield* reconnect(other, id)
            assert.isNotNull(resumed)
            const answer = yield* read(resumed as ReadableStream<UIMessageChunk>)
            const exitedAfter = (yield* exited).exitedAt - signalled
            console.log(
              `SIGTERM: the response ended after ${responseEndedAfter} ms, the process exited after ${exitedAfter} ms`
            )
            assert.strictEqual(answer.text, answerFor("a deploy"))
            assert.isBelow(responseEndedAfter, 500)
            assert.isBelow(exitedAfter, 2_000)
          })
        )
      })
  )

  it.effect(
    "a producer killed mid-answer: a resume elsewhere gets what was written, then an error part, not a hang",
    () =>
      Effect.gen(function* () {
        const topology = yield* TestTopology
        const keyPrefix = RedisServer.uniquePrefix("chat")
        const child = yield* spawnChild(childScript, topology, [keyPrefix, "0"])
        const childUrl = yield* firstLine(child)
        yield* withChatServer(keyPrefix, (other) =>
          Effect.gen(function* () {
            const id = chatId()
            yield* readSome(yield* ask(childUrl, id, "a crash"), 5)
            child.kill("SIGKILL")
            const resumed = yield* reconnect(other, id)
            assert.isNotNull(resumed)
            const answer = yield* read(resumed as ReadableStream<UIMessageChunk>).pipe(Effect.timeout("10 seconds"))
            assert.strictEqual(answer.types.at(-1), "error")
            assert.isTrue(answerFor("a crash").startsWith(answer.text))
            assert.isAbove(answer.text.length, 0)
          })
        )
      })
  )
})
