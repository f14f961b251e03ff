/**
 * Plain commands on a client: one alone, many pipelined by node, many in one `MULTI … EXEC`. A command is sent by
 * its name (ioredis' `call`), so no reply transform of ioredis applies: replies are what Redis sends, in the shape
 * RESP2 gives them (under RESP3 a map reply is turned into the flat list RESP2 sends). Failures are returned as they
 * came; `RedisClient` classifies them.
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

/** A reply in RESP2's shape: maps as flat `[key, value, …]` lists, sets as lists, at any depth. */
export const resp2Shape = (reply: unknown): unknown => {
  if (reply instanceof Map) return Array.from(reply, ([key, value]) => [resp2Shape(key), resp2Shape(value)]).flat()
  if (reply instanceof Set) return Array.from(reply, resp2Shape)
  if (Array.isArray(reply) && reply.some((item) => item instanceof Map || item instanceof Set || Array.isArray(item)))
    return reply.map(resp2Shape)
  return reply
}

/** Whether `client` speaks RESP3 (its replies need `resp2Shape`). */
const speaksResp3 = (client: Client): boolean =>
  ("options" in client ? (client.options as { readonly protocol?: number }) : {}).protocol === 3

/** Sends one command; its reply in RESP2's shape. */
export const send = (client: Client, name: string, args: ReadonlyArray<Arg>, replies: Replies): Promise<unknown> => {
  const sent = replies === "text" ? client.call(name, ...args) : client.callBuffer(name, ...args)
  return speaksResp3(client) ? sent.then(resp2Shape) : sent
}

/** Queues a command in a pipeline or transaction. */
const queue = (pipeline: ChainableCommander, command: Command, replies: Replies): void => {
  if (replies === "text") pipeline.call(command.name, ...command.args)
  else pipeline.callBuffer(command.name, ...command.args)
}

/**
 * Sends `commands` pipelined, one pipeline per node (grouped by each command's key on a Cluster; a group of one
 * command is sent alone); each command's outcome in order.
 */
export const sendPipelined = async (
  client: Client,
  commands: ReadonlyArray<Command>,
  replies: Replies
): Promise<Array<Outcome<unknown>>> => {
  const outcomes = await pipelined<unknown>(
    client,
    commands.map((command) => command.key),
    (pipeline, _key, index) => queue(pipeline, commands[index] as Command, replies),
    (one, _key, index) => {
      const command = commands[index] as Command
      return send(one, command.name, command.args, replies)
    }
  )
  return speaksResp3(client) ? outcomes.map(([error, reply]) => [error, resp2Shape(reply)] as const) : outcomes
}

/**
 * Runs `commands` in one `MULTI … EXEC` (every key in one slot on a Cluster); each command's outcome in order. The
 * transaction as a whole failing (the connection dropped, `EXECABORT`) rejects.
 */
export const sendAtomic = async (
  client: Client,
  commands: ReadonlyArray<Command>,
  replies: Replies
): Promise<Array<Outcome<unknown>>> => {
  const multi = client.multi()
  for (const command of commands) queue(multi, command, replies)
  const results = (await multi.exec()) ?? []
  return commands.map((_, index) => {
    const [error, reply] = results[index] ?? [new Error("no reply in the transaction"), undefined]
    return [error ?? undefined, speaksResp3(client) ? resp2Shape(reply) : reply] as const
  })
}

/** The name of the `index`-th of `commands` in lower case (an error's `op`), `fallback` when there is none. */
export const nameOf = (commands: ReadonlyArray<Command>, index: number, fallback: string): string =>
  (commands[index]?.name ?? fallback).toLowerCase()
