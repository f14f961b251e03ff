/**
 * The README's code compiles as written: every ```ts and ```tsx block is written to a file of its own (a module, as a
 * user would paste it) and the whole set is type-checked with the project's strict settings, `effect-redis-streams`
 * resolving to this repository's sources. A block may declare what it does not define (`declare const llm…`).
 */
import { execFile } from "node:child_process"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"

const root = join(import.meta.dirname, "..")

const blocksOf = (markdown: string): ReadonlyArray<{ readonly extension: string; readonly code: string }> =>
  Array.from(markdown.matchAll(/```(tsx?)\n([\s\S]*?)```/g), (match) => ({
    extension: match[1] as string,
    code: match[2] as string
  }))

const typecheck = (dir: string) =>
  new Promise<{ readonly code: number; readonly output: string }>((resolve) => {
    execFile(join(root, "node_modules", ".bin", "tsc"), ["--noEmit", "-p", dir], (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, output: stdout + stderr })
    )
  })

describe("README", () => {
  it("every TypeScript block type-checks as written", { timeout: 60_000 }, async () => {
    const blocks = blocksOf(await readFile(join(root, "README.md"), "utf8"))
    assert.isAtLeast(blocks.length, 10)
    // inside the repository, so that node_modules resolve as they do for the project
    const dir = await mkdtemp(join(root, "test", ".readme-"))
    try {
      await Promise.all(
        blocks.map((block, index) => writeFile(join(dir, `block-${index}.${block.extension}`), block.code))
      )
      const tsconfig = {
        extends: "../../tsconfig.json",
        compilerOptions: {
          noUnusedLocals: false,
          jsx: "react-jsx",
          paths: {
            "effect-redis-streams": ["../../src/index.ts"],
            "effect-redis-streams/testing": ["../../src/testing/index.ts"]
          }
        },
        include: ["*.ts", "*.tsx"]
      }
      await writeFile(join(dir, "tsconfig.json"), JSON.stringify(tsconfig))
      const { code, output } = await typecheck(dir)
      assert.strictEqual(code, 0, `the README's blocks do not compile:\n${output}`)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
