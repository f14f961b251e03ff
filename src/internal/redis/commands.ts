/**
 * Plain commands on a client: one alone, many pipelined by node, many in one `MULTI … EXEC`. A command is sent by
 * its name (ioredis' `call`), so no reply transform of ioredis applies: replies are what Redis sends, in the shape
 * RESP2 gives them (ioredis decodes a RESP3 map as the same flat list). Failures are returned as they came;
 * `RedisClient` classifies them.
 *
 * @internal
 */
import type { ChainableCommander } from "ioredis"
import type { Command } from "../../RedisClient.js"
import type { Arg } from "../../RedisScript.js"
import type { Client } from "./connection.js"
import { type Outcome, pipelined } from "./pipelined.js"

/** How a reply's strings arrive: as strings, or as Buffers (binary data). */
export type Replies = "text" | "bytes"

/**
 * Sends one command; its reply in RESP2's shape. The arguments go as one array (ioredis copies it once), not spread
 * (two more copies of a long argument list).
 */
export const send = (client: Client, name: string, args: ReadonlyArray<Arg>, replies: Replies): Promise<unknown> =>
  replies === "text" ? client.call(name, args as Array<Arg>) : client.callBuffer(name, args as Array<Arg>)

/** Queues a command in a pipeline or transaction. */
const queue = (pipeline: ChainableCommander, command: Command): void =>
  void pipeline.call(command.name, ...command.args)

/**
 * Sends `commands` pipelined, one pipeline per node (grouped by each command's key on a Cluster; a group of one
 * command is sent alone); each command's outcome in order.
 */
export const sendPipelined = (client: Client, commands: ReadonlyArray<Command>): Promise<Array<Outcome<unknown>>> =>
  pipelined<unknown>(
    client,
    commands.map((command) => command.key),
    (pipeline, _key, index) => queue(pipeline, commands[index] as Command),
    (one, _key, index) => {
      const command = commands[index] as Command
      return send(one, command.name, command.args, "text")
    }
  )

/**
 * Runs `commands` in one `MULTI … EXEC` (every key in one slot on a Cluster); each command's outcome in order. The
 * transaction as a whole failing (the connection dropped, `EXECABORT`) rejects.
 */
export const sendAtomic = async (
  client: Client,
  commands: ReadonlyArray<Command>
): Promise<Array<Outcome<unknown>>> => {
  const multi = client.multi()
  for (const command of commands) queue(multi, command)
  const results = (await multi.exec()) ?? []
  return commands.map((_, index) => {
    const [error, reply] = results[index] ?? [new Error("no reply in the transaction"), undefined]
    return [error ?? undefined, reply] as const
  })
}

/** The name of the `index`-th of `commands` in lower case (an error's `op`), `fallback` when there is none. */
export const nameOf = (commands: ReadonlyArray<Command>, index: number, fallback: string): string =>
  (commands[index]?.name ?? fallback).toLowerCase()
