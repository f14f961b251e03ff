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
import {
  Cause,
  Context,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Metric,
  Option,
  Queue,
  Redacted,
  Result,
  Schedule,
  Schema,
  Scope,
  Stream
} from "effect"
import * as RedisClient from "./RedisClient.js"
import { redisError } from "./internal/reasons.js"
import { issueOf } from "./internal/issue.js"
import * as Outage from "./internal/outage.js"
import { decodeFailure, describedReasonOf, fail, failed, fromRedis } from "./internal/resumable/error.js"
import { ResumableStreamError } from "./ResumableStreamError.js"
import * as Names from "./internal/names.js"
import * as ActiveIndex from "./internal/resumable/active.js"
import { type RunKeys, runKeys } from "./internal/resumable/keys.js"
import { makeClock, read } from "./internal/resumable/reader.js"
import * as Scripts from "./internal/resumable/scripts.js"
import * as Token from "./internal/resumable/token.js"
import * as RunWriter from "./internal/resumable/writer.js"
import { isEntryId, isStartId, type Terminal } from "./internal/resumable/wire.js"
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

const runsStarted = Metric.counter("resumable_stream_runs_started", { description: "runs started" })
const chunksAppended = Metric.counter("resumable_stream_chunks_appended", { description: "chunks appended" })
const liveOverflows = Metric.counter("resumable_stream_live_overflows", {
  description: "times a slow consumer's live buffer filled up and it went on reading from Redis"
})

/** A chunk waiting in the starter's own stream, and its stored size. */
interface LiveChunk {
  readonly entry: Entry<unknown>
  readonly bytes: number
}

/** A run produced by this instance. */
interface LocalRun {
  readonly runId: string
  /** The key whose active run it is, if any. */
  readonly key: string | undefined
  readonly keys: RunKeys
  readonly generation: string
  fiber: Fiber.Fiber<void> | undefined
  /** Set when the run was ended elsewhere (cancelled, fenced, gone): the runner's exit writes no marker. */
  stoppedBy: ResumableStreamError | undefined
}

const refusalError = (refusal: Scripts.Refusal, runId: string): ResumableStreamError => {
  switch (refusal[0]) {
    case "GONE":
      return fail(Reasons.Expired, "the run's data is gone", runId)
    case "FENCED":
      return fail(Reasons.Fenced, "another producer took this run over", runId)
    case "RUNNING":
      return fail(Reasons.AlreadyRunning, "a live producer holds this run", runId)
    case "FINISHED":
      return refusal[1] === "cancelled"
        ? fail(Reasons.Cancelled, "the run was cancelled", runId)
        : fail(Reasons.AlreadyFinished, `the run is already ${refusal[1]}`, runId)
  }
}

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
    const context = yield* Effect.context<Services<Defs>>()
    const layerScope = yield* Effect.scope
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
    const maxChunks = options.maxChunks ?? 100_000
    const maxChunkBytes = options.maxChunkBytes ?? 1024 * 1024
    const maxLifetime = Duration.fromInputUnsafe(options.maxLifetime ?? "1 hour")
    const completedTtl = Duration.fromInputUnsafe(options.completedTtl ?? "1 hour")
    const tokenTtl = Duration.fromInputUnsafe(options.tokenTtl ?? Duration.sum(maxLifetime, completedTtl))
    const heartbeatInterval = Duration.fromInputUnsafe(options.heartbeatInterval ?? "1 second")
    const producerTimeout = Duration.fromInputUnsafe(options.producerTimeout ?? "5 seconds")
    const outageTimeout = Duration.max(Duration.fromInputUnsafe(options.outageTimeout ?? "30 seconds"), producerTimeout)
    const pageSize = options.readPageSize ?? 500
    const pageBytes = options.readPageBytes ?? 4 * 1024 * 1024
    const liveBufferBytes = options.liveBufferBytes ?? 4 * 1024 * 1024
    /** What a starter's stream keeps while nobody reads it: a run started for its token alone holds little. */
    const unreadLiveBytes = Math.min(liveBufferBytes, 64 * 1024)
    const countOverflow = () => Effect.runSync(Metric.update(liveOverflows, 1))
    const appendBuffer = options.appendBuffer ?? 10_000
    const producerId = randomUUID()
    const shutdownGrace = Duration.fromInputUnsafe(options.shutdownGrace ?? "10 seconds")
    // runners live in a scope of their own, closed after their grace period when the layer closes
    const runsScope = yield* Scope.fork(layerScope)
    /** Local runs by their meta key (a run id may be reused by another stream). */
    const localRuns = new Map<string, LocalRun>()

    const keysOf = (name: string, runId: string) => runKeys(prefix, name, runId)

    const tokenFor = (name: string, runId: string) => {
      const now = Date.now()
      return Token.issue(
        {
          name,
          runId,
          issuedAt: now,
          expiresAt: secrets.length === 0 ? undefined : now + Duration.toMillis(tokenTtl)
        },
        secrets
      )
    }

    const verify = (token: string) => {
      const checked = Token.verify(token, secrets, Date.now())
      if ("problem" in checked) {
        return checked.problem === "Expired"
          ? Effect.fail(fail(Reasons.Expired, "the token expired"))
          : Effect.fail(fail(Reasons.InvalidToken, `invalid token (${checked.problem})`))
      }
      if (!definitions.has(checked.payload.name)) {
        return Effect.fail(
          fail(Reasons.NotFound, `no stream named "${checked.payload.name}" here`, checked.payload.runId)
        )
      }
      return Effect.succeed(checked.payload)
    }

    /** `verify`, for a token that must belong to stream `name` (registered here: `NotFound` otherwise). */
    const verifyFor = (token: string, name: string) => {
      if (!definitions.has(name)) return Effect.fail(fail(Reasons.NotFound, `no stream named "${name}" here`))
      return Effect.flatMap(verify(token), (payload) =>
        payload.name === name
          ? Effect.succeed(payload)
          : Effect.fail(
              fail(Reasons.InvalidToken, `the token is for a stream "${payload.name}", not "${name}"`, payload.runId)
            )
      )
    }

    // ---- producing ----

    /**
     * The layer is closing and its shutdown grace is over: ends of runs are no longer waited for (one attempt each;
     * readers then judge a run whose end was not written by its heartbeat).
     */
    let closing = false

    /**
     * Writes the end of a run, retrying while Redis is unavailable for up to `within` (forever: undefined), and not
     * once the layer is closing.
     */
    const finishRun = (run: LocalRun, terminal: Terminal, within: Duration.Duration | undefined) =>
      redis
        .eval(
          Scripts.finish,
          [run.keys.stream, run.keys.meta],
          [run.generation, terminal.status, JSON.stringify(terminal), Duration.toMillis(completedTtl), run.keys.channel]
        )
        .pipe(
          Effect.retry({
            schedule: within === undefined ? Outage.backoff : Schedule.upTo(Outage.backoff, { duration: within }),
            while: (e) => e.isRetryable && !closing
          }),
          Effect.mapError(fromRedis(run.runId)),
          Effect.flatMap((reply) =>
            Scripts.isRefusal(reply) ? Effect.fail(refusalError(reply, run.runId)) : Effect.succeed(reply[0])
          )
        )

    /** The writer's error that means the run was ended by someone else (no marker to write), if any. */
    const endedElsewhereBy = (exit: Exit.Exit<void, unknown>): ResumableStreamError | undefined => {
      if (Exit.isSuccess(exit)) return undefined
      const failure = exit.cause.reasons.find(Cause.isFailReason)
      const error = failure?.error
      return error instanceof ResumableStreamError && ["Fenced", "Cancelled", "Expired"].includes(error.reason._tag)
        ? error
        : undefined
    }

    const terminalOf = (exit: Exit.Exit<void, unknown>, definition: AnyDefinition, timedOut: boolean): Terminal => {
      if (timedOut)
        return { status: "failed", reason: "LifetimeExceeded", message: "the run exceeded its max lifetime" }
      if (Exit.isSuccess(exit)) return { status: "completed" }
      const failure = exit.cause.reasons.find(Cause.isFailReason)
      if (failure !== undefined) {
        const error = failure.error
        if (error instanceof ResumableStreamError) {
          // the writer's own failure (a chunk too large, an outage…): readers get the same reason
          const reason = RunWriter.isOutage(error) ? "RedisUnavailable" : error.reason._tag
          return { status: "failed", reason, message: error.message }
        }
        if (definition.error !== undefined) {
          const encoded = Schema.encodeExit(definition.error)(error)
          if (Exit.isSuccess(encoded)) return { status: "failed", error: encoded.value }
        }
        const message = error instanceof Error ? error.message : String(error)
        return { status: "failed", message: `the runner failed: ${message}`, error: { message } }
      }
      if (Cause.hasInterruptsOnly(exit.cause)) {
        return { status: "lost", reason: "ProducerShutdown", message: "the producer shut down" }
      }
      return { status: "failed", reason: "Defect", message: "the runner died unexpectedly" }
    }

    const launch = <I, A, E, R>(
      definition: Definition<I, A, E, R>,
      input: I,
      runId: string,
      liveEncoded: boolean,
      startOptions: StartOptions | undefined
    ) =>
      Effect.gen(function* () {
        const key = startOptions?.key
        const bufferBytes = startOptions?.bufferBytes ?? liveBufferBytes
        const keys = keysOf(definition.name, runId)
        if (key !== undefined) yield* activeRuns.claim(definition.name, key, runId)
        /** Gives the key up (when the run ends, or did not start); a failure is logged: the key expires anyway. */
        const releaseKey =
          key === undefined
            ? Effect.void
            : activeRuns
                .release(definition.name, key, runId)
                .pipe(
                  Effect.catch((error) =>
                    Effect.logWarning(`ResumableStream: the key of run ${runId} stays until it expires`, error)
                  )
                )
        const claimed = yield* redis
          .eval(
            Scripts.claim,
            [keys.meta],
            [
              producerId,
              Duration.toMillis(maxLifetime) + Duration.toMillis(completedTtl),
              Duration.toMillis(producerTimeout)
            ]
          )
          .pipe(
            Effect.mapError(fromRedis(runId)),
            Effect.tapError(() => releaseKey)
          )
        if (Scripts.isRefusal(claimed)) return yield* Effect.andThen(releaseKey, refusalError(claimed, runId))
        const run: LocalRun = {
          runId,
          key,
          keys,
          generation: String(claimed[0]),
          fiber: undefined,
          stoppedBy: undefined
        }
        // the starter's own stream: written chunks, up to `liveBufferBytes` waiting for the caller (`unreadLiveBytes`
        // until the caller starts reading it); past that, the caller reads the rest from Redis after the last chunk it
        // took
        const live = yield* Queue.unbounded<LiveChunk, ResumableStreamError | Cause.Done>()
        let liveBytes = 0
        let reading = false
        let overflowed = false
        let lastTaken: string | undefined
        /** Ends the starter's stream with the run (from Redis when it overflowed: the end marker is there). */
        const endLive = (error?: ResumableStreamError) =>
          overflowed || error === undefined ? Queue.end(live) : Queue.fail(live, error)
        let timedOut = false
        let keepKey = false
        // the runner, then its writer's close (what it appended is written before the end marker)
        const body = Effect.scoped(
          Effect.gen(function* () {
            const writer = yield* RunWriter.make<A>({
              redis,
              keys,
              runId,
              generation: run.generation,
              startSeq: claimed[1],
              maxChunks,
              maxChunkBytes,
              bufferSize: appendBuffer,
              maxBatchChunks: 1000,
              maxBatchBytes: 1024 * 1024,
              outageTimeout,
              encode: Schema.encodeExit(definition.chunk),
              refusal: (refusal) => refusalError(refusal, runId),
              onWritten: (batch) =>
                Effect.suspend(() => {
                  for (const { id, seq, chunk, encoded, bytes } of batch) {
                    if (overflowed) break
                    if (liveBytes + bytes > (reading ? bufferBytes : Math.min(bufferBytes, unreadLiveBytes))) {
                      overflowed = true
                      countOverflow()
                      break
                    }
                    liveBytes += bytes
                    Queue.offerUnsafe(live, { entry: { id, seq, chunk: liveEncoded ? encoded : chunk }, bytes })
                  }
                  return Metric.update(chunksAppended, batch.length)
                })
            })
            const ran = yield* Effect.exit(
              definition.run(input, writer).pipe(
                Effect.timeoutOrElse({
                  duration: maxLifetime,
                  orElse: () =>
                    Effect.sync(() => {
                      timedOut = true
                    })
                }),
                Effect.provideContext(context as Context.Context<R>)
              )
            )
            const closed = yield* Effect.exit(writer.close)
            // a writer stopped by an outage explains the run's end better than the runner's failure to append
            const outage =
              Exit.isFailure(closed) && Cause.findErrorOption(closed.cause).pipe(Option.exists(RunWriter.isOutage))
            return yield* Exit.isFailure(ran) && !outage ? ran : closed
          })
        )
        // the runner outlives `start`, in a span of its own that continues start's trace
        const startSpan = yield* Effect.option(Effect.currentSpan)
        const runner = body.pipe(
          Effect.withSpan(`ResumableStream.run ${definition.name}`, {
            parent: Option.getOrUndefined(startSpan),
            attributes: { "resumable_stream.run_id": runId }
          }),
          Effect.onExit((exit) =>
            Effect.gen(function* () {
              const endedElsewhere = run.stoppedBy ?? endedElsewhereBy(exit)
              if (endedElsewhere !== undefined) {
                // cancelled, fenced or expired: whoever ended the run wrote its marker
                localRuns.delete(keys.meta)
                return yield* endLive(endedElsewhere)
              }
              const terminal = terminalOf(exit, definition, timedOut)
              // a run its producer gave up (shutdown) keeps its key: the key's readers find it and learn how it ended
              keepKey = terminal.status === "lost"
              const end = endLive(
                terminal.status === "completed" ? undefined : terminalError(terminal, definition, runId)
              )
              const written = yield* Effect.exit(finishRun(run, terminal, outageTimeout))
              if (
                Exit.isSuccess(written) ||
                !Cause.findErrorOption(written.cause).pipe(Option.exists((e: ResumableStreamError) => e.isRetryable))
              ) {
                localRuns.delete(keys.meta)
                if (Exit.isFailure(written))
                  yield* Effect.logWarning(`ResumableStream: could not record the end of run ${runId}`, written.cause)
                return yield* end
              }
              // Redis is still away: the starter learns now; the end is written (and heartbeats go on) once it is back
              yield* Effect.logWarning(`ResumableStream: the end of run ${runId} waits for Redis`)
              yield* end
              yield* finishRun(run, terminal, undefined).pipe(
                Effect.ignore,
                Effect.ensuring(Effect.sync(() => localRuns.delete(keys.meta)))
              )
            })
          ),
          Effect.ensuring(Effect.suspend(() => (keepKey ? Effect.void : releaseKey))),
          Effect.asVoid,
          Effect.catchCause(() => Effect.void)
        )
        localRuns.set(keys.meta, run)
        run.fiber = yield* Effect.forkIn(runner, runsScope)
        yield* Metric.update(runsStarted, 1)
        const token = tokenFor(definition.name, runId)
        const rest = Stream.suspend(() =>
          !overflowed
            ? Stream.empty
            : liveEncoded
              ? resumeEncoded(token, { after: lastTaken, bufferBytes: startOptions?.bufferBytes })
              : resume(definition as AnyDefinition, token, { after: lastTaken, bufferBytes: startOptions?.bufferBytes })
        )
        const stream = Stream.suspend(() => {
          reading = true
          return Stream.fromQueue(live).pipe(
            Stream.map(({ entry, bytes }) => {
              liveBytes -= bytes
              lastTaken = entry.id
              return entry
            }),
            Stream.concat(rest),
            Stream.ensuring(Queue.shutdown(live))
          )
        })
        return { runId, token, stream } satisfies Started<unknown>
      })

    const terminalError = (terminal: Terminal, definition: AnyDefinition, runId: string) => {
      switch (terminal.status) {
        case "completed":
          return failed("completed", runId, undefined)
        case "cancelled":
          return fail(Reasons.Cancelled, `the run was cancelled${terminal.reason ? `: ${terminal.reason}` : ""}`, runId)
        case "lost":
          return fail(Reasons.ProducerLost, terminal.message ?? "the producer stopped", runId)
        case "failed": {
          const described = describedReasonOf(terminal.reason)
          if (described !== undefined) return fail(described, terminal.message ?? "", runId)
          if (terminal.reason === "RedisUnavailable") {
            const message = terminal.message ?? "Redis was unavailable for too long"
            return fromRedis(runId)(redisError("ResumableStream.append", "Connection", message))
          }
          const decoded =
            definition.error === undefined || terminal.error === undefined
              ? undefined
              : Schema.decodeUnknownExit(definition.error)(terminal.error)
          const error = decoded !== undefined && Exit.isSuccess(decoded) ? decoded.value : terminal.error
          return failed(terminal.message ?? "the runner failed", runId, error)
        }
      }
    }

    // one heartbeat loop for every local run: refreshes heartbeats, and stops runners ended elsewhere
    // (one pipelined call per node: on a Cluster, runs live on different masters)
    const heartbeatOutage = Outage.make("ResumableStream heartbeat")
    const beat = Effect.gen(function* () {
      const runs = Array.from(localRuns.values())
      if (runs.length === 0) return
      const replies = yield* redis.evalMany(
        Scripts.heartbeat,
        runs.map((run) => [[run.keys.meta], [run.generation]] as const)
      )
      const failure = replies.find(Result.isFailure)
      yield* failure === undefined ? heartbeatOutage.succeeded : heartbeatOutage.failed(failure.failure)
      yield* Effect.forEach(
        replies,
        (reply, index) => {
          const run = runs[index]
          if (Result.isFailure(reply) || reply.success === "running" || run === undefined) return Effect.void
          const refusal: Scripts.Refusal =
            reply.success === "FENCED" || reply.success === "GONE" ? [reply.success] : ["FINISHED", reply.success]
          run.stoppedBy = refusalError(refusal, run.runId)
          return run.fiber === undefined ? Effect.void : Fiber.interrupt(run.fiber)
        },
        { discard: true }
      )
    })
    yield* Effect.forkIn(Effect.repeat(beat, Schedule.spaced(heartbeatInterval)), layerScope)
    const clock = yield* makeClock(heartbeatInterval)

    /** Where a run is (undefined: its data is gone). */
    const stateOf = (name: string, runId: string) =>
      redis.eval(Scripts.status, [keysOf(name, runId).meta], []).pipe(
        Effect.mapError(fromRedis(runId)),
        Effect.map((reply): RunState | undefined => {
          if (reply.length === 0) return undefined
          const [status, age] = reply
          if (status !== "running") return status as RunStatus
          return Number(age) > Duration.toMillis(producerTimeout) ? "lost" : "running"
        })
      )

    const activeRuns = ActiveIndex.make({
      redis,
      prefix,
      hold: Duration.sum(maxLifetime, producerTimeout),
      stateOf
    })

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
      const runId = startOptions?.runId ?? randomUUID()
      if (!Names.isSafe(runId)) return yield* fail(Reasons.InvalidInput, `a run id must be ${Names.rule}`)
      const started = yield* launch(definition, input, runId, false, startOptions)
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
      const runId = startOptions?.runId ?? randomUUID()
      if (!Names.isSafe(runId)) return yield* fail(Reasons.InvalidInput, `a run id must be ${Names.rule}`)
      return yield* launch(definition, decoded.value, runId, true, startOptions)
    })

    // ---- reading ----

    /** Reads a run as entries whose chunk is `decode`d from its stored JSON (`{"item": …}`'s item). */
    const readDecoded = <A>(
      token: string,
      readOptions: ResumeOptions | undefined,
      decode: (definition: AnyDefinition) => (item: unknown) => Result.Result<A, string>,
      expectedName?: string
    ): Stream.Stream<Entry<A>, ResumableStreamError> =>
      Stream.unwrap(
        Effect.gen(function* () {
          const after = readOptions?.after
          const bufferBytes = readOptions?.bufferBytes
          const payload = yield* expectedName === undefined ? verify(token) : verifyFor(token, expectedName)
          if (after !== undefined && !isEntryId(after)) {
            return yield* fail(
              Reasons.InvalidOffset,
              "`after` must be an entry id such as 1700000000000-0",
              payload.runId
            )
          }
          const definition = definitions.get(payload.name) as AnyDefinition
          const decodeItem = decode(definition)
          const decodeError = (entryId: string, message: string) => decodeFailure(message, payload.runId, entryId)
          return read({
            redis,
            keys: keysOf(payload.name, payload.runId),
            runId: payload.runId,
            after: after === undefined || isStartId(after) ? undefined : after,
            pageSize,
            pageBytes: Math.min(pageBytes, bufferBytes ?? pageBytes),
            maxInboxBytes: bufferBytes ?? liveBufferBytes,
            maxEntryBytes: maxChunkBytes,
            onOverflow: countOverflow,
            clock,
            producerTimeout,
            outageTimeout,
            missing: secrets.length > 0 ? Reasons.Expired : Reasons.NotFound,
            onEnd: (terminal) =>
              terminal.status === "completed"
                ? Effect.void
                : Effect.fail(terminalError(terminal, definition, payload.runId)),
            decode: (raw) => {
              let item: unknown
              try {
                item = (JSON.parse(raw.data) as { item?: unknown }).item
              } catch {
                return Result.fail(decodeError(raw.id, "a stored chunk is not JSON"))
              }
              return Result.mapBoth(decodeItem(item), {
                onFailure: (message) => decodeError(raw.id, message),
                onSuccess: (chunk) => ({ id: raw.id, seq: raw.seq, chunk })
              })
            }
          })
        })
      )

    const resumeEncoded = (token: string, resumeOptions?: ResumeOptions) =>
      readDecoded(token, resumeOptions, () => Result.succeed)

    const resume = <I, A, E, R>(
      definition: Definition<I, A, E, R>,
      token: string,
      resumeOptions?: ResumeOptions
    ): Stream.Stream<Entry<A>, ResumableStreamError> => {
      const decodeChunk = Schema.decodeUnknownExit(definition.chunk)
      return readDecoded(
        token,
        resumeOptions,
        () => (item) => {
          const decoded = decodeChunk(item)
          return Exit.isSuccess(decoded)
            ? Result.succeed(decoded.value)
            : Result.fail(`a stored chunk does not match the schema: ${issueOf(decoded.cause)}`)
        },
        definition.name
      )
    }

    const cancel = Effect.fn("ResumableStream.cancel")(function* (token: string, reason?: string) {
      const payload = yield* verify(token)
      const keys = keysOf(payload.name, payload.runId)
      const terminal: Terminal = { status: "cancelled", ...(reason === undefined ? {} : { reason }) }
      const reply = yield* redis
        .eval(
          Scripts.finish,
          [keys.stream, keys.meta],
          ["", "cancelled", JSON.stringify(terminal), Duration.toMillis(completedTtl), keys.channel]
        )
        .pipe(Effect.mapError(fromRedis(payload.runId)))
      if (Scripts.isRefusal(reply)) {
        // over already: cancelling changes nothing, and says how it ended
        if (reply[0] === "FINISHED") return reply[1] as RunStatus
        return yield* refusalError(reply, payload.runId)
      }
      const local = localRuns.get(keys.meta)
      if (local !== undefined) {
        local.stoppedBy = fail(Reasons.Cancelled, `the run was cancelled${reason ? `: ${reason}` : ""}`, payload.runId)
        if (local.fiber !== undefined) yield* Fiber.interrupt(local.fiber)
      }
      return "cancelled" satisfies RunStatus
    })

    const nameOf = (token: string) => Effect.map(verify(token), (payload) => payload.name)
    const checkToken = (token: string, name: string) =>
      Effect.map(verifyFor(token, name), (payload) => ({ runId: payload.runId }))

    const active = (stream: AnyDefinition | string, key: string) => {
      const name = typeof stream === "string" ? stream : stream.name
      if (!definitions.has(name)) return Effect.fail(fail(Reasons.NotFound, `no stream named "${name}" here`))
      return Effect.map(activeRuns.current(name, key), (run) =>
        run === undefined || (run.state !== "running" && run.state !== "lost")
          ? Option.none()
          : Option.some({ runId: run.runId, token: tokenFor(name, run.runId), state: run.state })
      )
    }

    const status = (token: string) =>
      Effect.flatMap(verify(token), (payload) =>
        Effect.flatMap(stateOf(payload.name, payload.runId), (state) =>
          state === undefined
            ? Effect.fail(
                fail(secrets.length > 0 ? Reasons.Expired : Reasons.NotFound, "the run's data is gone", payload.runId)
              )
            : Effect.succeed(state)
        )
      )

    // on close, local runs get `shutdownGrace` to finish (heartbeats go on meanwhile); then `runsScope` stops the rest
    yield* Effect.addFinalizer(() =>
      Effect.forEach(
        Array.from(localRuns.values(), (run) => run.fiber),
        (fiber) => (fiber === undefined ? Effect.void : Fiber.await(fiber)),
        { discard: true }
      ).pipe(
        Effect.timeoutOrElse({ duration: shutdownGrace, orElse: () => Effect.void }),
        Effect.ensuring(Effect.sync(() => (closing = true)))
      )
    )

    return {
      start,
      active,
      status,
      resume,
      cancel,
      startEncoded,
      resumeEncoded,
      nameOf,
      checkToken
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
