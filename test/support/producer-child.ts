/**
 * A producer in its own process, for fault tests that kill it: starts a `Forever` run, prints its token on stdout,
 * and ticks until it is killed. Arguments: `single <url>` or `cluster <host:port,…>`, then the key prefix.
 */
import { Effect, Layer } from "effect"
import * as ResumableStream from "../../src/ResumableStream.js"
import { clientFromArgs } from "./child.js"
import { Forever } from "./definitions.js"

const [mode, target, keyPrefix] = process.argv.slice(2)
const client = clientFromArgs(mode, target)

const program = Effect.gen(function* () {
  const streams = yield* ResumableStream.ResumableStream
  const started = yield* streams.start(Forever, { everyMs: 20 })
  process.stdout.write(`${started.token}\n`)
  return yield* Effect.never
})

Effect.runPromise(
  program.pipe(
    Effect.provide(
      ResumableStream.layer({
        streams: [Forever],
        keyPrefix,
        heartbeatInterval: "100 millis",
        unsignedTokens: true
      }).pipe(Layer.provide(client))
    )
  )
).catch(() => process.exit(1))
