/**
 * Lua scripts as typed constants: a name, the Lua text, its SHA1, and phantom types for its KEYS, ARGV and reply.
 * Run one with `RedisClient`'s `eval` (one call) or `evalMany` (many key sets, grouped by node on a Cluster); both
 * send `EVALSHA` and fall back to `EVAL` when the server does not know the script yet (`NOSCRIPT`: a restarted or
 * new node). Every key a script touches must be passed in KEYS, and on a Cluster all of one call's keys must share a
 * hash tag (`{…}`).
 *
 * @since 0.1.0
 */

import { createHash } from "node:crypto"

/**
 * An argument of a script: text, a number, or bytes.
 *
 * @since 0.1.0
 */
export type Arg = string | number | Buffer

/**
 * A script with `Keys` (a labelled tuple of key names), `Args` (a labelled tuple of arguments) and its reply `Reply`.
 *
 * @since 0.1.0
 */
export interface RedisScript<Keys extends ReadonlyArray<string>, Args extends ReadonlyArray<Arg>, Reply> {
  readonly name: string
  readonly lua: string
  readonly sha: string
  /** Phantom: the types of the keys, the arguments and the reply. */
  readonly _types?: { readonly keys: Keys; readonly args: Args; readonly reply: Reply }
}

/**
 * Declares a script; `name` names it in errors and spans. The `lua` text should start with a comment naming KEYS,
 * ARGV and the reply.
 *
 * @since 0.1.0
 */
export const make =
  <Keys extends ReadonlyArray<string>, Args extends ReadonlyArray<Arg>, Reply>() =>
  (name: string, lua: string): RedisScript<Keys, Args, Reply> => ({
    name,
    lua,
    sha: createHash("sha1").update(lua).digest("hex")
  })
