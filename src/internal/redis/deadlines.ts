/**
 * Command timeouts with one timer per connection instead of ioredis's timer per command.
 *
 * ioredis's `commandTimeout` arms and clears a timer for every command it sends (about 1 KB and 0.8 µs a command,
 * a quarter of a plain SET's cost on one connection). Here a connection keeps the commands it sends in the order it
 * sent them, each with its deadline (the send time plus the timeout, so the deadlines only grow along the list), and
 * one timer is armed for the oldest unanswered command's deadline. A command without a reply by its deadline fails
 * with ioredis's own "Command timed out" error, as it did with ioredis's timer (classified `Timeout`, see errors.ts).
 *
 * A connection answers in the order it was asked, so the answered commands at the head of the list are dropped after
 * each chunk of replies the socket delivers (and at each send): the list holds about the commands in flight, and never
 * keeps an answered command, whose promise holds its reply, alive for long. A command sent again (after a reconnect or
 * a Cluster redirection) keeps the deadline of its first send, as with ioredis's timer.
 *
 * @internal
 */
import type { Command, Redis } from "ioredis"

/** What a send of ioredis gives the timer: the command and the stream of a pipeline's `exec`, if any. */
type Send = Redis["sendCommand"]

/** Compacts the list once this many answered commands sit before its head (and they are half of it at least). */
const compactAfter = 1024

/**
 * Makes every command `connection` sends fail with "Command timed out" when it has no reply within `timeoutMs`.
 * The connection must have no `commandTimeout` of its own (it would arm ioredis's timer per command as well).
 */
export const watchDeadlines = (connection: Redis, timeoutMs: number): void => {
  const commands: Array<Command | null> = []
  const deadlines: Array<number> = []
  let head = 0
  let timer: ReturnType<typeof setTimeout> | undefined

  const compact = () => {
    if (head === commands.length) {
      commands.length = 0
      deadlines.length = 0
      head = 0
    } else if (head >= compactAfter && head * 2 >= commands.length) {
      commands.splice(0, head)
      deadlines.splice(0, head)
      head = 0
    }
  }

  /** Drops the answered commands at the head; with `now`, fails those whose deadline has passed as well. */
  const advance = (now: number | undefined) => {
    while (head < commands.length) {
      const command = commands[head]!
      if (!command.isSettled) {
        if (now === undefined || deadlines[head]! > now) break
        command.reject(new Error("Command timed out"))
      }
      commands[head] = null
      head += 1
    }
    compact()
  }

  const arm = () => {
    if (timer !== undefined || head === commands.length) return
    timer = setTimeout(expire, Math.max(0, deadlines[head]! - performance.now()))
    // the socket keeps the process alive while a command waits; the timer alone must not
    timer.unref()
  }

  const expire = () => {
    timer = undefined
    advance(performance.now())
    arm()
  }

  // after ioredis's own "data" handler (attached before the "connect" event) has settled the commands answered
  const dropAnswered = () => advance(undefined)
  connection.on("connect", () => connection.stream.on("data", dropAnswered))

  const send: Send = connection.sendCommand.bind(connection)
  connection.sendCommand = (command, stream) => {
    const sent = send(command, stream)
    if (!command.isSettled) {
      advance(undefined)
      commands.push(command)
      deadlines.push(performance.now() + timeoutMs)
      arm()
    }
    return sent
  }
}
