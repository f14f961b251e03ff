/**
 * A producer that dies: `node --import tsx crashing-producer.ts <ours|peer> <redis url> <chunks>` starts one run of
 * `chunks` chunks on our ResumableStream or on resumable-stream, holds it halfway, prints the token (ours) or stream
 * id (peer) once the first half is stored, and waits for the bench to kill it (SIGKILL: nothing runs after).
 */
import { Layer, ManagedRuntime } from "effect"
import { Redis } from "ioredis"
import { createResumableStreamContext } from "resumable-stream/ioredis"
import * as RedisClient from "../../dist/RedisClient.js"
import * as ResumableStream from "../../dist/ResumableStream.js"
import { pauses, peerChunks, Tail } from "./resumable.js"

const [side, url = "", chunks = "1000"] = process.argv.slice(2)
const n = Number(chunks)
const halfway = new Promise<void>((reached) => {
  pauses.set("crash", { at: n / 2, reached, until: new Promise(() => undefined) })
})
const pause = pauses.get("crash")

if (side === "ours") {
  const runtime = ManagedRuntime.make(
    ResumableStream.layer({ streams: [Tail], keyPrefix: "bench:rs:", unsignedTokens: true }).pipe(
      Layer.provideMerge(RedisClient.layer({ url }))
    )
  )
  const streams = await runtime.runPromise(ResumableStream.ResumableStream)
  const started = await runtime.runPromise(streams.start(Tail, { n, pause: "crash" }))
  await halfway
  process.stdout.write(`${started.token}\n`)
} else {
  const context = createResumableStreamContext({
    waitUntil: null,
    keyPrefix: "bench:vercel",
    publisher: new Redis(url, { protocol: 2 }),
    subscriber: new Redis(url, { protocol: 2 })
  })
  const id = `crash-${process.pid}`
  await context.createNewResumableStream(id, () => peerChunks(n, pause))
  await halfway
  process.stdout.write(`${id}\n`)
}
