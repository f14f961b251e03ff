/**
 * The package as users get it: `npm pack`, the tarball installed into a fresh application beside `effect` (a peer:
 * one copy of it in the application), type-checked with strict settings from its `.d.ts` files only, and a program
 * using every capability run against a redis-server of its own.
 */
import { execFile } from "node:child_process"
import { existsSync } from "node:fs"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"

const root = join(import.meta.dirname, "..")

const run = (command: string, args: ReadonlyArray<string>, cwd: string) =>
  new Promise<string>((resolve, reject) => {
    execFile(command, args, { cwd, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      error === null ? resolve(stdout) : reject(new Error(`${command} ${args.join(" ")}: ${stdout}${stderr}`))
    )
  })

describe("the packed package", () => {
  it(
    "installs beside effect (one copy), type-checks strictly from its .d.ts, and runs all five capabilities",
    {
      timeout: 240_000
    },
    async () => {
      const app = await mkdtemp(join(tmpdir(), "ers-app-"))
      try {
        const packed = JSON.parse(await run("npm", ["pack", "--json", "--pack-destination", app], root)) as Array<{
          readonly filename: string
          readonly files: ReadonlyArray<{ readonly path: string }>
        }>
        const tarball = packed[0]
        assert.isDefined(tarball)
        const files = tarball?.files.map((file) => file.path) ?? []
        for (const expected of ["LICENSE", "README.md", "dist/index.d.ts", "dist/testing/index.js"]) {
          assert.include(files, expected)
        }
        await writeFile(
          join(app, "package.json"),
          JSON.stringify({
            name: "app",
            private: true,
            type: "module",
            // the newest effect the peer range allows, as a user installing it today gets
            dependencies: { "effect-redis-streams": `file:./${tarball?.filename}`, effect: "^4.1.0" }
          })
        )
        await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline"], app)
        // a peer: the application's effect is the one the package uses, not a copy of its own
        assert.isTrue(existsSync(join(app, "node_modules/effect/package.json")))
        assert.isFalse(existsSync(join(app, "node_modules/effect-redis-streams/node_modules/effect")))

        await writeFile(join(app, "app.ts"), await readFile(join(root, "test/support/package-app.ts"), "utf8"))
        const tsconfig = {
          compilerOptions: {
            target: "ES2022",
            module: "NodeNext",
            moduleResolution: "NodeNext",
            lib: ["ES2023"],
            types: ["node"],
            typeRoots: [join(root, "node_modules/@types")],
            strict: true,
            exactOptionalPropertyTypes: true,
            noUncheckedIndexedAccess: true,
            skipLibCheck: true,
            outDir: "out"
          },
          include: ["app.ts"]
        }
        await writeFile(join(app, "tsconfig.json"), JSON.stringify(tsconfig))
        await run(join(root, "node_modules/.bin/tsc"), ["-p", "."], app)
        const output = await run(process.execPath, [join(app, "out/app.js")], app)
        assert.strictEqual(output.trim(), "ok")
      } finally {
        await rm(app, { recursive: true, force: true })
      }
    }
  )
})
