/**
 * Project rules the formatter cannot check: no focused or skipped tests, no `any` casts or ts-ignores, no `console` in
 * library code (errors and logs go through Effect), and one owner of the Redis driver: ioredis is imported only in
 * src/internal/redis/, that folder only by RedisClient.ts, and library code never takes RedisClient's escape hatch to
 * the raw client (capabilities go through the service's commands).
 */
import { readdir, readFile } from "node:fs/promises"
import { join } from "node:path"

const rules: ReadonlyArray<{
  readonly pattern: RegExp
  readonly message: string
  readonly dirs: ReadonlyArray<string>
  /** Files (path prefixes) the rule does not apply to. */
  readonly exempt?: ReadonlyArray<string>
  /** The only files it applies to, when given. */
  readonly only?: ReadonlyArray<string>
}> = [
  {
    pattern: /\b(it|describe|test)(\.effect)?\.(only|skip|todo)\b/,
    message: "focused or skipped test",
    dirs: ["test"]
  },
  { pattern: /\bas any\b|@ts-ignore|@ts-expect-error/, message: "type escape hatch", dirs: ["src", "test", "bench"] },
  { pattern: /\bconsole\./, message: "console in library code", dirs: ["src"] },
  {
    pattern: /from "ioredis"|import\("ioredis"\)/,
    message: "ioredis outside the driver (src/internal/redis/)",
    dirs: ["src"],
    exempt: [join("src", "internal", "redis")]
  },
  {
    pattern: /from "[^"]*\/redis\/[^"]*"/,
    message: "the driver (src/internal/redis/) used outside RedisClient.ts",
    dirs: ["src"],
    exempt: [join("src", "internal", "redis"), join("src", "RedisClient.ts")]
  },
  {
    pattern: /from "[^"]*\/(messaging|resumable|adapter|subjects|sink)\/(?!inspect)[^"]*"/,
    message: "the inspector reads a capability's keys or scripts (use the capability's inspect* module)",
    dirs: [join("src", "internal", "inspector")],
    exempt: []
  },
  {
    pattern: /from "\.\/internal\/(messaging|resumable|adapter|subjects|sink)\/(?!inspect)[^"]*"/,
    message: "the inspector reads a capability's keys or scripts (use the capability's inspect* module)",
    dirs: ["src"],
    only: [join("src", "Inspector.ts")]
  },
  {
    pattern: /\.(use|classify)\(|\.dedicated\b|\bredis\.client\b/,
    message: "RedisClient's escape hatch (use, classify, dedicated, client) in library code",
    dirs: ["src"],
    exempt: [join("src", "internal", "redis"), join("src", "RedisClient.ts")]
  }
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
      if (rule.exempt?.some((prefix) => file.startsWith(prefix))) continue
      if (rule.only !== undefined && !rule.only.includes(file)) continue
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
