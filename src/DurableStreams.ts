/**
 * Durable Streams on Redis: append-only streams addressed by name, with the semantics of the open Durable Streams
 * protocol (durable-streams/durable-streams, `PROTOCOL.md`): create with a content type, a sliding TTL or an expiry;
 * append bytes, or JSON messages in JSON mode (`application/json`: a top-level array is a batch of messages);
 * `Stream-Seq` ordering; idempotent producers (`Producer-Id`, epoch, sequence: retries are deduplicated, stale epochs
 * fenced); close (with a final append, atomically); fork at an offset; delete (soft while forks reference it); read
 * from an offset (`-1` the start, `now` the tail, or an offset this service returned), and wait for what comes next.
 *
 * Every stream lives in Redis (its metadata, its entries as a Redis stream, its producers' state, under one hash
 * tag): every write is one script, so checks and write are atomic whichever instance runs them, and any number of
 * instances serve the same streams. Each write that moves a tail is announced on the stream's channel: a reader
 * waiting at any instance wakes at once. `DurableStreamsHttp` serves the protocol over HTTP.
 *
 * @since 0.1.0
 */

import { Context, Duration, Effect, Layer, type Scope } from "effect"
import * as RedisClient from "./RedisClient.js"
import * as Reasons from "./DurableStreamsError.js"
import type { DurableStreamsError } from "./DurableStreamsError.js"
import { fail, fromRedis } from "./internal/durable/errors.js"
import { createFork } from "./internal/durable/fork.js"
import * as Offsets from "./internal/durable/offsets.js"
import * as Reads from "./internal/durable/reads.js"
import * as Store from "./internal/durable/store.js"
import * as Wake from "./internal/durable/wake.js"

export * from "./DurableStreamsError.js"

/**
 * How to create a stream (all optional). `ttlSeconds` and `expiresAt` exclude each other.
 *
 * @since 0.1.0
 */
export interface CreateOptions {
  /** The stream's content type. Default `application/octet-stream` (a fork: its source's). */
  readonly contentType?: string | undefined
  /** A sliding time to live: the stream expires after this long without a read or a write. */
  readonly ttlSeconds?: number | undefined
  /** An absolute expiry. */
  readonly expiresAt?: Date | undefined
  /** Create it closed (its body, if any, is all it will ever hold). */
  readonly closed?: boolean | undefined
  /** Its first content (JSON mode: a value, or an array of messages). */
  readonly body?: Uint8Array | undefined
  /** Create it as a fork of another stream. */
  readonly fork?: ForkOptions | undefined
}

/**
 * A fork's source and divergence point.
 *
 * @since 0.1.0
 */
export interface ForkOptions {
  /** The source stream's name. */
  readonly from: string
  /** The offset it diverges at (an offset the source returned). Default: the source's tail. */
  readonly offset?: string | undefined
  /** Bytes (JSON mode: messages) past `offset` that the fork inherits too. Default 0. */
  readonly subOffset?: number | undefined
}

/**
 * What a create did.
 *
 * @since 0.1.0
 */
export interface Created {
  /** False when the stream existed already with this configuration (an idempotent create). */
  readonly created: boolean
  readonly contentType: string
  readonly nextOffset: string
  readonly closed: boolean
}

/**
 * An idempotent producer: a stable id, an epoch it raises at each restart, a sequence number per request within an
 * epoch (from 0).
 *
 * @since 0.1.0
 */
export interface Producer {
  readonly id: string
  readonly epoch: number
  readonly seq: number
}

/**
 * How to append.
 *
 * @since 0.1.0
 */
export interface AppendOptions {
  /** The body's content type: must be the stream's (required with a body). */
  readonly contentType?: string | undefined
  /** A writer sequence: must sort (byte-wise) above the last one given. */
  readonly streamSeq?: string | undefined
  /** The idempotent producer writing. */
  readonly producer?: Producer | undefined
  /** Close the stream after this append (an empty body: close only). */
  readonly close?: boolean | undefined
}

/**
 * What an append did.
 *
 * @since 0.1.0
 */
export interface Appended {
  /** True when a producer's request had been applied already: nothing was written this time. */
  readonly duplicate: boolean
  readonly nextOffset: string
  readonly closed: boolean
  /** For a producer: its epoch and the highest sequence number accepted in it. */
  readonly producer?: { readonly epoch: string; readonly seq: string } | undefined
}

/**
 * A stream's metadata.
 *
 * @since 0.1.0
 */
export interface StreamInfo {
  readonly contentType: string
  /** The tail: the offset after the last entry. */
  readonly nextOffset: string
  readonly closed: boolean
  readonly ttlSeconds: number | undefined
  /** The expiry as RFC 3339. */
  readonly expiresAt: string | undefined
  /** This incarnation of the stream (a stream deleted and created again gets another). */
  readonly id: string
}

/**
 * A read: the entries after `offset` (bytes chunks, or JSON messages' texts in JSON mode), and where to go on from.
 *
 * @since 0.1.0
 */
export interface ReadResult extends StreamInfo {
  /** Where the read started (`-1` and `now` resolved). */
  readonly offset: string
  readonly entries: ReadonlyArray<Uint8Array>
  /** True when the read reached the tail. With `closed`, the end of the stream. */
  readonly upToDate: boolean
}

/**
 * How to read.
 *
 * @since 0.1.0
 */
export interface ReadOptions {
  /** When nothing follows the offset and the stream is open, wait this long for an append. Default: no wait. */
  readonly wait?: Duration.Input | undefined
  /** The most bytes of entries returned (at least one entry is). Default the layer's `maxReadBytes`. */
  readonly maxBytes?: number | undefined
}

/**
 * The service.
 *
 * @since 0.1.0
 */
export interface Service {
  /** The prefix of every key of this service. */
  readonly keyPrefix: string
  /** Creates a stream, or finds it created with the same configuration (`created: false`); a fork when asked. */
  readonly create: (name: string, options?: CreateOptions) => Effect.Effect<Created, DurableStreamsError>
  /** Appends to a stream (and/or closes it). */
  readonly append: (
    name: string,
    body: Uint8Array | string,
    options?: AppendOptions
  ) => Effect.Effect<Appended, DurableStreamsError>
  /** Closes a stream (idempotent). */
  readonly close: (name: string) => Effect.Effect<Appended, DurableStreamsError>
  /** Reads from `offset` (`-1` or absent: the start; `now`: the tail), waiting for an append when asked. */
  readonly read: (
    name: string,
    offset?: string | undefined,
    options?: ReadOptions
  ) => Effect.Effect<ReadResult, DurableStreamsError>
  /** A stream's metadata; does not reset its TTL. */
  readonly head: (name: string) => Effect.Effect<StreamInfo, DurableStreamsError>
  /** Deletes a stream (soft while forks reference it: its name then answers `Gone`). */
  readonly delete: (name: string) => Effect.Effect<void, DurableStreamsError>
  /**
   * Listens for the appends (and the deletion) of a stream until the scope closes: the returned wait resolves true
   * at the next announcement since the previous wait, false at its timeout. Listen before reading: nothing appended
   * after the read is missed.
   */
  readonly changes: (name: string) => Effect.Effect<Wake.Wait, DurableStreamsError, Scope.Scope>
}

/**
 * The service's tag.
 *
 * @since 0.1.0
 */
export class DurableStreams extends Context.Service<DurableStreams, Service>()("effect-redis-streams/DurableStreams") {}

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Prefix of every key. Default `ds:`. */
  readonly keyPrefix?: string | undefined
  /** The most bytes one read returns (at least one entry). Default 1 MiB. */
  readonly maxReadBytes?: number | undefined
  /** The most entries one read returns. Default 1,000. */
  readonly maxReadEntries?: number | undefined
  /**
   * Keep at most this many entries per stream (an append of bytes is one, each JSON message one): older ones are
   * trimmed at each append, a read from the start begins at the oldest kept, and a read from an offset before it fails
   * `Gone` (HTTP 410). Default: keep everything until the stream is deleted or expires.
   */
  readonly retainEntries?: number | undefined
}

/** The longest sliding TTL a stream may have: ten years. */
const maxTtlSeconds = 10 * 365 * 24 * 3600

/**
 * Builds the service on the `RedisClient` in context (an option that is not a positive integer is a defect).
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<Service, never, RedisClient.RedisClient | Scope.Scope> =>
  Effect.gen(function* () {
    const redis = yield* RedisClient.RedisClient
    for (const [option, value] of Object.entries({
      maxReadBytes: options.maxReadBytes,
      maxReadEntries: options.maxReadEntries,
      retainEntries: options.retainEntries
    })) {
      if (value !== undefined && !(Number.isSafeInteger(value) && value >= 1)) {
        return yield* Effect.die(new Error(`DurableStreams: ${option} must be a positive integer, got ${value}`))
      }
    }
    const keyPrefix = options.keyPrefix ?? "ds:"
    const maxReadBytes = options.maxReadBytes ?? 1024 * 1024
    const store = Store.make(redis, keyPrefix, options.maxReadEntries ?? 1000, options.retainEntries)
    const collapsed = Reads.make(store, yield* Effect.scope)

    /** A name's refusal: empty, longer than 1,024 characters, or with a brace (the hash tag of its keys). */
    const badName = (name: string) =>
      name === "" || name.length > 1024 || /[{}]/.test(name)
        ? fail(name, Reasons.InvalidRequest, "a stream name is 1 to 1,024 characters, without braces")
        : undefined

    const changes = (name: string) =>
      Wake.listen(redis, store.keysOf(name).channel).pipe(Effect.mapError(fromRedis(name)))

    const read = (name: string, offset?: string, readOptions: ReadOptions = {}) => {
      const requested = Offsets.requested(offset)
      if (requested === undefined) return fail(name, Reasons.InvalidRequest, `malformed offset ${offset}`)
      const maxBytes = readOptions.maxBytes ?? maxReadBytes
      const once = (touch: boolean) => collapsed({ name, requested, maxBytes, touch })
      if (readOptions.wait === undefined) return once(true)
      const wait = readOptions.wait
      return Effect.scoped(
        Effect.gen(function* () {
          const next = yield* changes(name)
          const first = yield* once(true)
          if (first.entries.length > 0 || first.closed || !first.upToDate) return first
          // `now` waits from the tail it found
          const from = { _tag: "At" as const, position: Offsets.parse(first.nextOffset)! }
          const deadline = Date.now() + Duration.toMillis(Duration.fromInputUnsafe(wait))
          while (Date.now() < deadline) {
            if (!(yield* next(Duration.millis(deadline - Date.now())))) break
            const again = yield* collapsed({ name, requested: from, maxBytes, touch: false })
            if (again.entries.length > 0 || again.closed) return again
          }
          return first
        })
      )
    }

    const append = (name: string, body: Uint8Array | string, appendOptions: AppendOptions = {}) =>
      store.append(name, typeof body === "string" ? Buffer.from(body, "utf8") : body, appendOptions)

    /** Runs `operation` on a well-formed name (and fork source), else fails `InvalidRequest`. */
    const named =
      <Args extends ReadonlyArray<unknown>, A, R>(
        operation: (name: string, ...args: Args) => Effect.Effect<A, DurableStreamsError, R>
      ) =>
      (name: string, ...args: Args): Effect.Effect<A, DurableStreamsError, R> =>
        badName(name) ?? operation(name, ...args)

    return {
      keyPrefix,
      create: named((name, createOptions: CreateOptions = {}) => {
        const { ttlSeconds, expiresAt } = createOptions
        if (ttlSeconds !== undefined && expiresAt !== undefined) {
          return fail(name, Reasons.InvalidRequest, "a stream has a TTL or an expiry, not both")
        }
        if (
          ttlSeconds !== undefined &&
          !(Number.isInteger(ttlSeconds) && ttlSeconds >= 1 && ttlSeconds <= maxTtlSeconds)
        ) {
          return fail(name, Reasons.InvalidRequest, `a TTL is 1 to ${maxTtlSeconds} seconds`)
        }
        if (expiresAt !== undefined && !(expiresAt.getTime() > Date.now())) {
          return fail(name, Reasons.InvalidRequest, "an expiry must be in the future")
        }
        const fork = createOptions.fork
        if (fork !== undefined) return badName(fork.from) ?? createFork(store, name, fork.from, createOptions)
        return store.create(name, {
          contentType: createOptions.contentType ?? "application/octet-stream",
          ttlSeconds: createOptions.ttlSeconds,
          expiresAt: createOptions.expiresAt,
          closed: createOptions.closed === true,
          body: createOptions.body ?? new Uint8Array()
        })
      }),
      append: named(append),
      close: named((name) => append(name, new Uint8Array(), { close: true })),
      read: named(read),
      head: named(store.head),
      delete: named(store.remove),
      changes: named(changes)
    } satisfies Service
  })

/**
 * The service on the `RedisClient` in context.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<DurableStreams, never, RedisClient.RedisClient> =>
  Layer.effect(DurableStreams, make(options))
