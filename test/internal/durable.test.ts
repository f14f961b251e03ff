import { assert, describe, it } from "@effect/vitest"
import { items } from "../../src/internal/durable/body.js"
import * as Cursor from "../../src/internal/durable/cursor.js"
import { dataEvent } from "../../src/internal/durable/sse.js"

/** The `data:` lines of an event as an SSE reader joins them (one space after the colon dropped). */
const received = (event: string) =>
  event
    .split("\n")
    .filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(5).replace(/^ /, ""))
    .join("\n")

describe("Durable Streams internals", () => {
  it("JSON batches are split one level deep, each message kept as the exact text sent", () => {
    const body = Buffer.from(' [ {"a":"x, ]\\" y"}, [1, [2]] ,12345678901234567890, "s"]\n')
    const split = items(body, "application/json", false)
    assert.deepStrictEqual(split._tag === "Items" ? split.items.map(String) : split.message, [
      '{"a":"x, ]\\" y"}',
      "[1, [2]]",
      "12345678901234567890",
      '"s"'
    ])
    assert.strictEqual(items(Buffer.from("[]"), "application/json", false)._tag, "Invalid")
    assert.strictEqual(items(Buffer.from("{"), "application/json", true)._tag, "Invalid")
  })

  it("an SSE data event carries text lines exactly, leading spaces and line breaks of every kind included", () => {
    const text = "  indented\nplain\r\nevent: control\rlast"
    assert.strictEqual(received(dataEvent([Buffer.from(text)], false, true)), "  indented\nplain\nevent: control\nlast")
  })

  it("a cursor never goes back: at or past the current interval, the next is further on", () => {
    const now = Date.UTC(2026, 0, 1)
    const current = Number(Cursor.next(undefined, now))
    assert.strictEqual(Number(Cursor.next(String(current - 5), now)), current)
    assert.isAbove(Number(Cursor.next(String(current), now)), current)
    assert.isAbove(Number(Cursor.next(String(current + 100), now)), current + 100)
  })
})
