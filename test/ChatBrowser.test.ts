/// <reference lib="dom" />
/**
 * The chat example in a real browser (Chromium, headless): the AI SDK's `useChat` with `resume: true` against the
 * resumable chat routes, through reloads and a stop.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import type { Page } from "playwright-core"
import { answerFor } from "../examples/chat/answer.js"
import * as ChatApp from "../examples/chat/server.js"
import * as RedisServer from "../src/testing/RedisServer.js"
import { browser, screenshotPath } from "./support/browser.js"

/** The chat app on a free port, on the suite's Redis; closed with the scope. */
const chatApp = Effect.flatMap(RedisServer.RedisServer, (redis) =>
  Effect.acquireRelease(
    Effect.promise(() => ChatApp.start({ port: 0, redisUrl: redis.url, wordDelayMs: 40 })),
    (app) => Effect.promise(app.close)
  )
)

const assistantText = (page: Page) =>
  page.evaluate(() => document.querySelector("li.assistant:last-of-type")?.textContent ?? "")

/** Samples the last answer's text every 20 ms until it is `expected` (or 15 s passed); every text seen on the way. */
const watchAnswer = (page: Page, expected: string) =>
  Effect.promise(async () => {
    const seen: Array<string> = []
    const deadline = Date.now() + 15_000
    for (;;) {
      const text = await assistantText(page)
      seen.push(text)
      if (text === expected || Date.now() > deadline) return seen
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })

const waitFor = (page: Page, check: () => boolean) =>
  Effect.promise(() => page.waitForFunction(check, undefined, { timeout: 15_000, polling: 20 }))

/**
 * Opens the app on a new page of a fresh browser, asks `question`, and waits until the answer is a few words in;
 * the page and the answer expected.
 */
const askAndWait = (question: string) =>
  Effect.gen(function* () {
    const app = yield* chatApp
    const page = yield* Effect.flatMap(browser, (context) => Effect.promise(() => context.newPage()))
    yield* Effect.promise(async () => {
      await page.goto(app.url)
      await page.fill("input", question)
      await page.click("#ask")
    })
    yield* waitFor(page, () => (document.querySelector("li.assistant")?.textContent ?? "").split(" ").length > 5)
    return { page, expected: answerFor(question) }
  })

const askEnabled = () => !(document.querySelector("#ask") as HTMLButtonElement).disabled

describe("the chat example in Chromium", () => {
  layer(RedisServer.layer(), { timeout: "30 seconds", excludeTestServices: true })((it) => {
    it.effect(
      "reload mid-answer: the answer comes back exactly, every text on the way a prefix of it; reload after the end shows it",
      () =>
        Effect.gen(function* () {
          const { page, expected } = yield* askAndWait("Does my answer survive a reload?")
          const before = yield* Effect.promise(() => assistantText(page))
          yield* Effect.promise(() => page.reload())
          const seen = yield* watchAnswer(page, expected)
          assert.strictEqual(seen.at(-1), expected)
          for (const text of [before, ...seen]) assert.isTrue(expected.startsWith(text), `not a prefix: ${text}`)
          // after the end: the conversation is still there, nothing streams
          yield* waitFor(page, askEnabled)
          yield* Effect.promise(() => page.reload())
          yield* waitFor(page, () => document.querySelectorAll("li.bubble").length === 2)
          assert.strictEqual(yield* Effect.promise(() => assistantText(page)), expected)
          assert.strictEqual(yield* Effect.promise(() => page.textContent("#status")), "")
          assert.isFalse(yield* Effect.promise(() => page.isDisabled("#ask")))
          const path = screenshotPath("chat")
          yield* Effect.promise(() => page.screenshot({ path }))
          console.log(`chat screenshot: ${path}`)
        }).pipe(Effect.scoped),
      { timeout: 60_000 }
    )

    it.effect(
      "Stop mid-answer: it reads as stopped, not as an error; Ask comes back; a reload shows the partial answer",
      () =>
        Effect.gen(function* () {
          const { page, expected } = yield* askAndWait("Stop me, please")
          assert.isTrue(yield* Effect.promise(() => page.isDisabled("#ask")))
          yield* Effect.promise(() => page.click("#stop"))
          yield* waitFor(page, () => document.querySelector("#status")?.textContent === "Stopped.")
          yield* waitFor(page, askEnabled)
          assert.isNull(yield* Effect.promise(() => page.$("#error")))
          const partial = yield* Effect.promise(() => assistantText(page))
          assert.isTrue(expected.startsWith(partial) && partial.length < expected.length)
          yield* Effect.promise(() => page.reload())
          yield* waitFor(page, () => document.querySelectorAll("li.bubble").length === 2)
          yield* Effect.sleep("300 millis") // a resume would have started by now
          assert.strictEqual(yield* Effect.promise(() => assistantText(page)), partial)
          assert.isFalse(yield* Effect.promise(() => page.isDisabled("#ask")))
        }).pipe(Effect.scoped),
      { timeout: 60_000 }
    )
  })
})
