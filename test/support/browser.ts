/**
 * A real browser for the page tests: Debian's Chromium (installed by `.ci/run`), headless, through playwright-core,
 * with a fresh profile; closed (and its profile removed) when the scope closes. A missing Chromium fails the test.
 */
import { existsSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { type BrowserContext, chromium } from "playwright-core"

const executablePath = "/usr/bin/chromium"

/** A browser context on a fresh profile, for the scope. */
export const browser = Effect.acquireRelease(
  Effect.promise(async () => {
    if (!existsSync(executablePath)) throw new Error(`${executablePath} is missing: apt-get install chromium`)
    const profile = await mkdtemp(join(tmpdir(), "chromium-profile-"))
    const context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync"
      ]
    })
    return { context, profile }
  }),
  ({ context, profile }) =>
    Effect.promise(async () => {
      await context.close()
      await rm(profile, { recursive: true, force: true })
    })
).pipe(Effect.map(({ context }): BrowserContext => context))

/** Where a test's screenshot goes: the OS temp dir, named after it. */
export const screenshotPath = (name: string) => join(tmpdir(), `effect-redis-streams-${name}.png`)
