/**
 * Running `RedisScript`s on an ioredis client: `EVALSHA` with a fallback to `EVAL` when the server does not know the
 * script yet (`NOSCRIPT`), one call at a time or many in pipelines grouped by node (a Cluster pipeline must stay on
 * one node). Only `RedisClient` runs scripts; capabilities call its `eval` and `evalMany`.
 *
 * @internal
 */
import { type Arg, make, type RedisScript } from "../../RedisScript.js"
import type { Client } from "./connection.js"
import * as Pipelined from "./pipelined.js"
import { slotOf, slotTag } from "../slot.js"

/**
 * The idempotent form of a script: it takes one more key, last, a marker in the slot of its other keys whose name
 * ends with `:<ttl ms>`. The first run stores its reply in the marker for that long; a run that finds the marker
 * returns the stored reply without writing again, so a call retried after a lost reply is applied once.
 *
 * What the script announced through `announced` (a list of `{channel, message}` it may append to; a script meant to
 * run wrapped, and only such a script, uses it) is stored too and published again by such a run: the first run's
 * PUBLISH may have died with its master (a failover between the write and the reply), and a change announced twice
 * is better than one never announced.
 */
const idempotentForms = new Map<string, RedisScript<ReadonlyArray<string>, ReadonlyArray<Arg>, unknown>>()
export const idempotent = <Keys extends ReadonlyArray<string>, Args extends ReadonlyArray<Arg>, Reply>(
  self: RedisScript<Keys, Args, Reply>
): RedisScript<ReadonlyArray<string>, Args, Reply> => {
  const known = idempotentForms.get(self.sha)
  if (known !== undefined) return known as RedisScript<ReadonlyArray<string>, Args, Reply>
  const lua = `local marker = KEYS[#KEYS]
local done = redis.call('GET', marker)
if done then
  if done == '~nil' then return nil end
  local stored = cjson.decode(done)
  for _, announcement in ipairs(stored[2]) do redis.call('PUBLISH', announcement[1], announcement[2]) end
  return stored[1]
end
local announced = {}
local function body()
${self.lua}
end
local reply = body()
local ttl = string.match(marker, ':(%d+)$')
if (reply == nil or reply == false) and #announced == 0 then
  redis.call('SET', marker, '~nil', 'PX', ttl)
else
  redis.call('SET', marker, cjson.encode({ reply or false, announced }), 'PX', ttl)
end
return reply`
  const form = make<ReadonlyArray<string>, Args, Reply>()(self.name, lua)
  idempotentForms.set(self.sha, form as RedisScript<ReadonlyArray<string>, ReadonlyArray<Arg>, unknown>)
  return form
}

/** The marker key of request `requestId` in the slot of `key`, remembered for `ttlMs`. */
export const markerKey = (key: string, requestId: string, ttlMs: number): string =>
  `ers:once:{${slotTag(slotOf(key))}}:${requestId}:${Math.max(1, Math.round(ttlMs))}`

const isNoScript = (error: unknown) => error instanceof Error && error.message.startsWith("NOSCRIPT")

/** The `EVAL` in flight per script that a server did not know (it loads the script there). */
const loading = new Map<string, Promise<unknown>>()

/**
 * Runs a script once on `client`. When the server answers `NOSCRIPT` (a fresh server, a failover), one call `EVAL`s it
 * (which loads it) while the calls that hit `NOSCRIPT` meanwhile wait for that and retry `EVALSHA`, so a burst after a
 * restart compiles the script once, not once per call; a call that still gets `NOSCRIPT` (another node) `EVAL`s it.
 * With `replies: "bytes"`, the reply's strings come as Buffers (a script that returns binary stream entries).
 */
export const runPromise = <Keys extends ReadonlyArray<string>, Args extends ReadonlyArray<Arg>, Reply>(
  client: Client,
  self: RedisScript<Keys, Args, Reply>,
  keys: Keys,
  args: Args,
  replies: "text" | "bytes" = "text"
): Promise<Reply> => {
  const evalsha = () =>
    (replies === "text"
      ? client.evalsha(self.sha, keys.length, ...keys, ...args)
      : client.callBuffer("EVALSHA", self.sha, keys.length, ...keys, ...args)) as Promise<Reply>
  const evaluate = () =>
    (replies === "text"
      ? client.eval(self.lua, keys.length, ...keys, ...args)
      : client.callBuffer("EVAL", self.lua, keys.length, ...keys, ...args)) as Promise<Reply>
  const orEval = (error: unknown) => (isNoScript(error) ? evaluate() : Promise.reject(error))
  return evalsha().catch((error: unknown) => {
    if (!isNoScript(error)) return Promise.reject(error)
    const inFlight = loading.get(self.sha)
    if (inFlight !== undefined) return inFlight.then(evalsha).catch(orEval)
    const loaded = evaluate()
    const settled = loaded.then(
      () => undefined,
      () => undefined
    )
    loading.set(self.sha, settled)
    void settled.then(() => loading.delete(self.sha))
    return loaded
  })
}

/** The outcome of one call of a batch: its reply, or what it failed with. */
export type Outcome<Reply> = Pipelined.Outcome<Reply>

/**
 * Runs one script over many key/argument sets: one pipelined round trip per node. Entries the server answered
 * `NOSCRIPT` are run again with `EVAL`. Each outcome is the reply or the error, in the order of `calls`.
 */
export const runMany = async <Keys extends ReadonlyArray<string>, Args extends ReadonlyArray<Arg>, Reply>(
  client: Client,
  self: RedisScript<Keys, Args, Reply>,
  calls: ReadonlyArray<readonly [Keys, Args]>
): Promise<Array<Outcome<Reply>>> => {
  // a call's first key routes it (a call without keys goes alone)
  const routes = calls.map(([keys]) => keys[0])
  const first = await Pipelined.pipelined<Reply>(client, routes, (pipeline, _route, index) => {
    const [keys, args] = calls[index] as readonly [Keys, Args]
    pipeline.evalsha(self.sha, keys.length, ...keys, ...args)
  })
  return Promise.all(
    first.map(async ([error, reply], index): Promise<Outcome<Reply>> => {
      if (error === undefined || !isNoScript(error)) return [error, reply]
      const [keys, args] = calls[index] as readonly [Keys, Args]
      return runPromise(client, self, keys, args).then(
        (value): Outcome<Reply> => [undefined, value],
        (retryError: unknown): Outcome<Reply> => [retryError, undefined]
      )
    })
  )
}
