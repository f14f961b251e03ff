/**
 * The package as users get it, installed as the README says: `npm pack`, then the README's Install commands, taken
 * from the README and run as written (the package's name standing for the tarball) in a fresh application, on this
 * run's Node (24 in CI) and on Node 22.19, the oldest the package supports (the registry's `node-<os>-<arch>`
 * package). There: one copy of `effect` (a peer), a program using every capability, type-checked strictly from the
 * package's `.d.ts` files and run against a redis-server of its own, and the README's test of an application
 * ("Testing an application…"), run with the vitest the Install section installs.
 */
import { execFile } from "node:child_process"
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { existsSync } from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, dirname, join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"

const root = join(import.meta.dirname, "..")

/** Runs `command` in `cwd` (with `nodeBin` first on PATH, when given); resolves with its output, rejects with all of it. */
const run = (command: string, args: ReadonlyArray<string>, cwd: string, nodeBin?: string) =>
  new Promise<string>((resolve, reject) => {
    const path = process.env.PATH ?? ""
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: nodeBin === undefined ? path : `${nodeBin}${delimiter}${path}`
    }
    // vitest's own worker settings and colours are not the application's
    delete env.NODE_OPTIONS
    delete env.FORCE_COLOR
    env.NO_COLOR = "1"
    execFile(command, args, { cwd, env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      error === null ? resolve(stdout) : reject(new Error(`${command} ${args.join(" ")}: ${stdout}${stderr}`))
    )
  })

/** The text of the README section headed `## {title}…`. */
const section = (readme: string, title: string): string => {
  const start = readme.indexOf(`\n## ${title}`)
  assert.isAtLeast(start, 0, `the README has no section "${title}"`)
  const end = readme.indexOf("\n## ", start + 1)
  return readme.slice(start, end === -1 ? undefined : end)
}

/** The first ```{language} block of `text`. */
const firstBlock = (text: string, language: string): string => {
  const match = new RegExp("```" + language + "\\n([\\s\\S]*?)```").exec(text)
  assert.isNotNull(match, `no ${language} block`)
  return match?.[1] ?? ""
}

/** The Install section's commands, each as its arguments (comments dropped). */
const installCommands = (readme: string): ReadonlyArray<ReadonlyArray<string>> =>
  firstBlock(section(readme, "Install"), "sh")
    .split("\n")
    .map((line) => line.replace(/#.*$/, "").trim())
    .filter((line) => line.length > 0)
    .map((line) => line.split(/\s+/))

let tarball = ""
let packDir = ""

beforeAll(async () => {
  packDir = await mkdtemp(join(tmpdir(), "ers-pack-"))
  const packed = JSON.parse(await run("npm", ["pack", "--json", "--pack-destination", packDir], root)) as Array<{
    readonly filename: string
    readonly files: ReadonlyArray<{ readonly path: string }>
  }>
  const files = packed[0]?.files.map((file) => file.path) ?? []
  for (const expected of ["LICENSE", "README.md", "dist/index.d.ts", "dist/testing/index.js"]) {
    assert.include(files, expected)
  }
  tarball = join(packDir, packed[0]?.filename ?? "")
}, 120_000)

afterAll(() => rm(packDir, { recursive: true, force: true }))

/** The folder of Node `version`'s binary, installed from the npm registry into node_modules/.cache once. */
const nodeFromRegistry = async (version: string): Promise<string> => {
  const name = `node-${process.platform}-${process.arch}`
  const prefix = join(root, "node_modules", ".cache", `node-${version}`)
  const bin = join(prefix, "node_modules", name, "bin")
  if (!existsSync(join(bin, "node"))) {
    await mkdir(prefix, { recursive: true })
    await run(
      "npm",
      [
        "install",
        "--prefix",
        prefix,
        "--no-save",
        "--no-package-lock",
        "--no-audit",
        "--no-fund",
        `${name}@${version}`
      ],
      root
    )
  }
  return bin
}

/** Installs the package into a fresh application as the README says, with `nodeBin`'s Node, and runs it there. */
const installAndRun = async (nodeBin: string) => {
  const app = await mkdtemp(join(tmpdir(), "ers-app-"))
  try {
    const readme = await readFile(join(root, "README.md"), "utf8")
    const local = `./${tarball.split("/").at(-1)}`
    await copyFile(tarball, join(app, local))
    await writeFile(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }))
    for (const [command, ...args] of installCommands(readme)) {
      assert.strictEqual(command, "npm")
      const named = args.map((arg) => (arg === "effect-redis-streams" ? local : arg))
      await run("npm", [...named, "--no-audit", "--no-fund", "--prefer-offline"], app, nodeBin)
    }
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
    await run(join(root, "node_modules/.bin/tsc"), ["-p", "."], app, nodeBin)
    const output = await run("node", [join(app, "out/app.js")], app, nodeBin)
    assert.strictEqual(output.trim(), "ok")

    // the README's test of an application, as written, with the vitest the Install section installed
    const test = firstBlock(section(readme, "Testing an application"), "ts")
    await writeFile(join(app, "app.test.ts"), test)
    const tested = await run("npx", ["--no-install", "vitest", "run", "app.test.ts"], app, nodeBin)
    assert.match(tested, /Tests\s+1 passed/)
    return JSON.parse(await readFile(join(app, "node_modules/vitest/package.json"), "utf8")) as { version: string }
  } finally {
    await rm(app, { recursive: true, force: true })
  }
}

describe("the packed package, installed as the README says", () => {
  it(
    "on this run's Node: installs, type-checks, runs all five capabilities and the README's test",
    { timeout: 300_000 },
    async () => {
      const vitest = await installAndRun(dirname(process.execPath))
      assert.match(vitest.version, /^5\./)
    }
  )

  it("on Node 22.19, the oldest supported: the same", { timeout: 300_000 }, async () => {
    const bin = await nodeFromRegistry("22.19.0")
    assert.strictEqual((await run("node", ["--version"], root, bin)).trim(), "v22.19.0")
    const vitest = await installAndRun(bin)
    assert.match(vitest.version, /^5\./)
  })
})
