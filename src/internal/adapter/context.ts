/**
 * What every part of one stream's handle shares: its name and keys, its item codec (JSON through the stream's
 * schema), its errors, and the idempotent write of a group script (with the group's change event, retried through an
 * outage for `outageTimeout`).
 *
 * @internal
 */
import { type Duration, Effect, Result, Schema, type Scope } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import type * as RedisScript from "../../RedisScript.js"
import type { Definition } from "../../StreamAdapter.js"
import * as Reasons from "../../StreamAdapterError.js"
import type { StreamAdapterError } from "../../StreamAdapterError.js"
import * as Expiry from "../expiry.js"
import { remembered } from "../memo.js"
import * as RequestIds from "../requestIds.js"
import type { Clock } from "../liveTail.js"
import { oneLine } from "../issue.js"
import { fail, fromRedis } from "./error.js"
import { type GroupKeys, groupKeys, groupsKey } from "./keys.js"

/** The layer's settings every stream shares. */
export interface AdapterSettings {
  readonly redis: RedisClient.Service
  readonly scope: Scope.Scope
  readonly prefix: string
  readonly logLength: number
  /** Ticks every `checkInterval`: a subscription whose group was quiet for a tick checks its version. */
  readonly clock: Clock
  /** Most bytes of change messages a subscription holds for a subscriber that does not keep up. */
  readonly liveBufferBytes: number
  readonly outageTimeout: Duration.Duration
  /** The index of groups with expiring items. */
  readonly expiring: string
}

/** One stream's shared parts (see the module). */
export interface StreamContext<A> extends AdapterSettings {
  readonly name: string
  readonly keysOf: (groupId: string) => GroupKeys
  /** The set of the stream's groups. */
  readonly indexKey: string
  /** What a set does to an item's deadline unless told otherwise. */
  readonly defaultTtl: Expiry.TtlChange
  /** An error of this stream made from a message. */
  readonly error: (
    reason: Parameters<typeof fail>[0],
    message: string,
    groupId?: string,
    id?: string
  ) => StreamAdapterError
  /** A Redis failure of this stream (and group). */
  readonly fromRedis: ReturnType<typeof curriedFromRedis>
  /** An item as its JSON value, through the schema. */
  readonly encodeItem: (item: A) => Result.Result<unknown, Schema.SchemaError>
  /** A JSON value as an item, through the schema. */
  readonly decodeItem: (raw: unknown) => Result.Result<A, Schema.SchemaError>
  /** An item's JSON text as `A`, or the error naming it. */
  readonly decodeText: (groupId: string, id: string, text: string) => Result.Result<A, StreamAdapterError>
  /** An item's JSON value as `A`, or the error naming it. */
  readonly decodeValue: (groupId: string, id: string, raw: unknown) => Result.Result<A, StreamAdapterError>
  /** Runs a group script idempotently: KEYS = the group's keys, ARGV = channel, log length, request id, `args`. */
  readonly write: <Args extends ReadonlyArray<string | number>, Reply>(
    groupId: string,
    script: RedisScript.RedisScript<
      [string, string, string, string],
      readonly [string, number, string, ...Args],
      Reply
    >,
    args: Args
  ) => Effect.Effect<Reply, StreamAdapterError>
}

const curriedFromRedis = (name: string) => (groupId?: string) => fromRedis(name, groupId)

/** The keys a group script takes, in order. */
export const scriptKeys = (keys: GroupKeys): [string, string, string, string] => [
  keys.items,
  keys.log,
  keys.meta,
  keys.expiry
]

/** The shared parts of the stream `definition` describes. */
export const make = <A>(settings: AdapterSettings, definition: Definition<A>): StreamContext<A> => {
  const { name } = definition
  const codec = Schema.toCodecJson(definition.item)
  const encodeItem = Schema.encodeUnknownResult(codec)
  const decodeItem = Schema.decodeUnknownResult(codec)
  const keysOf = remembered((groupId) => groupKeys(settings.prefix, name, groupId))
  const error: StreamContext<A>["error"] = (reason, message, groupId, id) => fail(reason, message, name, groupId, id)
  const toRedis = curriedFromRedis(name)
  const decodeValue = (groupId: string, id: string, raw: unknown): Result.Result<A, StreamAdapterError> => {
    const decoded = decodeItem(raw)
    // a success holds no error: reused as is rather than copied (10k items per getGroup)
    if (Result.isSuccess(decoded)) return decoded as Result.Result<A, never>
    return Result.fail(
      error(
        Reasons.Decode,
        `item ${id} of group ${groupId} does not match the ${name} schema: ${oneLine(decoded.failure)}`,
        groupId,
        id
      )
    )
  }
  return {
    ...settings,
    name,
    keysOf,
    indexKey: groupsKey(settings.prefix, name),
    defaultTtl: Expiry.ttlChange(definition.ttl),
    error,
    fromRedis: toRedis,
    encodeItem: encodeItem as (item: A) => Result.Result<unknown, Schema.SchemaError>,
    decodeItem: decodeItem as (raw: unknown) => Result.Result<A, Schema.SchemaError>,
    decodeText: (groupId, id, text) => {
      let raw: unknown
      try {
        raw = JSON.parse(text)
      } catch {
        return Result.fail(error(Reasons.Decode, `item ${id} of group ${groupId} is not JSON`, groupId, id))
      }
      return decodeValue(groupId, id, raw)
    },
    decodeValue,
    write: (groupId, script, args) => {
      const keys = keysOf(groupId)
      return settings.redis
        .evalIdempotent(
          script,
          scriptKeys(keys),
          [keys.channel, settings.logLength, RequestIds.next(), ...args] as const,
          {
            retryWithin: settings.outageTimeout
          }
        )
        .pipe(Effect.mapError(toRedis(groupId)))
    }
  }
}
