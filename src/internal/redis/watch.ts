/**
 * Optimistic transactions on one dedicated connection (`RedisClient.watching`): `read` sends `WATCH` with commands
 * that read the watched keys in one round trip, `commit` sends `MULTI … EXEC` (`None` when Redis refused it: a
 * watched key changed), `unwatch` ends the watches without a commit. Every call is bounded by the command timeout
 * (a dedicated connection has none of its own). A call that fails closes the connection (it may hold watches or a
 * reply still on its way), so the pool never hands it out again; the session's later calls then fail.
 *
 * @internal
 */
import { Duration, Effect, Option, Result } from "effect"
import type { WatchSession } from "../../RedisClient.js"
import { OutcomeUnknown, type RedisError } from "../../RedisError.js"
import { redisError } from "../reasons.js"
import { nameOf } from "./commands.js"
import type { Client } from "./connection.js"
import { mayHaveRun } from "./errors.js"

/** What a session needs of the layer: its keys, how failures are classified, and the calls' time bound. */
export interface SessionOptions {
  readonly keys: ReadonlyArray<string>
  readonly classify: (cause: unknown, op: string) => RedisError
  readonly timeout: Duration.Duration | undefined
}

/** A watch session on `client` (see the module). */
export const session = (client: Client, options: SessionOptions): WatchSession => {
  const timeout = options.timeout
  const call = <A>(op: string, run: () => Promise<A>): Effect.Effect<A, RedisError> => {
    const sent = Effect.tryPromise({ try: run, catch: (cause) => options.classify(cause, op) })
    const bounded =
      timeout === undefined
        ? sent
        : sent.pipe(
            Effect.timeoutOrElse({
              duration: timeout,
              orElse: () => Effect.fail(redisError(op, "Timeout", `no reply within ${Duration.format(timeout)}`))
            })
          )
    return Effect.tapError(bounded, () => Effect.sync(() => client.disconnect()))
  }
  return {
    read: (commands) =>
      Effect.flatMap(
        call("watch", () => {
          const pipeline = client.pipeline().watch(...options.keys)
          for (const command of commands) pipeline.call(command.name, ...command.args)
          return pipeline.exec()
        }),
        (replies) => {
          const results = replies ?? []
          const failed = results.find(([error]) => error)
          return failed === undefined
            ? Effect.succeed(results.slice(1).map(([, reply]) => reply))
            : call("watch", () => Promise.reject(failed[0]))
        }
      ),
    commit: (commands) =>
      call("exec", () => {
        const multi = client.multi()
        for (const command of commands) multi.call(command.name, ...command.args)
        return multi.exec()
      }).pipe(
        Effect.mapError((error) => (mayHaveRun(error) ? new OutcomeUnknown({ cause: error }) : error)),
        Effect.map((replies) =>
          replies === null
            ? Option.none()
            : Option.some(
                replies.map(([error, reply], index) =>
                  error ? Result.fail(options.classify(error, nameOf(commands, index, "exec"))) : Result.succeed(reply)
                )
              )
        )
      ),
    unwatch: Effect.ignore(call("unwatch", () => client.unwatch()))
  }
}
