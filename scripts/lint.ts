/**
 * Project rules the formatter cannot check: no focused or skipped tests, no `any` casts or ts-ignores, and no
 * `console` in library code (errors and logs go through Effect).
 */
import { readdir, readFile } from "node:fs/promises"
import { join } from "node:path"

const rules: ReadonlyArray<{
  readonly pattern: RegExp
  readonly message: string
  readonly dirs: ReadonlyArray<string>
}> = [
  {
    pattern: /\b(it|describe|test)(\.effect)?\.(only|skip|todo)\b/,
    message: "focused or skipped test",
    dirs: ["test"]
  },
  { pattern: /\bas any\b|@ts-ignore|@ts-expect-error/, message: "type escape hatch", dirs: ["src", "test", "bench"] },
  { pattern: /\bconsole\./, message: "console in library code", dirs: ["src"] }
]

const files = async (dir: string): Promise<Array<string>> => {
  const entries = await readdir(dir, { withFileTypes: true })
  const nested = await Promise.all(
    entries.map((entry) => {
      const path = join(dir, entry.name)
      return entry.isDirectory() ? files(path) : Promise.resolve(path.endsWith(".ts") ? [path] : [])
    })
  )
  return nested.flat()
}

const problems: Array<string> = []
for (const rule of rules) {
  for (const dir of rule.dirs) {
    for (const file of await files(dir)) {
      const lines = (await readFile(file, "utf8")).split("\n")
      lines.forEach((line, index) => {
        if (rule.pattern.test(line)) problems.push(`${file}:${index + 1}: ${rule.message}: ${line.trim()}`)
      })
    }
  }
}
if (problems.length > 0) {
  console.error(problems.join("\n"))
  process.exit(1)
}
console.log("lint: ok")
