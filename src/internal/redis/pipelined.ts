/**
 * Commands on many keys as few round trips: grouped so that each group can be one pipeline (everything on a single
 * node; on a Cluster, by the nodes that serve each key's slot; no key, or a slot not mapped yet: alone), each
 * group sent as one pipeline, every outcome returned in the order of the keys.
 *
 * @internal
 */
import { Cluster, type ChainableCommander } from "ioredis"
import type { Client } from "./connection.js"
import { slotOf } from "../slot.js"

/** The outcome of one command of a batch: its reply, or what it failed with. */
export type Outcome<Reply> = readonly [error: unknown, reply: Reply | undefined]

/** The indexes of `keys` grouped so that each group can be one pipeline (see the module header). */
export const groupsOf = (client: Client, keys: ReadonlyArray<string | undefined>): Array<Array<number>> => {
  if (!(client instanceof Cluster)) return [keys.map((_, index) => index)]
  const groups = new Map<string, Array<number>>()
  const alone: Array<Array<number>> = []
  keys.forEach((key, index) => {
    const nodes = key === undefined ? undefined : client.slots[slotOf(key)]
    if (nodes === undefined || nodes.length === 0) return void alone.push([index])
    const group = nodes.join(",")
    const members = groups.get(group)
    if (members === undefined) groups.set(group, [index])
    else members.push(index)
  })
  return [...groups.values(), ...alone]
}

/**
 * Runs `add(pipeline, key, index)` for every key, one pipeline per group; each outcome in the order of `keys`. With
 * `single`, a group of one key sends its command alone (`single(client, key, index)`): a pipeline costs more than the
 * command when a batch holds one request (a caller waiting for each reply).
 */
export const pipelined = async <Reply>(
  client: Client,
  keys: ReadonlyArray<string | undefined>,
  add: (pipeline: ChainableCommander, key: string | undefined, index: number) => void,
  single?: (client: Client, key: string | undefined, index: number) => Promise<Reply>
): Promise<Array<Outcome<Reply>>> => {
  const outcomes: Array<Outcome<Reply>> = keys.map(() => [undefined, undefined])
  await Promise.all(
    groupsOf(client, keys).map(async (indexes) => {
      const only = indexes.length === 1 ? (indexes[0] as number) : undefined
      if (single !== undefined && only !== undefined) {
        outcomes[only] = await single(client, keys[only], only).then(
          (reply): Outcome<Reply> => [undefined, reply],
          (error: unknown): Outcome<Reply> => [error, undefined]
        )
        return
      }
      const pipeline = client.pipeline()
      for (const index of indexes) add(pipeline, keys[index], index)
      const results = await pipeline.exec().catch((error: unknown) => indexes.map(() => [error, undefined] as const))
      indexes.forEach((index, position) => {
        const [error, reply] = results?.[position] ?? [new Error("no reply in the pipeline"), undefined]
        outcomes[index] = [error ?? undefined, reply as Reply | undefined]
      })
    })
  )
  return outcomes
}
