/**
 * Reading one stream's items: `get` (gets arriving together go to Redis together: one HMGET per group in one
 * pipeline, each caller getting its own item), a whole group (`getGroup`), a group with its position in one atomic
 * read (`snapshot`), the groups (`listGroups`) and queries evaluated on a group's decoded items.
 *
 * @internal
 */
import { Effect, Exit, Option, Result } from "effect"
import type { Handle, Item, Position, Query } from "../../StreamAdapter.js"
import * as Reasons from "../../StreamAdapterError.js"
import type { StreamAdapterError } from "../../StreamAdapterError.js"
import * as Batcher from "../batcher.js"
import type { StreamContext } from "./context.js"
import * as Queries from "./query.js"

/** What to do with items that do not decode: leave them out with a warning (default), or fail. */
type OnInvalid = "skip" | "fail" | undefined

/** The reads of a stream: the handle's. */
export type Reads<A> = Pick<Handle<A>, "get" | "getGroup" | "snapshot" | "listGroups" | "query">

interface ReadRequest {
  readonly groupId: string
  readonly id: string
}

/** The reads of the stream `context` describes. */
export const make = <A>(context: StreamContext<A>): Reads<A> => {
  const { redis, keysOf, fromRedis, decodeText } = context

  const reads = Batcher.make<ReadRequest, Option.Option<A>, StreamAdapterError>({
    scope: context.scope,
    run: (batch) => {
      const byGroup = new Map<string, Array<number>>()
      batch.forEach((request, index) => {
        const indexes = byGroup.get(request.groupId)
        if (indexes === undefined) byGroup.set(request.groupId, [index])
        else indexes.push(index)
      })
      const groups = [...byGroup.entries()]
      const idsOf = (at: number) => (groups[at]?.[1] ?? []).map((index) => (batch[index] as ReadRequest).id)
      return redis
        .pipeline(
          groups.map(([groupId], at) => {
            const key = keysOf(groupId).items
            return { name: "HMGET", args: [key, ...idsOf(at)], key }
          })
        )
        .pipe(
          Effect.map((outcomes) => {
            const exits: Array<Exit.Exit<Option.Option<A>, StreamAdapterError>> = []
            groups.forEach(([groupId, indexes], at) => {
              const outcome = outcomes[at]
              const failed = outcome !== undefined && Result.isFailure(outcome) ? outcome.failure : undefined
              const texts =
                outcome === undefined || Result.isFailure(outcome)
                  ? undefined
                  : (outcome.success as ReadonlyArray<string | null>)
              indexes.forEach((index, position) => {
                const { id } = batch[index] as ReadRequest
                const text = texts?.[position]
                if (failed !== undefined) exits[index] = Exit.fail(fromRedis(groupId)(failed))
                else if (text === null || text === undefined) exits[index] = Exit.succeed(Option.none())
                else {
                  const decoded = decodeText(groupId, id, text)
                  exits[index] = Result.isSuccess(decoded)
                    ? Exit.succeed(Option.some(decoded.success))
                    : Exit.fail(decoded.failure)
                }
              })
            })
            return exits
          })
        )
    }
  })

  /** A group's stored items, decoded; those that do not decode are left out with a warning, or fail. */
  const decodeGroup = (groupId: string, fields: ReadonlyArray<string>, onInvalid: OnInvalid) => {
    const items: Array<Item<A>> = []
    const invalid: Array<StreamAdapterError> = []
    for (let at = 0; at < fields.length; at += 2) {
      const id = fields[at] as string
      const decoded = decodeText(groupId, id, fields[at + 1] as string)
      if (Result.isSuccess(decoded)) items.push({ id, data: decoded.success })
      else invalid.push(decoded.failure)
    }
    const firstInvalid = invalid[0]
    if (firstInvalid === undefined) return Effect.succeed(items)
    if (onInvalid === "fail") return Effect.fail(firstInvalid)
    const ids = invalid.map((e) => e.id).join(", ")
    return Effect.as(
      Effect.logWarning(`StreamAdapter: ${invalid.length} item(s) of ${context.name}/${groupId} do not decode: ${ids}`),
      items
    )
  }

  const getGroup: Reads<A>["getGroup"] = (groupId, options) =>
    redis.send<ReadonlyArray<string>>("HGETALL", keysOf(groupId).items).pipe(
      Effect.mapError(fromRedis(groupId)),
      Effect.flatMap((fields) => decodeGroup(groupId, fields, options?.onInvalid))
    )

  return {
    get: (groupId, id) => reads.submit({ groupId, id }),
    getGroup,
    snapshot: (groupId, options) => {
      const keys = keysOf(groupId)
      return redis
        .atomic([
          { name: "HGETALL", args: [keys.items], key: keys.items },
          { name: "HMGET", args: [keys.meta, "epoch", "version"], key: keys.meta }
        ])
        .pipe(
          Effect.flatMap(Effect.forEach(Effect.fromResult)),
          Effect.mapError(fromRedis(groupId)),
          Effect.flatMap(([items, meta]) => {
            const [epoch, version] = meta as ReadonlyArray<string | null>
            // a group never written is at the empty position: a subscription from it gets the group's first events
            const position: Position = { epoch: epoch ?? "", version: Number(version ?? 0) }
            return Effect.map(decodeGroup(groupId, items as ReadonlyArray<string>, options?.onInvalid), (decoded) => ({
              items: decoded,
              position
            }))
          })
        )
    },
    listGroups: redis.send<ReadonlyArray<string>>("SMEMBERS", context.indexKey).pipe(Effect.mapError(fromRedis())),
    query: (groupId, query) => {
      const problem = Queries.problemOf(query as Query<unknown>)
      if (problem !== undefined) return Effect.fail(context.error(Reasons.InvalidQuery, problem, groupId))
      return Effect.map(getGroup(groupId), (items) => Queries.run(items, query))
    }
  }
}
