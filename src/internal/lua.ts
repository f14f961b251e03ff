/**
 * Lua scripts as typed constants, run with `EVALSHA` and a fallback to `EVAL` when the server does not know the
 * script yet (`NOSCRIPT`: a restarted or new node). Every key a script touches is passed in KEYS, so scripts route
 * correctly on a Cluster as long as their keys share a hash tag.
 *
 * @internal
 */
import { createHash } from "node:crypto"
import { Effect } from "effect"
import type { ChainableCommander } from "ioredis"
import type { Client } from "./connection.js"
import { classify } from "./errors.js"
import type { RedisError } from "../RedisError.js"

/** An argument of a script: text, a number, or bytes. */
export type Arg = string | number | Buffer

/** A script with `Keys` (labelled tuple of key names), `Args` (labelled tuple of arguments) and its reply `Reply`. */
export interface Script<Keys extends ReadonlyArray<string>, Args extends ReadonlyArray<Arg>, Reply> {
  readonly name: string
  readonly lua: string
  readonly sha: string
  /** Phantom: the reply type. */
  readonly _types?: { readonly keys: Keys; readonly args: Args; readonly reply: Reply }
}

/** Declares a script. The `lua` text should start with a header naming KEYS, ARGV and the reply. */
export const script =
  <Keys extends ReadonlyArray<string>, Args extends ReadonlyArray<Arg>, Reply>() =>
  (name: string, lua: string): Script<Keys, Args, Reply> => ({
    name,
    lua,
    sha: createHash("sha1").update(lua).digest("hex")
  })

const isNoScript = (error: unknown) => error instanceof Error && error.message.startsWith("NOSCRIPT")

/** Runs a script once, on `client`, as a Promise; `EVAL`s it when the server answers `NOSCRIPT`. */
export const runPromise = <Keys extends ReadonlyArray<string>, Args extends ReadonlyArray<Arg>, Reply>(
  client: Client,
  self: Script<Keys, Args, Reply>,
  keys: Keys,
  args: Args
): Promise<Reply> =>
  (client.evalsha(self.sha, keys.length, ...keys, ...args) as Promise<Reply>).catch((error: unknown) =>
    isNoScript(error) ? (client.eval(self.lua, keys.length, ...keys, ...args) as Promise<Reply>) : Promise.reject(error)
  )

/** Runs a script on `client` as an Effect failing with a classified `RedisError`. */
export const run = <Keys extends ReadonlyArray<string>, Args extends ReadonlyArray<Arg>, Reply>(
  client: Client,
  self: Script<Keys, Args, Reply>,
  keys: Keys,
  args: Args
): Effect.Effect<Reply, RedisError> =>
  Effect.tryPromise({ try: () => runPromise(client, self, keys, args), catch: (cause) => classify(cause, self.name) })

/** Adds a script call to a pipeline (`EVALSHA`; use {@link runPipeline} to get the `NOSCRIPT` fallback). */
export const addTo = <Keys extends ReadonlyArray<string>, Args extends ReadonlyArray<Arg>, Reply>(
  pipeline: ChainableCommander,
  self: Script<Keys, Args, Reply>,
  keys: Keys,
  args: Args
): ChainableCommander => pipeline.evalsha(self.sha, keys.length, ...keys, ...args)

/**
 * Runs one script over many key/argument sets in one pipelined round trip. Entries the server answered `NOSCRIPT`
 * are run again with `EVAL` (the first call after a node restart). Each result is the reply or the error.
 */
export const runPipeline = <Keys extends ReadonlyArray<string>, Args extends ReadonlyArray<Arg>, Reply>(
  client: Client,
  self: Script<Keys, Args, Reply>,
  calls: ReadonlyArray<readonly [Keys, Args]>
): Promise<Array<readonly [Error | null, Reply | undefined]>> => {
  const pipeline = client.pipeline()
  for (const [keys, args] of calls) addTo(pipeline, self, keys, args)
  return pipeline.exec().then((results) =>
    Promise.all(
      (results ?? []).map(([error, reply], index): Promise<readonly [Error | null, Reply | undefined]> => {
        const call = calls[index]
        if (error === null || !isNoScript(error) || call === undefined) {
          return Promise.resolve([error, reply as Reply | undefined])
        }
        return runPromise(client, self, call[0], call[1]).then(
          (value) => [null, value] as const,
          (retryError: Error) => [retryError, undefined] as const
        )
      })
    )
  )
}
