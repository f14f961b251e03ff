/**
 * A chat server in a child process (for the shutdown and crash tests): serves the chat routes on a free port of
 * 127.0.0.1 against the servers its arguments name, prints its URL, and runs until SIGTERM (a graceful shutdown,
 * through NodeRuntime) or SIGKILL. Arguments: `single <url> | cluster <nodes>`, key prefix, shutdownGrace in ms.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
import { chatOptions, chatServer } from "./chat.js"
import { clientFromArgs } from "./child.js"

const [mode, target, keyPrefix = "", graceMs = "0"] = process.argv.slice(2)

const main = HttpServer.addressFormattedWith((url) =>
  Effect.andThen(
    Effect.sync(() => console.log(url)),
    Effect.never
  )
).pipe(
  Effect.provide(
    chatServer(chatOptions(keyPrefix, { shutdownGrace: Number(graceMs) })).pipe(
      Layer.provide(clientFromArgs(mode, target))
    )
  )
)

NodeRuntime.runMain(main)
