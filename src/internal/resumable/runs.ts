/**
 * The runs this instance produces: each run's record (keys, generation, runner fiber), the runners' scope, the end
 * marker written when a run ends (retried through an outage), one heartbeat loop for every local run (one pipelined
 * call per node; it stops the runners whose run was ended elsewhere: cancelled, fenced, expired), and the drain that
 * gives local runs `shutdownGrace` to finish when the layer closes.
 *
 * @internal
 */
import { Duration, Effect, Fiber, Result, Schedule, Scope } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import type { ResumableStreamError } from "../../ResumableStreamError.js"
import * as Outage from "../outage.js"
import { refusalError } from "./ending.js"
import { fromRedis } from "./error.js"
import type { RunKeys } from "./keys.js"
import * as Scripts from "./scripts.js"
import type { Settings } from "./settings.js"
import type { Terminal } from "./wire.js"

/** A run produced by this instance. */
export interface LocalRun {
  readonly runId: string
  /** The key whose active run it is, if any. */
  readonly key: string | undefined
  readonly keys: RunKeys
  readonly generation: string
  fiber: Fiber.Fiber<void> | undefined
  /** Set when the run was ended elsewhere (cancelled, fenced, gone): the runner's exit writes no marker. */
  stoppedBy: ResumableStreamError | undefined
}

/** This instance's runs. */
export interface Runs {
  /** Local runs by their meta key (a run id may be reused by another stream). */
  readonly local: Map<string, LocalRun>
  /** Where runners live: closed after the drain, its runners interrupted (their runs end as `lost`). */
  readonly scope: Scope.Scope
  /**
   * Writes the end of a run, retrying while Redis is unavailable for up to `within` (forever: undefined), and not
   * once the layer is closing; its reply is the run's status.
   */
  readonly finish: (
    run: LocalRun,
    terminal: Terminal,
    within: Duration.Duration | undefined
  ) => Effect.Effect<string, ResumableStreamError>
  /** Stops the local run of `metaKey`, if any, ended elsewhere with `error`. */
  readonly stop: (metaKey: string, error: ResumableStreamError) => Effect.Effect<void>
  /** Waits for the local runs, at most `shutdownGrace`; from then on ends are not waited for (one attempt each). */
  readonly drain: Effect.Effect<void>
}

/** The runs of a layer whose scope is `layerScope`; the heartbeat loop runs there. */
export const make = (redis: RedisClient.Service, settings: Settings, layerScope: Scope.Scope): Effect.Effect<Runs> =>
  Effect.gen(function* () {
    const scope = yield* Scope.fork(layerScope)
    const local = new Map<string, LocalRun>()
    /** The layer is closing and its grace is over (readers then judge a run whose end was not written by its heartbeat). */
    let closing = false

    const finish: Runs["finish"] = (run, terminal, within) =>
      redis
        .eval(
          Scripts.finish,
          [run.keys.stream, run.keys.meta],
          [
            run.generation,
            terminal.status,
            JSON.stringify(terminal),
            Duration.toMillis(settings.completedTtl),
            run.keys.channel
          ]
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

    const stop: Runs["stop"] = (metaKey, error) =>
      Effect.suspend(() => {
        const run = local.get(metaKey)
        if (run === undefined) return Effect.void
        run.stoppedBy = error
        return run.fiber === undefined ? Effect.void : Fiber.interrupt(run.fiber)
      })

    const heartbeatOutage = Outage.make("ResumableStream heartbeat")
    const beat = Effect.gen(function* () {
      const runs = Array.from(local.values())
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
          return stop(run.keys.meta, refusalError(refusal, run.runId))
        },
        { discard: true }
      )
    })
    yield* Effect.forkIn(Effect.repeat(beat, Schedule.spaced(settings.heartbeatInterval)), layerScope)

    return {
      local,
      scope,
      finish,
      stop,
      drain: Effect.suspend(() =>
        Effect.forEach(
          Array.from(local.values(), (run) => run.fiber),
          (fiber) => (fiber === undefined ? Effect.void : Fiber.await(fiber)),
          { discard: true }
        )
      ).pipe(
        Effect.timeoutOrElse({ duration: settings.shutdownGrace, orElse: () => Effect.void }),
        Effect.ensuring(Effect.sync(() => (closing = true)))
      )
    }
  })
