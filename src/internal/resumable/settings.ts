/**
 * A `ResumableStream` layer's options with their defaults resolved and checked once: the registered streams (unique
 * names), the token secrets (present unless unsigned tokens are asked for), limits, timings and buffer sizes.
 *
 * @internal
 */
import { randomUUID } from "node:crypto"
import { Duration, Effect, Redacted } from "effect"
import type { AnyDefinition, Options } from "../../ResumableStream.js"
import * as Reasons from "../../ResumableStreamError.js"
import type { ResumableStreamError } from "../../ResumableStreamError.js"
import { fail } from "./error.js"

/** The resolved options of a layer. */
export interface Settings {
  readonly prefix: string
  readonly definitions: ReadonlyMap<string, AnyDefinition>
  /** Token secrets, the newest first (none: unsigned tokens). */
  readonly secrets: ReadonlyArray<string>
  readonly maxChunks: number
  readonly maxChunkBytes: number
  readonly maxLifetime: Duration.Duration
  readonly completedTtl: Duration.Duration
  readonly tokenTtl: Duration.Duration
  readonly heartbeatInterval: Duration.Duration
  readonly producerTimeout: Duration.Duration
  readonly outageTimeout: Duration.Duration
  readonly pageSize: number
  readonly pageBytes: number
  readonly liveBufferBytes: number
  /** What a starter's stream keeps while nobody reads it: a run started for its token alone holds little. */
  readonly unreadLiveBytes: number
  readonly appendBuffer: number
  readonly shutdownGrace: Duration.Duration
  /** This instance as a producer (runs it claims carry it). */
  readonly producerId: string
}

/** Resolves and checks `options`; a bad one fails `InvalidInput` (a key prefix with braces is a defect). */
export const resolve = (
  options: Options<ReadonlyArray<AnyDefinition>>
): Effect.Effect<Settings, ResumableStreamError> =>
  Effect.gen(function* () {
    const prefix = options.keyPrefix ?? "river:stream:"
    if (prefix.includes("{") || prefix.includes("}")) yield* Effect.die(new Error("keyPrefix must not contain braces"))
    const definitions = new Map<string, AnyDefinition>(options.streams.map((d) => [d.name, d]))
    if (definitions.size < options.streams.length) {
      const names = options.streams.map((d) => d.name)
      const twice = names.filter((name, index) => names.indexOf(name) !== index)
      return yield* fail(Reasons.InvalidInput, `two streams are named ${twice.join(", ")}: names must be unique`)
    }
    const secrets = (
      options.secret === undefined ? [] : Redacted.isRedacted(options.secret) ? [options.secret] : options.secret
    ).map(Redacted.value)
    if (secrets.some((secret) => secret.length === 0)) {
      return yield* fail(Reasons.InvalidInput, "a token secret is empty (is its environment variable set?)")
    }
    if (secrets.length === 0 && options.unsignedTokens !== true) {
      return yield* fail(
        Reasons.InvalidInput,
        "no token secret: give `secret`, or `unsignedTokens: true` for unsigned tokens"
      )
    }
    const maxLifetime = Duration.fromInputUnsafe(options.maxLifetime ?? "1 hour")
    const completedTtl = Duration.fromInputUnsafe(options.completedTtl ?? "1 hour")
    const producerTimeout = Duration.fromInputUnsafe(options.producerTimeout ?? "5 seconds")
    const liveBufferBytes = options.liveBufferBytes ?? 4 * 1024 * 1024
    return {
      prefix,
      definitions,
      secrets,
      maxChunks: options.maxChunks ?? 100_000,
      maxChunkBytes: options.maxChunkBytes ?? 1024 * 1024,
      maxLifetime,
      completedTtl,
      tokenTtl: Duration.fromInputUnsafe(options.tokenTtl ?? Duration.sum(maxLifetime, completedTtl)),
      heartbeatInterval: Duration.fromInputUnsafe(options.heartbeatInterval ?? "1 second"),
      producerTimeout,
      outageTimeout: Duration.max(Duration.fromInputUnsafe(options.outageTimeout ?? "30 seconds"), producerTimeout),
      pageSize: options.readPageSize ?? 500,
      pageBytes: options.readPageBytes ?? 4 * 1024 * 1024,
      liveBufferBytes,
      unreadLiveBytes: Math.min(liveBufferBytes, 64 * 1024),
      appendBuffer: options.appendBuffer ?? 10_000,
      shutdownGrace: Duration.fromInputUnsafe(options.shutdownGrace ?? "10 seconds"),
      producerId: randomUUID()
    }
  })
