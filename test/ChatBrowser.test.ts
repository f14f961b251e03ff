/// <reference lib="dom" />
/**
 * The chat example in a real browser (Chromium, headless): the AI SDK's `useChat` with `resume: true` against the
 * resumable chat routes, through reloads, a stop and a refused question. One app (on a redis-server of the testing
 * module) and one browser for the file; a page per test.
 */
import { access, copyFile } from "node:fs/promises"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import type { BrowserContext, Page } from "playwright-core"
import { answerFor } from "../examples/chat/answer.js"
import * as ChatApp from "../examples/chat/server.js"
import * as RedisServer from "../src/testing/RedisServer.js"
import { browser, screenshotPath } from "./support/browser.js"
import { stopRequest } from "./support/chat.js"

class Fixture extends Context.Service<Fixture, { readonly url: string; readonly browser: BrowserContext }>()(
  "test/ChatBrowser/Fixture"
) {}

/** The chat app on a free port (a word every 40 ms: an answer takes about 2 s) and a browser. */
const FixtureLive = Layer.effect(
  Fixture,
  Effect.gen(function* () {
    const redis = yield* RedisServer.RedisServer
    const app = yield* Effect.acquireRelease(
      Effect.promise(() => ChatApp.start({ port: 0, redisUrl: redis.url, wordDelayMs: 40 })),
      (app) => Effect.promise(app.close)
    )
    return { url: app.url, browser: yield* browser }
  })
).pipe(Layer.provide(RedisServer.layer()))

/** The text of the last answer on the page ("" when there is none). */
const answerText = (page: Page) =>
  page.evaluate(() => Array.from(document.querySelectorAll("li.assistant .text")).at(-1)?.textContent ?? "")

const statusText = (page: Page) => page.evaluate(() => document.querySelector("#status")?.textContent ?? "")

const waitFor = (page: Page, check: () => boolean) =>
  Effect.promise(() => page.waitForFunction(check, undefined, { timeout: 15_000, polling: 20 }))

/** The `cookie` header of the page's browser for `url`: its identity, so that a request outside it is the same user's. */
const cookieOf = (page: Page, url: string) =>
  Effect.map(
    Effect.promise(() => page.context().cookies(url)),
    (cookies) => cookies.map(({ name, value }) => `${name}=${value}`).join("; ")
  )

/** Waits until the page shows `count` messages. */
const waitForBubbles = (page: Page, count: number) =>
  Effect.promise(() =>
    page.waitForFunction((n) => document.querySelectorAll("li.bubble").length === n, count, {
      timeout: 15_000,
      polling: 20
    })
  )
const askEnabled = () => !(document.querySelector("#ask") as HTMLButtonElement).disabled

/**
 * The answer's text read every 20 ms until `stop`, through reloads (a read during a navigation is skipped): every
 * text seen, in order.
 */
const sampleAnswer = (page: Page) => {
  const seen: Array<string> = []
  let sampling = true
  const loop = (async () => {
    while (sampling) {
      const text = await answerText(page).catch(() => undefined)
      if (text !== undefined) seen.push(text)
      await sleep(20)
    }
  })()
  return {
    seen,
    stop: async () => {
      sampling = false
      await loop
    }
  }
}

/** A new page on the app (uncaught errors of the page collected), closed with the scope; a new chat. */
const openChat = Effect.gen(function* () {
  const { url, browser } = yield* Fixture
  const page = yield* Effect.acquireRelease(
    Effect.promise(async () => {
      const page = await browser.newPage()
      await page.setViewportSize({ width: 960, height: 540 })
      return page
    }),
    (page) => Effect.promise(() => page.close())
  )
  const pageErrors: Array<string> = []
  page.on("pageerror", (error) => pageErrors.push(error.message))
  yield* Effect.promise(() => page.goto(url))
  yield* waitFor(page, () => location.hash.length > 1 && document.querySelector("#ask") !== null)
  return { page, url, pageErrors }
})

/** Asks `question` and waits until the answer is a few words in. */
const askAndWait = (page: Page, question: string) =>
  Effect.gen(function* () {
    yield* Effect.promise(async () => {
      await page.fill("input", question)
      await page.click("#ask")
    })
    yield* waitFor(page, () => {
      const answer = Array.from(document.querySelectorAll("li.assistant .text")).at(-1)?.textContent ?? ""
      return answer.split(" ").length > 5
    })
  })

describe("the chat example in Chromium", () => {
  layer(FixtureLive, { timeout: "30 seconds", excludeTestServices: true })((it) => {
    it.effect(
      "reload mid-answer: the answer comes back exactly, every text on the way a prefix of it; reload after the end shows it",
      () =>
        Effect.gen(function* () {
          const { page, pageErrors } = yield* openChat
          const question = "Does my answer survive a reload?"
          const expected = answerFor(question)
          const sampler = sampleAnswer(page)
          yield* askAndWait(page, question)
          const before = yield* Effect.promise(() => answerText(page))
          assert.isTrue(before.length < expected.length, "the answer ended before the reload")
          yield* Effect.promise(() => page.reload())
          // the reloaded page has the question (localStorage) and gets the answer back from the server's replay
          yield* waitFor(page, () => document.querySelector("#status")?.textContent?.startsWith("Answering") ?? false)
          yield* waitFor(page, askEnabled)
          yield* Effect.promise(sampler.stop)
          const seen = sampler.seen
          assert.strictEqual(seen.at(-1), expected)
          assert.isAbove(seen.length, 20)
          for (const text of seen) assert.isTrue(expected.startsWith(text), `not a prefix of the answer: ${text}`)
          assert.strictEqual(
            yield* Effect.promise(() => page.locator("li.bubble").count()),
            2,
            "one question, one answer"
          )

          // after the end: the conversation is still there, nothing streams
          yield* Effect.promise(() => page.reload())
          yield* waitForBubbles(page, 2)
          yield* Effect.sleep("300 millis") // a resume would have started by now
          assert.strictEqual(yield* Effect.promise(() => answerText(page)), expected)
          assert.strictEqual(yield* Effect.promise(() => statusText(page)), "")
          assert.isFalse(yield* Effect.promise(() => page.isDisabled("#ask")))
          assert.isTrue(yield* Effect.promise(() => page.isDisabled("#stop")))

          const path = screenshotPath("chat")
          yield* Effect.promise(() => page.screenshot({ path }))
          console.log(`chat screenshot: ${path}`)
          // the README's image: written when missing, rewritten with UPDATE_SCREENSHOTS=1
          const docs = join(import.meta.dirname, "..", "docs", "chat.png")
          const missing = yield* Effect.promise(() =>
            access(docs).then(
              () => false,
              () => true
            )
          )
          if (missing || process.env.UPDATE_SCREENSHOTS === "1") {
            yield* Effect.promise(() => copyFile(path, docs))
            console.log(`chat screenshot written to ${docs}`)
          }

          // New chat: an empty page on a new id; going back shows the conversation again
          const chatUrl = page.url()
          yield* Effect.promise(() => page.click("text=New chat"))
          yield* waitForBubbles(page, 0)
          assert.notStrictEqual(page.url(), chatUrl)
          yield* Effect.promise(() => page.goBack())
          yield* waitForBubbles(page, 2)
          assert.strictEqual(page.url(), chatUrl)
          assert.strictEqual(yield* Effect.promise(() => answerText(page)), expected)
          assert.deepStrictEqual(pageErrors, [])
        }).pipe(Effect.scoped),
      { timeout: 30_000 }
    )

    it.effect(
      "Stop mid-answer: it reads as stopped, not as an error; the buttons come back; a reload shows the partial answer, stopped",
      () =>
        Effect.gen(function* () {
          const { page, url, pageErrors } = yield* openChat
          const expected = answerFor("Stop me, please")
          yield* askAndWait(page, "Stop me, please")
          assert.isTrue(yield* Effect.promise(() => page.isDisabled("#ask")))
          assert.isFalse(yield* Effect.promise(() => page.isDisabled("#stop")))
          yield* Effect.promise(() => page.click("#stop"))
          yield* waitFor(page, () => document.querySelector("#status")?.textContent === "Stopped.")
          yield* waitFor(page, askEnabled)
          assert.isTrue(yield* Effect.promise(() => page.isDisabled("#stop")))
          assert.strictEqual(yield* Effect.promise(() => page.locator(".error").count()), 0)
          const partial = yield* Effect.promise(() => answerText(page))
          assert.isTrue(expected.startsWith(partial) && partial.length < expected.length, `partial: ${partial}`)
          assert.strictEqual(yield* Effect.promise(() => page.textContent("li.assistant .tag")), "stopped")
          // stopped on the server too: no answer runs for the chat, and the text does not grow
          const chatId = decodeURIComponent(new URL(page.url()).hash.slice(1))
          const cookie = yield* cookieOf(page, url)
          const resume = yield* Effect.promise(() =>
            fetch(`${url}/api/chat/${encodeURIComponent(chatId)}/stream`, { headers: { cookie } })
          )
          assert.strictEqual(resume.status, 204)
          yield* Effect.sleep("300 millis")
          assert.strictEqual(yield* Effect.promise(() => answerText(page)), partial)

          yield* Effect.promise(() => page.reload())
          yield* waitForBubbles(page, 2)
          yield* Effect.sleep("300 millis") // a resume would have started by now
          assert.strictEqual(yield* Effect.promise(() => answerText(page)), partial)
          assert.strictEqual(yield* Effect.promise(() => statusText(page)), "Stopped.")
          assert.strictEqual(yield* Effect.promise(() => page.textContent("li.assistant .tag")), "stopped")
          assert.isFalse(yield* Effect.promise(() => page.isDisabled("#ask")))
          assert.isTrue(yield* Effect.promise(() => page.isDisabled("#stop")))
          assert.deepStrictEqual(pageErrors, [])
        }).pipe(Effect.scoped),
      { timeout: 30_000 }
    )

    it.effect(
      "a page closed mid-answer and opened after its end says the answer was not kept (the server keeps no conversation)",
      () =>
        Effect.gen(function* () {
          const { page, url, pageErrors } = yield* openChat
          yield* askAndWait(page, "Will you wait for me?")
          const chatUrl = page.url()
          const chatId = decodeURIComponent(new URL(chatUrl).hash.slice(1))
          const cookie = yield* cookieOf(page, url)
          yield* Effect.promise(() => page.goto("about:blank"))
          // until the answer ended on the server
          yield* Effect.promise(async () => {
            for (;;) {
              const resume = await fetch(`${url}/api/chat/${encodeURIComponent(chatId)}/stream`, {
                headers: { cookie }
              })
              await resume.body?.cancel()
              if (resume.status === 204) return
              await sleep(100)
            }
          })
          yield* Effect.promise(() => page.goto(chatUrl))
          yield* waitFor(page, () => document.querySelector("#status")?.textContent?.includes("ended while") ?? false)
          assert.strictEqual(yield* Effect.promise(() => page.locator("li.bubble.user").count()), 1)
          assert.strictEqual(yield* Effect.promise(() => page.locator("li.bubble.assistant").count()), 0)
          assert.isFalse(yield* Effect.promise(() => page.isDisabled("#ask")))
          assert.deepStrictEqual(pageErrors, [])
        }).pipe(Effect.scoped),
      { timeout: 30_000 }
    )

    it.effect(
      "a refused question is said in words: asking while the chat answers elsewhere (409) shows no JSON",
      () =>
        Effect.gen(function* () {
          const { page, url, pageErrors } = yield* openChat
          const chatId = decodeURIComponent(new URL(page.url()).hash.slice(1))
          // another tab of this browser (its identity cookie) starts an answer for this chat
          const cookie = yield* cookieOf(page, url)
          const other = yield* Effect.promise(() =>
            fetch(`${url}/api/chat`, {
              method: "POST",
              headers: { "content-type": "application/json", cookie },
              body: JSON.stringify({
                id: chatId,
                trigger: "submit-message",
                messages: [{ id: "elsewhere", role: "user", parts: [{ type: "text", text: "asked elsewhere" }] }]
              })
            })
          )
          assert.strictEqual(other.status, 200)
          yield* Effect.promise(() => other.body?.cancel() ?? Promise.resolve())
          yield* Effect.promise(() => page.click("#ask"))
          yield* Effect.promise(() => page.waitForSelector("#error", { timeout: 15_000 }))
          const error = (yield* Effect.promise(() => page.textContent("#error"))) ?? ""
          assert.include(error, "already answering")
          assert.notInclude(error, "{")
          yield* waitFor(page, askEnabled)
          assert.deepStrictEqual(pageErrors, [])
          // let the other answer end before the app closes
          yield* Effect.promise(() =>
            fetch(`${url}/api/chat/${encodeURIComponent(chatId)}/stop`, {
              ...stopRequest,
              headers: { ...stopRequest.headers, cookie }
            })
          )
        }).pipe(Effect.scoped),
      { timeout: 30_000 }
    )
  })
})
