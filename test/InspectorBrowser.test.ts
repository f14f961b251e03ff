/// <reference lib="dom" />
/**
 * The inspector in a real browser (Chromium, headless), served by `npm run demo -- --serve`: the page shows the
 * desk's topic, its dead letter and the answers' runs, and a click replays the dead letter.
 */
import { spawn } from "node:child_process"
import { copyFile } from "node:fs/promises"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { browser, screenshotPath } from "./support/browser.js"

const root = join(import.meta.dirname, "..")

/** The demo with its inspector kept up (REDIS_URL unset: its own redis-server); its inspector URL; stopped with the scope. */
const demo = Effect.acquireRelease(
  Effect.promise(
    () =>
      new Promise<{ readonly url: string; readonly stop: () => Promise<void> }>((resolve, reject) => {
        const env: NodeJS.ProcessEnv = { ...process.env }
        delete env.REDIS_URL
        const child = spawn(process.execPath, ["--import", "tsx", join(root, "examples", "demo.ts"), "--serve"], {
          cwd: root,
          env,
          stdio: ["ignore", "pipe", "inherit"]
        })
        let output = ""
        child.stdout.on("data", (data: Buffer) => {
          output += data.toString()
          const url = /^Inspector: (http:\S+)$/m.exec(output)?.[1]
          if (url !== undefined && output.includes("serving the inspector")) {
            resolve({
              url,
              stop: () =>
                new Promise((done) => {
                  child.once("exit", () => done())
                  child.kill("SIGTERM")
                })
            })
          }
        })
        child.once("exit", (code) => reject(new Error(`the demo exited (${code}) before serving:\n${output}`)))
      })
  ),
  (running) => Effect.promise(running.stop)
)

describe("the inspector in Chromium", () => {
  it.live(
    "served by the demo: shows the topic, its dead letter and the runs; a click replays the dead letter",
    () =>
      Effect.gen(function* () {
        const { url } = yield* demo
        const context = yield* browser
        const page = yield* Effect.promise(() => context.newPage())
        page.on("dialog", (dialog) => void dialog.accept())
        yield* Effect.promise(async () => {
          await page.goto(url)
          await page.waitForSelector("#topics tr.topic", { timeout: 15_000 })
          await page.waitForSelector("#runs td", { timeout: 15_000 })
        })
        const topicRow = yield* Effect.promise(() => page.textContent("#topics tr.topic"))
        assert.include(topicRow, "tickets")
        const runs = yield* Effect.promise(() => page.textContent("#runs"))
        assert.include(runs, "answer")
        assert.include(runs, "completed")
        // open the topic: its dead letter, with the refund's reason
        yield* Effect.promise(() => page.click("#topics tr.topic"))
        yield* Effect.promise(() => page.waitForSelector("text=Dead letters (1)", { timeout: 15_000 }))
        assert.include(
          yield* Effect.promise(() => page.textContent("#topics")),
          "the payment service refused the refund"
        )
        const before = yield* Effect.promise(() =>
          page.screenshot({ path: screenshotPath("inspector"), fullPage: true })
        )
        assert.isAbove(before.length, 0)
        console.log(`inspector screenshot: ${screenshotPath("inspector")}`)
        // the README's image: `UPDATE_SCREENSHOTS=1 npx vitest run test/InspectorBrowser.test.ts`
        if (process.env.UPDATE_SCREENSHOTS === "1") {
          yield* Effect.promise(() => copyFile(screenshotPath("inspector"), join(root, "docs", "inspector.png")))
        }
        // replay it: the dead letters are empty, the topic one entry longer
        yield* Effect.promise(() => page.click("#topics button:text-is('replay')"))
        yield* Effect.promise(() => page.waitForSelector("text=Dead letters (0)", { timeout: 15_000 }))
        const after = yield* Effect.promise(() => page.textContent("#topics tr.topic"))
        assert.notStrictEqual(after, topicRow)
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )
})
