/**
 * Resumable streams: a producer runs in the background and appends chunks to a Redis Stream; any number of readers
 * tail it live, and a reader that dropped resumes with a token from where it left off, until the end marker or a
 * typed error.
 *
 * - The runner runs detached from the caller: a client that disconnects does not stop it (disconnect is not cancel);
 *   `cancel` stops it wherever it runs, another instance included.
 * - Every chunk is written to Redis (for resumers) and handed in-process to the caller that started the run.
 * - Readers resume from the start or from after any entry id (an SSE `Last-Event-ID`), with no gap or duplicate
 *   between the backfill and the live tail, and share the client's connections (no connection per reader).
 * - The producer heartbeats; a reader of a run whose producer died fails with `ProducerLost` after
 *   `producerTimeout`. A second producer of the same run is fenced out.
 * - Runs are bounded: `maxChunks` (MAXLEN ~), `maxChunkBytes`, `maxLifetime` while running, `completedTtl` after.
 *
 * Wire format (River's): stream `{keyPrefix}{name}:{runId}` (the run id is a hash tag, so a run's keys share a cluster
 * slot), chunk entries `data = {"item": …}` plus `seq`, and a terminal entry `end = "true"` plus `status` and
 * `terminal` JSON. Meta in `…:meta`, live announcements on the channel `…:live`.
 *
 * @since 0.1.0
 */

import { randomUUID } from "node:crypto"
import { Context, Duration, Effect, Exit, Layer, Option, type Redacted, Schema, type Scope, type Stream } from "effect"
import * as RedisClient from "./RedisClient.js"
import { issueOf } from "./internal/issue.js"
import * as Names from "./internal/names.js"
import * as Access from "./internal/resumable/access.js"
import * as ActiveIndex from "./internal/resumable/active.js"
import { refusalError } from "./internal/resumable/ending.js"
import { fail, fromRedis } from "./internal/resumable/error.js"
import { runKeys } from "./internal/resumable/keys.js"
import * as Launch from "./internal/resumable/launch.js"
import { makeClock } from "./internal/liveTail.js"
import * as Page from "./internal/resumable/page.js"
import * as Reading from "./internal/resumable/reading.js"
import * as Runs from "./internal/resumable/runs.js"
import * as Scripts from "./internal/resumable/scripts.js"
import * as Settings from "./internal/resumable/settings.js"
import type { Terminal } from "./internal/resumable/wire.js"
import type { ResumableStreamError } from "./ResumableStreamError.js"
import * as Reasons from "./ResumableStreamError.js"

export * from "./ResumableStreamError.js"

/**
 * What a runner writes with. `append` and `appendAll` encode and check the chunks and buffer them; they return at
 * once unless the buffer is full (backpressure), and fail `ChunkTooLarge` or `Decode` for a bad chunk, or with the
 * error that stopped the run's writes (`Fenced`, `Cancelled`, `Expired`, `Redis`). `flush` waits until everything
 * appended so far is in Redis. The runner's end flushes by itself.
 *
 * @since 0.1.0
 */
export interface Writer<A> {
  readonly runId: string
  readonly append: (chunk: A) => Effect.Effect<void, ResumableStreamError>
  readonly appendAll: (chunks: Iterable<A>) => Effect.Effect<void, ResumableStreamError>
  readonly flush: Effect.Effect<void, ResumableStreamError>
}

/**
 * A named kind of stream: its input and chunk schemas, the schema of its runner's typed failure (optional; without
 * it a failure is recorded as `{ message }`), and the runner. The runner's success writes the end marker; its typed
 * failure or a defect writes a fatal error entry.
 *
 * @since 0.1.0
 */
export interface Definition<I, A, E, R> {
  readonly name: string
  readonly input: Schema.Codec<I, unknown>
  readonly chunk: Schema.Codec<A, unknown>
  readonly error?: Schema.Codec<E, unknown> | undefined
  /** The runner; it may fail with its own `E` or with what the writer fails with (`ChunkTooLarge`, `Cancelled`…). */
  readonly run: (input: I, writer: Writer<A>) => Effect.Effect<void, E | ResumableStreamError, R>
}

/**
 * Any definition, whatever its types (where definitions of different streams are held together).
 *
 * @since 0.1.0
 */
export type AnyDefinition = Definition<any, any, any, any>

/**
 * Declares a stream. The name becomes part of Redis keys and tokens: letters, digits, `_ . : -`.
 *
 * @since 0.1.0
 */
export const define = <I, A, E = never, R = never>(definition: Definition<I, A, E, R>): Definition<I, A, E, R> => {
  if (!Names.isSafe(definition.name)) throw new Error(`invalid stream name "${definition.name}" (${Names.rule})`)
  return definition
}

/**
 * One delivered chunk: its Redis entry id (use it as the SSE `id`, and as `after` to resume), its sequence number in
 * the run (1, 2, 3…), and the chunk.
 *
 * @since 0.1.0
 */
export interface Entry<A> {
  readonly id: string
  readonly seq: number
  readonly chunk: A
}

/**
 * A started run: the token to resume or cancel it, and the live stream of its chunks for the caller (in-process;
 * interrupting it does not stop the run).
 *
 * @since 0.1.0
 */
export interface Started<A> {
  readonly runId: string
  readonly token: string
  readonly stream: Stream.Stream<Entry<A>, ResumableStreamError>
}

/**
 * How a run ended: `completed`, `failed` (the runner failed, or Redis was away too long), `cancelled`, or `lost` (its
 * producer shut down without finishing it).
 *
 * @since 0.1.0
 */
export type RunStatus = Terminal["status"]

/**
 * Where a run is: `running` (its producer heartbeats), or how it ended; `lost` also for a run marked running whose
 * producer stopped heartbeating.
 *
 * @since 0.1.0
 */
export type RunState = "running" | RunStatus

/**
 * The run of a key (see `start`'s `key`): running, or `lost` (its producer died without ending it).
 *
 * @since 0.1.0
 */
export interface ActiveRun {
  readonly runId: string
  readonly token: string
  readonly state: RunState
}

/**
 * Options of `start`.
 *
 * @since 0.1.0
 */
export interface StartOptions {
  /** The run's id (URL-safe, ≤ 128 chars). Default: a UUID. */
  readonly runId?: string | undefined
  /**
   * What the run answers, e.g. a chat id: at most one run per key runs at a time. Starting another while one runs
   * fails `AlreadyRunning`; a run that ended (or lost its producer) gives way. `active` finds the key's run.
   */
  readonly key?: string | undefined
  /**
   * The most the returned stream holds for a caller that does not keep up (in bytes of chunks): past that, it reads
   * the rest from Redis where the caller stopped. Default: the layer's `liveBufferBytes`. An HTTP route sets it per
   * client.
   */
  readonly bufferBytes?: number | undefined
}

/**
 * Options of a `resume`.
 *
 * @since 0.1.0
 */
export interface ResumeOptions {
  /** Read the entries after this entry id; default: from the start. */
  readonly after?: string | undefined
  /**
   * The most this reader holds (in bytes of chunks): a catch-up page and the announcements waiting for a caller that
   * does not keep up, each about this much. Default: the layer's `readPageBytes` and `liveBufferBytes`.
   */
  readonly bufferBytes?: number | undefined
}

/**
 * A page of a run as it is now (see `readPage`): its chunks after an entry id, in their encoded (JSON) form; whether
 * the run's end follows them; the id of its last chunk so far (`0-0` before any).
 *
 * @since 0.1.0
 */
export interface RunPage {
  readonly entries: ReadonlyArray<Entry<unknown>>
  readonly ended: boolean
  readonly tail: string
}

/**
 * The `ResumableStream` service.
 *
 * @since 0.1.0
 */
export interface Service {
  /**
   * Starts a run of `definition` in the background. Its input is checked against the definition's schema first (the
   * checks a type cannot express, such as a length limit): `InvalidInput` when it does not pass.
   */
  readonly start: <I, A, E, R>(
    definition: Definition<I, A, E, R>,
    input: I,
    options?: StartOptions
  ) => Effect.Effect<Started<A>, ResumableStreamError>
  /**
   * The run of `key` of a stream (by definition or name): the one running, or one whose producer died while it ran
   * (`state: "lost"`); none once it ended (completed, failed, cancelled) or its data is gone.
   */
  readonly active: (
    stream: AnyDefinition | string,
    key: string
  ) => Effect.Effect<Option.Option<ActiveRun>, ResumableStreamError>
  /** Where the run of `token` is: running, or how it ended. Fails `Expired`/`NotFound` when its data is gone. */
  readonly status: (token: string) => Effect.Effect<RunState, ResumableStreamError>
  /** Reads a run from the start, or from after entry `after`, live until its end marker or a typed error. */
  readonly resume: <I, A, E, R>(
    definition: Definition<I, A, E, R>,
    token: string,
    options?: ResumeOptions
  ) => Stream.Stream<Entry<A>, ResumableStreamError>
  /**
   * Cancels a run wherever its producer runs, recording `reason`, and returns the run's final status: `cancelled`,
   * or how it had already ended (cancelling a finished run changes nothing).
   */
  readonly cancel: (token: string, reason?: string) => Effect.Effect<RunStatus, ResumableStreamError>
  /** `start` by name with unknown input, chunks in their encoded (JSON) form: for HTTP endpoints. */
  readonly startEncoded: (
    name: string,
    input: unknown,
    options?: StartOptions
  ) => Effect.Effect<Started<unknown>, ResumableStreamError>
  /** `resume` without decoding, chunks in their encoded (JSON) form: for HTTP endpoints. */
  readonly resumeEncoded: (
    token: string,
    options?: ResumeOptions
  ) => Stream.Stream<Entry<unknown>, ResumableStreamError>
  /**
   * A page of the run of `token` as it is now, without waiting (at most `maxEntries`, default the layer's
   * `readPageSize`): for protocols that read in requests. Chunks in their encoded (JSON) form.
   */
  readonly readPage: (
    token: string,
    options?: { readonly after?: string | undefined; readonly maxEntries?: number | undefined }
  ) => Effect.Effect<RunPage, ResumableStreamError>
  /** The stream name a token belongs to, after checking it. */
  readonly nameOf: (token: string) => Effect.Effect<string, ResumableStreamError>
  /**
   * Checks that `token` is valid and belongs to the stream `name`, and returns its run's id: `NotFound` when no stream
   * of that name is registered here, `InvalidToken` when the token is forged or another stream's, `Expired` when it
   * expired.
   */
  readonly checkToken: (token: string, name: string) => Effect.Effect<{ readonly runId: string }, ResumableStreamError>
}

/**
 * The resumable-stream service.
 *
 * @since 0.1.0
 */
export class ResumableStream extends Context.Service<ResumableStream, Service>()(
  "effect-redis-streams/ResumableStream"
) {}

/**
 * Options of {@link layer}.
 *
 * @since 0.1.0
 */
export interface Options<Defs extends ReadonlyArray<AnyDefinition>> {
  /** The streams this instance can start and read (River's router). */
  readonly streams: Defs
  /** Key prefix. Default `river:stream:` (River's). Must not contain `{` or `}`. */
  readonly keyPrefix?: string | undefined
  /**
   * Token secrets. With any, tokens are HMAC-signed with the first and verified against all (rotate by putting the
   * new secret first), and they expire after `tokenTtl`. Without, tokens are unsigned: anyone who can guess a run id
   * can read the run.
   */
  readonly secret?: Redacted.Redacted<string> | ReadonlyArray<Redacted.Redacted<string>> | undefined
  /**
   * Issue unsigned tokens when no `secret` is given (anyone who can guess a run id can read or cancel the run).
   * Default false: the layer refuses to build without a non-empty secret, so a missing environment variable is caught
   * at start, not by the first reader.
   */
  readonly unsignedTokens?: boolean | undefined
  /** How long a signed token is valid. Default: `maxLifetime` + `completedTtl`. */
  readonly tokenTtl?: Duration.Input | undefined
  /** Chunks kept per run (MAXLEN ~); a reader behind the trimmed part fails `Truncated`. Default 100,000. */
  readonly maxChunks?: number | undefined
  /** Largest encoded chunk, in bytes. Default 1 MiB. */
  readonly maxChunkBytes?: number | undefined
  /** How long a run may run; it is then stopped and fails `LifetimeExceeded`. Default 1 hour. */
  readonly maxLifetime?: Duration.Input | undefined
  /** How long a finished run stays readable. Default 1 hour. */
  readonly completedTtl?: Duration.Input | undefined
  /** How often producers refresh their heartbeat (and notice remote cancels). Default 1 second. */
  readonly heartbeatInterval?: Duration.Input | undefined
  /** A running run whose heartbeat is older than this has lost its producer. Default 5 seconds. */
  readonly producerTimeout?: Duration.Input | undefined
  /**
   * How long Redis may be unavailable (a failover, a restart) before a run gives up: its producer keeps what the
   * runner appends buffered and retries, and its readers wait, for this long. A longer outage ends the run with a
   * retryable `Redis` failure (its end is written once Redis is back). Default 30 seconds, and at least
   * `producerTimeout`.
   */
  readonly outageTimeout?: Duration.Input | undefined
  /** Chunks a run's writer buffers before `append` waits for Redis (backpressure). Default 10,000. */
  readonly appendBuffer?: number | undefined
  /** Most entries per XRANGE page when a reader catches up. Default 500. */
  readonly readPageSize?: number | undefined
  /** About how many bytes of entries an XRANGE page holds (fewer entries per page when they are large). Default 4 MiB. */
  readonly readPageBytes?: number | undefined
  /**
   * Most bytes of chunks waiting for a slow consumer, per reader and for the starter's own stream (64 KiB until the
   * starter's stream is first read: a run started for its token alone holds little). A consumer that falls further
   * behind stops receiving live chunks and reads them from Redis instead, from where it is, without gap or duplicate:
   * memory stays bounded however far behind it falls. Default 4 MiB.
   */
  readonly liveBufferBytes?: number | undefined
  /**
   * When the layer closes (a deploy, a SIGTERM), how long the runs this instance produces get to finish; those still
   * running then are stopped and end as `lost`: their readers fail `ProducerLost`. Default 10 seconds.
   */
  readonly shutdownGrace?: Duration.Input | undefined
}

/**
 * The services every runner of `Defs` needs.
 *
 * @since 0.1.0
 */
export type Services<Defs extends ReadonlyArray<AnyDefinition>> =
  Defs[number] extends Definition<any, any, any, infer R> ? R : never

/**
 * Builds the service. Runners, their heartbeats and the readers' resources live in the layer's scope; closing it
 * gives local runners `shutdownGrace` to finish, then interrupts them: their runs end as `lost` (`ProducerLost` for
 * their readers).
 *
 * @since 0.1.0
 */
export const make = <const Defs extends ReadonlyArray<AnyDefinition>>(
  options: Options<Defs>
): Effect.Effect<Service, ResumableStreamError, RedisClient.RedisClient | Scope.Scope | Services<Defs>> =>
  Effect.gen(function* () {
    const redis = yield* RedisClient.RedisClient
    const services = yield* Effect.context<Services<Defs>>()
    const layerScope = yield* Effect.scope
    const settings = yield* Settings.resolve(options)
    const { definitions, secrets } = settings
    const access = Access.make(settings)
    const runs = yield* Runs.make(redis, settings, layerScope)
    const clock = yield* makeClock(settings.heartbeatInterval)
    const reading = Reading.make(redis, settings, access, clock)

    /** Where a run is (undefined: its data is gone). */
    const stateOf = (name: string, runId: string) =>
      redis.eval(Scripts.status, [runKeys(settings.prefix, name, runId).meta], []).pipe(
        Effect.mapError(fromRedis(runId)),
        Effect.map((reply): RunState | undefined => {
          if (reply.length === 0) return undefined
          const [status, age] = reply
          if (status !== "running") return status as RunStatus
          return Number(age) > Duration.toMillis(settings.producerTimeout) ? "lost" : "running"
        })
      )

    const activeRuns = ActiveIndex.make({
      redis,
      prefix: settings.prefix,
      hold: Duration.sum(settings.maxLifetime, settings.producerTimeout),
      stateOf
    })

    const launchContext: Launch.LaunchContext = {
      redis,
      settings,
      runs,
      access,
      activeRuns,
      services: services as Context.Context<unknown>,
      readFrom: (definition, token, readOptions) =>
        definition === undefined
          ? reading.resumeEncoded(token, readOptions)
          : reading.resume(definition, token, readOptions)
    }

    /** A run id given, or a new one; `InvalidInput` for one that is not safe in a key. */
    const runIdOf = (startOptions: StartOptions | undefined) => {
      const runId = startOptions?.runId ?? randomUUID()
      return Names.isSafe(runId)
        ? Effect.succeed(runId)
        : Effect.fail(fail(Reasons.InvalidInput, `a run id must be ${Names.rule}`))
    }

    const start = Effect.fn("ResumableStream.start")(function* <I, A, E, R>(
      definition: Definition<I, A, E, R>,
      input: I,
      startOptions?: StartOptions
    ) {
      if (definitions.get(definition.name) !== (definition as AnyDefinition)) {
        return yield* fail(Reasons.NotFound, `stream "${definition.name}" is not registered in this layer`)
      }
      // typed input may still break the schema's checks (a length limit, a range): checked as HTTP input is
      const checked = Schema.encodeUnknownExit(definition.input)(input)
      if (Exit.isFailure(checked)) {
        return yield* fail(Reasons.InvalidInput, `input does not match the schema: ${issueOf(checked.cause)}`)
      }
      const runId = yield* runIdOf(startOptions)
      const started = yield* Launch.launch(launchContext, definition, input, runId, false, startOptions)
      return started as Started<A>
    })

    const startEncoded = Effect.fn("ResumableStream.startEncoded")(function* (
      name: string,
      input: unknown,
      startOptions?: StartOptions
    ) {
      const definition = definitions.get(name)
      if (definition === undefined) return yield* fail(Reasons.NotFound, `no stream named "${name}"`)
      const decoded = Schema.decodeUnknownExit(definition.input)(input)
      if (Exit.isFailure(decoded)) {
        return yield* fail(Reasons.InvalidInput, `input does not match the schema: ${issueOf(decoded.cause)}`)
      }
      const runId = yield* runIdOf(startOptions)
      return yield* Launch.launch(launchContext, definition, decoded.value, runId, true, startOptions)
    })

    const cancel = Effect.fn("ResumableStream.cancel")(function* (token: string, reason?: string) {
      const payload = yield* access.verify(token)
      const keys = runKeys(settings.prefix, payload.name, payload.runId)
      const terminal: Terminal = { status: "cancelled", ...(reason === undefined ? {} : { reason }) }
      const reply = yield* redis
        .eval(
          Scripts.finish,
          [keys.stream, keys.meta],
          ["", "cancelled", JSON.stringify(terminal), Duration.toMillis(settings.completedTtl), keys.channel]
        )
        .pipe(Effect.mapError(fromRedis(payload.runId)))
      if (Scripts.isRefusal(reply)) {
        // over already: cancelling changes nothing, and says how it ended
        if (reply[0] === "FINISHED") return reply[1] as RunStatus
        return yield* refusalError(reply, payload.runId)
      }
      yield* runs.stop(
        keys.meta,
        fail(Reasons.Cancelled, `the run was cancelled${reason ? `: ${reason}` : ""}`, payload.runId)
      )
      return "cancelled" satisfies RunStatus
    })

    const active = (stream: AnyDefinition | string, key: string) => {
      const name = typeof stream === "string" ? stream : stream.name
      if (!definitions.has(name)) return Effect.fail(fail(Reasons.NotFound, `no stream named "${name}" here`))
      return Effect.map(activeRuns.current(name, key), (run) =>
        run === undefined || (run.state !== "running" && run.state !== "lost")
          ? Option.none()
          : Option.some({ runId: run.runId, token: access.tokenFor(name, run.runId), state: run.state })
      )
    }

    const status = (token: string) =>
      Effect.flatMap(access.verify(token), (payload) =>
        Effect.flatMap(stateOf(payload.name, payload.runId), (state) =>
          state === undefined
            ? Effect.fail(
                fail(secrets.length > 0 ? Reasons.Expired : Reasons.NotFound, "the run's data is gone", payload.runId)
              )
            : Effect.succeed(state)
        )
      )

    // on close, local runs get `shutdownGrace` to finish (heartbeats go on meanwhile); then the runs' scope stops the rest
    yield* Effect.addFinalizer(() => runs.drain)

    return {
      start,
      active,
      status,
      resume: reading.resume,
      cancel,
      startEncoded,
      resumeEncoded: reading.resumeEncoded,
      readPage: Page.make(redis, settings, access),
      nameOf: (token) => Effect.map(access.verify(token), (payload) => payload.name),
      checkToken: (token, name) => Effect.map(access.verifyFor(token, name), (payload) => ({ runId: payload.runId }))
    } satisfies Service
  })

/**
 * The `ResumableStream` service for `options.streams`, on the `RedisClient` in context.
 *
 * @since 0.1.0
 */
export const layer = <const Defs extends ReadonlyArray<AnyDefinition>>(
  options: Options<Defs>
): Layer.Layer<ResumableStream, ResumableStreamError, RedisClient.RedisClient | Services<Defs>> =>
  Layer.effect(ResumableStream, make(options))
