import { assert, describe, it } from "@effect/vitest"
import * as Recent from "../../src/internal/resumable/recent.js"

/** The JSON of chunks `from` … `to - 1`, as a writer stores them. */
const texts = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => JSON.stringify({ item: `line ${from + i}\nnext` }))

describe("a run writer's recent chunks", () => {
  it("gives back the last chunks written, exactly and in order, and forgets them", () => {
    const recent = Recent.make(10)
    recent.add(texts(0, 4))
    recent.add(texts(4, 9))
    assert.deepStrictEqual(recent.takeLast(3), texts(6, 9))
    assert.deepStrictEqual(recent.takeLast(6), texts(0, 6))
    assert.strictEqual(recent.takeLast(1), undefined)
  })

  it("keeps at least the last `keep` chunks, and says when a loss reaches further back", () => {
    const recent = Recent.make(10)
    for (let from = 0; from < 100; from += 7) recent.add(texts(from, from + 7))
    assert.deepStrictEqual(recent.takeLast(10), texts(95, 105))
    const fresh = Recent.make(10)
    for (let from = 0; from < 100; from += 7) fresh.add(texts(from, from + 7))
    assert.strictEqual(fresh.takeLast(40), undefined)
  })
})
