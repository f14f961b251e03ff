import { defineConfig } from "vitest/config"

// vitest 5 reports failures with Map.groupBy, which Node 20 lacks (Node >= 21 has it).
const groupable = Map as unknown as { groupBy?: unknown }
if (typeof groupable.groupBy !== "function") {
  groupable.groupBy = <K, V>(items: Iterable<V>, key: (item: V, index: number) => K): Map<K, Array<V>> => {
    const groups = new Map<K, Array<V>>()
    let index = 0
    for (const item of items) {
      const k = key(item, index++)
      const group = groups.get(k)
      if (group === undefined) groups.set(k, [item])
      else group.push(item)
    }
    return groups
  }
}

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/globalSetup.ts"],
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ["default"]
  }
})
