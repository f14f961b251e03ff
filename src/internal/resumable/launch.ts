/**
 * Starting a run: the run is claimed in Redis (and the key's active run, if any), its runner forked in the runs'
 * scope with a writer that appends its chunks, and the starter gets the run's token and its own stream of the chunks
 * as they are written (held in memory up to a bound, then read from Redis where the starter stopped). When the runner
 * exits, the run's end marker is written (unless someone else ended the run) and the starter's stream ends with it.
 *
 * @internal
 */
import { Cause, type Context, Duration, Effect, Exit, Metric, Option, Queue, Schema, Stream } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import type { AnyDefinition, Definition, Entry, ResumeOptions, StartOptions, Started } from "../../ResumableStream.js"
import type { ResumableStreamError } from "../../ResumableStreamError.js"
import type { Access } from "./access.js"
import type { ActiveIndex } from "./active.js"
import { endedElsewhereBy, refusalError, terminalError, terminalOf } from "./ending.js"
import { fromRedis } from "./error.js"
import { type RunKeys, runKeys } from "./keys.js"
import { chunksAppended, countOverflow, runsStarted } from "./metrics.js"
import type { LocalRun, Runs } from "./runs.js"
import * as Scripts from "./scripts.js"
import type { Settings } from "./settings.js"
import * as RunWriter from "./writer.js"

/** What starting a run needs of the layer. */
export interface LaunchContext {
  readonly redis: RedisClient.Service
  readonly settings: Settings
  readonly runs: Runs
  readonly access: Access
  readonly activeRuns: ActiveIndex
  /** The services the runners need (the layer's context). */
  readonly services: Context.Context<unknown>
  /** Reads a run from Redis after an entry: decoded by `definition`, or as stored JSON (`definition` undefined). */
  readonly readFrom: (
    definition: AnyDefinition | undefined,
    token: string,
    options: ResumeOptions
  ) => Stream.Stream<Entry<unknown>, ResumableStreamError>
}

/**
 * The starter's own stream: written chunks, up to `bufferBytes` waiting for the caller (`unreadLiveBytes` until the
 * caller starts reading it); past that ("overflowed"), the caller reads the rest from Redis after the last chunk it
 * took.
 */
const starterStream = (settings: Settings, bufferBytes: number, liveEncoded: boolean) =>
  Effect.map(
    Queue.unbounded<{ readonly entry: Entry<unknown>; readonly bytes: number }, ResumableStreamError | Cause.Done>(),
    (live) => {
      let liveBytes = 0
      let reading = false
      let overflowed = false
      let lastTaken: string | undefined
      return {
        /** Takes a batch the writer wrote. */
        written: (batch: ReadonlyArray<RunWriter.Written<unknown>>) =>
          Effect.suspend(() => {
            for (const { id, seq, chunk, encoded, bytes } of batch) {
              if (overflowed) break
              if (liveBytes + bytes > (reading ? bufferBytes : Math.min(bufferBytes, settings.unreadLiveBytes))) {
                overflowed = true
                countOverflow()
                break
              }
              liveBytes += bytes
              Queue.offerUnsafe(live, { entry: { id, seq, chunk: liveEncoded ? encoded : chunk }, bytes })
            }
            return Metric.update(chunksAppended, batch.length)
          }),
        /** Ends the stream with the run (from Redis when it overflowed: the end marker is there). */
        end: (error?: ResumableStreamError) =>
          overflowed || error === undefined ? Queue.end(live) : Queue.fail(live, error),
        /** The stream, going on with `rest(after)` from Redis once it overflowed. */
        stream: (rest: (after: string | undefined) => Stream.Stream<Entry<unknown>, ResumableStreamError>) =>
          Stream.suspend(() => {
            reading = true
            return Stream.fromQueue(live).pipe(
              Stream.map(({ entry, bytes }) => {
                liveBytes -= bytes
                lastTaken = entry.id
                return entry
              }),
              Stream.concat(Stream.suspend(() => (overflowed ? rest(lastTaken) : Stream.empty))),
              Stream.ensuring(Queue.shutdown(live))
            )
          })
      }
    }
  )

/** The runner, then its writer's close (what it appended is written before the end marker). */
const runBody = <I, A, E, R>(
  launch: LaunchContext,
  definition: Definition<I, A, E, R>,
  input: I,
  run: LocalRun,
  startSeq: number,
  written: (batch: ReadonlyArray<RunWriter.Written<unknown>>) => Effect.Effect<void>,
  onTimeout: () => void
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { settings } = launch
      const writer = yield* RunWriter.make<A>({
        redis: launch.redis,
        keys: run.keys,
        runId: run.runId,
        generation: run.generation,
        startSeq,
        maxChunks: settings.maxChunks,
        maxChunkBytes: settings.maxChunkBytes,
        bufferSize: settings.appendBuffer,
        maxBatchChunks: 1000,
        maxBatchBytes: 1024 * 1024,
        outageTimeout: settings.outageTimeout,
        encode: Schema.encodeExit(definition.chunk),
        refusal: (refusal) => refusalError(refusal, run.runId),
        onWritten: written as (batch: ReadonlyArray<RunWriter.Written<A>>) => Effect.Effect<void>
      })
      const ran = yield* Effect.exit(
        definition
          .run(input, writer)
          .pipe(
            Effect.timeoutOrElse({ duration: settings.maxLifetime, orElse: () => Effect.sync(onTimeout) }),
            Effect.provideContext(launch.services as Context.Context<R>)
          )
      )
      const closed = yield* Effect.exit(writer.close)
      // a writer stopped by an outage explains the run's end better than the runner's failure to append
      const outage =
        Exit.isFailure(closed) && Cause.findErrorOption(closed.cause).pipe(Option.exists(RunWriter.isOutage))
      return yield* Exit.isFailure(ran) && !outage ? ran : closed
    })
  )

/**
 * Records how a runner exited and ends the starter's stream: nothing to write when the run was ended elsewhere;
 * else its end marker, retried for `outageTimeout`, then (Redis still away) in the background while the starter
 * learns at once. `keepKey` is told, first, whether the key of the run is to stay (a run its producer gave up: the
 * key's readers find it and learn how it ended).
 */
const recordExit = (
  launch: LaunchContext,
  definition: AnyDefinition,
  run: LocalRun,
  exit: Exit.Exit<void, unknown>,
  timedOut: boolean,
  end: (error?: ResumableStreamError) => Effect.Effect<void>,
  keepKey: (keep: boolean) => void
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const { runs } = launch
    const endedElsewhere = run.stoppedBy ?? endedElsewhereBy(exit)
    if (endedElsewhere !== undefined) {
      // cancelled, fenced or expired: whoever ended the run wrote its marker
      runs.local.delete(run.keys.meta)
      return yield* end(endedElsewhere)
    }
    const terminal = terminalOf(exit, definition, timedOut)
    keepKey(terminal.status === "lost")
    const ended = end(terminal.status === "completed" ? undefined : terminalError(terminal, definition, run.runId))
    const written = yield* Effect.exit(runs.finish(run, terminal, launch.settings.outageTimeout))
    if (
      Exit.isSuccess(written) ||
      !Cause.findErrorOption(written.cause).pipe(Option.exists((e: ResumableStreamError) => e.isRetryable))
    ) {
      runs.local.delete(run.keys.meta)
      if (Exit.isFailure(written))
        yield* Effect.logWarning(`ResumableStream: could not record the end of run ${run.runId}`, written.cause)
      yield* ended
    } else {
      // Redis is still away: the starter learns now; the end is written (and heartbeats go on) once it is back
      yield* Effect.logWarning(`ResumableStream: the end of run ${run.runId} waits for Redis`)
      yield* ended
      yield* runs
        .finish(run, terminal, undefined)
        .pipe(Effect.ignore, Effect.ensuring(Effect.sync(() => runs.local.delete(run.keys.meta))))
    }
  })

/** Claims run `runId` for this producer; its generation and the next sequence number. */
const claim = (launch: LaunchContext, keys: RunKeys, runId: string) =>
  launch.redis
    .eval(
      Scripts.claim,
      [keys.meta],
      [
        launch.settings.producerId,
        Duration.toMillis(launch.settings.maxLifetime) + Duration.toMillis(launch.settings.completedTtl),
        Duration.toMillis(launch.settings.producerTimeout)
      ]
    )
    .pipe(
      Effect.mapError(fromRedis(runId)),
      Effect.flatMap((reply) =>
        Scripts.isRefusal(reply) ? Effect.fail(refusalError(reply, runId)) : Effect.succeed(reply)
      )
    )

/** Starts run `runId` of `definition` (see the module); `liveEncoded`: the starter's chunks as stored JSON values. */
export const launch = <I, A, E, R>(
  context: LaunchContext,
  definition: Definition<I, A, E, R>,
  input: I,
  runId: string,
  liveEncoded: boolean,
  startOptions: StartOptions | undefined
): Effect.Effect<Started<unknown>, ResumableStreamError> =>
  Effect.gen(function* () {
    const { settings, activeRuns, runs } = context
    const key = startOptions?.key
    const keys = runKeys(settings.prefix, definition.name, runId)
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
    const [generation, startSeq] = yield* claim(context, keys, runId).pipe(Effect.tapError(() => releaseKey))
    const run: LocalRun = { runId, key, keys, generation: String(generation), fiber: undefined, stoppedBy: undefined }
    const starter = yield* starterStream(settings, startOptions?.bufferBytes ?? settings.liveBufferBytes, liveEncoded)
    let timedOut = false
    let keepKey = false
    // the runner outlives `start`, in a span of its own that continues start's trace
    const startSpan = yield* Effect.option(Effect.currentSpan)
    const runner = runBody(context, definition, input, run, startSeq, starter.written, () => {
      timedOut = true
    }).pipe(
      Effect.withSpan(`ResumableStream.run ${definition.name}`, {
        parent: Option.getOrUndefined(startSpan),
        attributes: { "resumable_stream.run_id": runId }
      }),
      Effect.onExit((exit) =>
        recordExit(context, definition as AnyDefinition, run, exit, timedOut, starter.end, (keep) => {
          keepKey = keep
        })
      ),
      Effect.ensuring(Effect.suspend(() => (keepKey ? Effect.void : releaseKey))),
      Effect.asVoid,
      Effect.catchCause(() => Effect.void)
    )
    runs.local.set(keys.meta, run)
    run.fiber = yield* Effect.forkIn(runner, runs.scope)
    yield* Metric.update(runsStarted, 1)
    const token = context.access.tokenFor(definition.name, runId)
    const stream = starter.stream((after) =>
      context.readFrom(liveEncoded ? undefined : (definition as AnyDefinition), token, {
        after,
        bufferBytes: startOptions?.bufferBytes
      })
    )
    return { runId, token, stream }
  })
