/**
 * A worker in its own process for the transaction tests: `fibers` fibers each make `transfers` random transfers
 * between two accounts with `SubjectStorage.transaction`, refusing overdrafts, and print one JSON line of what
 * happened. Arguments: `single <url>` or `cluster <host:port,…>`, the key prefix, the two subjects, fibers, transfers.
 */
import { Data, Effect, Layer, Option, Schedule } from "effect"
import * as SubjectStorage from "../../src/SubjectStorage.js"
import { clientFromArgs, runChild } from "./child.js"

const [mode, target, keyPrefix, from, to, fibers, transfers] = process.argv.slice(2)
const accounts = [from ?? "", to ?? ""] as const

/** A transfer the payer's balance does not cover. */
class Overdraft extends Data.TaggedError("Overdraft")<{ readonly balance: number }> {}

const balance = (value: Option.Option<unknown>) => Option.getOrElse(value, () => 0) as number

const program = Effect.gen(function* () {
  const storage = yield* SubjectStorage.SubjectStorage
  let committed = 0
  let refused = 0
  let retriesOfCommitted = 0
  const transfer = Effect.suspend(() => {
    const payerIndex = Math.random() < 0.5 ? 0 : 1
    const payer = accounts[payerIndex]
    const payee = accounts[1 - payerIndex] as string
    const amount = 1 + Math.floor(Math.random() * 10)
    return storage.transaction(accounts, (tx) =>
      Effect.gen(function* () {
        const payerBalance = balance(yield* tx.get(payer, "balance"))
        const payeeBalance = balance(yield* tx.get(payee, "balance"))
        if (payerBalance < amount) return yield* new Overdraft({ balance: payerBalance })
        yield* tx.set(payer, "balance", payerBalance - amount)
        yield* tx.set(payee, "balance", payeeBalance + amount)
      })
    )
  }).pipe(
    Effect.match({
      onFailure: (error) => {
        if (error._tag !== "Overdraft") throw error
        refused++
      },
      onSuccess: (done) => {
        committed++
        retriesOfCommitted += done.attempts - 1
      }
    })
  )
  yield* Effect.forEach(
    Array.from({ length: Number(fibers) }),
    () => Effect.repeat(transfer, Schedule.recurs(Number(transfers) - 1)),
    { concurrency: "unbounded", discard: true }
  )
  const conflicts = yield* storage.conflicts
  process.stdout.write(`${JSON.stringify({ committed, refused, retriesOfCommitted, conflicts })}\n`)
})

void runChild(
  program.pipe(
    Effect.provide(
      SubjectStorage.layer({
        keyPrefix,
        // correctness under heavy contention, not giving up, is what this worker is for
        retrySchedule: Schedule.min([Schedule.exponential("2 millis"), Schedule.spaced("50 millis")]).pipe(
          Schedule.jittered,
          Schedule.upTo({ times: 1000 })
        )
      }).pipe(Layer.provide(clientFromArgs(mode, target)))
    )
  )
)
