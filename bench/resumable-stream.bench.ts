/**
 * ResumableStream against raw ioredis and Vercel's `resumable-stream` (its ioredis entry point, given a publisher and a
 * subscriber connection to the bench server) doing the same work. Every producer appends 1,000 chunks one by one,
 * each awaited (ours: `writer.append`; raw: `XADD`; the peer pulls its `makeStream` one chunk at a time).
 * (a) the starter's own stream: 100 runs at once, each read by the caller that started it (ours: the stream `start`
 *     returns; peer: the stream `createNewResumableStream` returns; raw: each producer hands its chunks on after its
 *     XADD); chunks/s.
 * (b) the same, plus a second reader per run joining through Redis (ours: `resume`; peer: `resumeExistingStream`);
 *     chunks/s delivered to the second readers. Raw: one connection doing a multiplexed XREAD over all keys (COUNT 100
 *     per key), or one connection per reader.
 * (c) time to first chunk for readers joining a run held halfway (500 of 1,000 chunks stored): 1 reader, and 20 at
 *     once (p50 and worst of the 20); ms. Raw: `XRANGE - + COUNT 500` (our page size) and the first entry parsed.
 * (d) resuming a finished run of 10,000 chunks from the start; raw: XRANGE paging (COUNT 1000), JSON-parsing each
 *     chunk as ours does. The peer cannot: a finished stream is gone (its chunks only ever lived in the producer).
 * (e) heap held per concurrent run: runs held halfway (500 chunks each so far), each read by its starter and by one
 *     reader that joined, both caught up; KB of heap in use after full collections, per run, between 1,000 runs held
 *     and 2,000 (`heapHeldPer`). No raw side.
 */
import { spawn } from "node:child_process"
import { once } from "node:events"
import { createInterface } from "node:readline"
import { setTimeout as sleep } from "node:timers/promises"
import { fileURLToPath } from "node:url"
import { Cause, Effect, Exit, Layer, ManagedRuntime, Option, Stream } from "effect"
import { Redis } from "ioredis"
import { createResumableStreamContext } from "resumable-stream/ioredis"
import * as RedisClient from "../dist/RedisClient.js"
import * as ResumableStream from "../dist/ResumableStream.js"
import {
  allocatedPerOp,
  deferred,
  heapHeldPer,
  type Meter,
  percentile,
  type Scenario,
  type Suite,
  throughput
} from "./harness.js"
import { chunkText, chunksIn, countPeerChunks, type Pause, pauses, peerChunks, Tail } from "./support/resumable.js"

const runs = 100
const chunksPerRun = 1_000
const half = chunksPerRun / 2
const joinersAtOnce = 20
const resumeChunks = 10_000
const heldRuns = 1_000
const peerName = "resumable-stream 2.2.13"
const crashingProducer = fileURLToPath(new URL("./support/crashing-producer.ts", import.meta.url))
/** Connections the bench itself holds: admin, rawReader, and the peer's publisher and subscriber. */
const benchConnections = 4

type XReadReply = Array<[string, Array<[string, Array<string>]>]> | null

/** Number of client connections the server sees. */
const connectedClients = async (admin: Redis) => {
  const info = await admin.info("clients")
  return Number(/connected_clients:(\d+)/.exec(info)?.[1] ?? 0)
}

/** A pause at chunk `at`, with its `reached` signal and its `release`. */
const holdAt = (at: number) => {
  const reached = deferred()
  const release = deferred()
  const pause: Pause = { at, reached: reached.resolve, until: release.promise }
  return { pause, reached: reached.promise, release: release.resolve }
}

/** Throws unless every reader got every chunk of its run. */
const expectAll = (side: string, counts: ReadonlyArray<number>) => {
  const short = counts.filter((count) => count !== chunksPerRun)
  if (short.length > 0) throw new Error(`${side}: ${short.length} readers missed chunks (got ${short[0]})`)
}

/** Times `join` `readers` times at once; returns the `p`th percentile of their times to first chunk, in ms. */
const timeToFirstChunk = async (readers: number, join: () => Promise<string>, p: number) => {
  const times = await Promise.all(
    Array.from({ length: readers }, async () => {
      const started = performance.now()
      const first = await join()
      if (!first.startsWith(chunkText(0))) throw new Error(`a joiner's first chunk was ${first.slice(0, 20)}`)
      return performance.now() - started
    })
  )
  return percentile(times, p)
}

/** A reader counting what it reads to the end (`done`), and `reached` once it has read `at`. */
const countingTo = (at: number) => {
  const reached = deferred()
  let count = 0
  return {
    reached: reached.promise,
    add: (chunks: number) => {
      count += chunks
      if (count >= at) reached.resolve()
      return count
    }
  }
}

/** Runs the crashing producer in a child process, kills it (SIGKILL) once halfway, and returns its token or id. */
const killedHalfway = async (side: "ours" | "peer", url: string) => {
  const child = spawn(process.execPath, ["--import", "tsx", crashingProducer, side, url, String(chunksPerRun)], {
    stdio: ["ignore", "pipe", "inherit"]
  })
  const [line] = (await once(createInterface({ input: child.stdout }), "line")) as [string]
  child.kill("SIGKILL")
  await once(child, "exit")
  return line
}

const suite: Suite = {
  name: "ResumableStream",
  setup: async (url) => {
    const runtime = ManagedRuntime.make(
      ResumableStream.layer({ streams: [Tail], keyPrefix: "bench:rs:", unsignedTokens: true }).pipe(
        Layer.provideMerge(RedisClient.layer({ url }))
      )
    )
    const run = <A, E>(effect: Effect.Effect<A, E, ResumableStream.ResumableStream | RedisClient.RedisClient>) =>
      runtime.runPromise(effect)
    const streams = await run(ResumableStream.ResumableStream)
    const admin = new Redis(url, { protocol: 2 })
    const rawReader = new Redis(url, { protocol: 2 }) // for (c) and (d)
    // the peer: one context on a publisher and a subscriber connection, as an application would hold it
    const peerConnections = [new Redis(url, { protocol: 2 }), new Redis(url, { protocol: 2 })] as const
    const vercel = createResumableStreamContext({
      waitUntil: null,
      keyPrefix: "bench:vercel",
      publisher: peerConnections[0],
      subscriber: peerConnections[1]
    })
    const connections = { ours: 0, multiplexed: 0, perReader: 0 }
    let round = 0

    const count = <E>(stream: Stream.Stream<unknown, E>) =>
      Stream.runFold(
        stream,
        () => 0,
        (n) => n + 1
      )

    // ours, (a) and (b): 100 runs started at once; each starter reads its own stream, each joiner `resume`s
    const ours =
      (joiners: boolean) =>
      (meter: Meter = throughput) =>
        meter(runs * chunksPerRun, () =>
          run(
            Effect.gen(function* () {
              const started = yield* Effect.forEach(Array.from({ length: runs }), () =>
                streams.start(Tail, { n: chunksPerRun, pause: "" })
              )
              const sample = Effect.promise(async () => {
                connections.ours = (await connectedClients(admin)) - benchConnections
              })
              const starters = Effect.forEach(started, (s) => count(s.stream), { concurrency: "unbounded" })
              const second = Effect.forEach(started, (s) => count(streams.resume(Tail, s.token)), {
                concurrency: "unbounded"
              })
              const [own, theirs] = yield* Effect.all(
                [starters, joiners ? second : Effect.succeed(null), Effect.delay(sample, "20 millis")],
                { concurrency: "unbounded" }
              )
              expectAll("ours (starters)", own)
              if (theirs !== null) expectAll("ours (joiners)", theirs)
            })
          )
        )

    // the peer, (a) and (b): the same with createNewResumableStream and resumeExistingStream
    const peer =
      (joiners: boolean) =>
      (meter: Meter = throughput) =>
        meter(runs * chunksPerRun, async () => {
          const prefix = `v${++round}`
          const counts = await Promise.all(
            Array.from({ length: runs }, async (_, i) => {
              const id = `${prefix}-${i}`
              // with a joiner, the producer waits at its first chunk until the joiner is in: a run that no one has
              // joined goes on in memory and ends within milliseconds, after which the peer cannot join it at all
              const hold = holdAt(0)
              const own = await vercel.createNewResumableStream(id, () =>
                peerChunks(chunksPerRun, joiners ? hold.pause : undefined)
              )
              if (own === null) throw new Error(`resumable-stream refused ${id}`)
              if (!joiners) return countPeerChunks(own)
              const second = await vercel.resumeExistingStream(id)
              hold.release()
              if (second === null || second === undefined) throw new Error(`resumable-stream could not join ${id}`)
              const [mine, theirs] = await Promise.all([countPeerChunks(own), countPeerChunks(second)])
              expectAll("peer (starters)", [mine])
              return theirs
            })
          )
          expectAll("peer", counts)
        })

    /** Raw producers: one XADD per chunk, awaited, 100 runs at once, on one connection; `onChunk` after each. */
    const produceRaw = async (keys: ReadonlyArray<string>, onChunk: (key: string) => void = () => undefined) => {
      const producer = new Redis(url, { protocol: 2 })
      await Promise.all(
        keys.map(async (key) => {
          for (let i = 0; i < chunksPerRun; i++) {
            await producer.xadd(key, "*", "data", JSON.stringify({ item: chunkText(i) }))
            onChunk(key)
          }
        })
      )
      producer.disconnect()
    }
    const rawKeys = () => {
      round += 1
      return Array.from({ length: runs }, (_, i) => `bench:rs:raw:${round}:${i}`)
    }
    /** Connections open `afterMs` into a raw round, less the bench's and those our layer keeps open. */
    const rawConnectionsAfter = async (afterMs: number) => {
      await sleep(afterMs)
      return (await connectedClients(admin)) - benchConnections - connections.ours
    }

    // raw (a): the producer is the starter; it hands each chunk on once XADD returns
    const rawOwn = (meter: Meter = throughput) => {
      const keys = rawKeys()
      return meter(runs * chunksPerRun, async () => {
        const counts = new Map(keys.map((key) => [key, 0]))
        await produceRaw(keys, (key) => counts.set(key, (counts.get(key) as number) + 1))
        expectAll("raw", [...counts.values()])
      })
    }

    // raw (b): one connection, one multiplexed XREAD over every run's key
    const rawMultiplexed = () => {
      const keys = rawKeys()
      return throughput(runs * chunksPerRun, async () => {
        const reader = new Redis(url, { protocol: 2 })
        const lastIds = new Map(keys.map((key) => [key, "0-0"]))
        const counts = new Map(keys.map((key) => [key, 0]))
        const read = async () => {
          while (lastIds.size > 0) {
            const active = Array.from(lastIds.keys())
            const reply = (await reader.xread(
              "COUNT",
              100,
              "BLOCK",
              1000,
              "STREAMS",
              ...active,
              ...active.map((key) => lastIds.get(key) as string)
            )) as XReadReply
            for (const [key, entries] of reply ?? []) {
              for (const [id, fields] of entries) {
                JSON.parse(fields[1] as string)
                lastIds.set(key, id)
              }
              const count = (counts.get(key) as number) + entries.length
              counts.set(key, count)
              if (count === chunksPerRun) lastIds.delete(key)
            }
          }
        }
        const sample = rawConnectionsAfter(20).then((count) => {
          connections.multiplexed = count
        })
        await Promise.all([read(), produceRaw(keys), sample])
        reader.disconnect()
        expectAll("raw multiplexed", [...counts.values()])
      })
    }

    // raw (b): one connection and one XREAD BLOCK loop per reader
    const rawPerReader = () => {
      const keys = rawKeys()
      return throughput(runs * chunksPerRun, async () => {
        const readers = keys.map(() => new Redis(url, { protocol: 2 }))
        const read = async (reader: Redis, key: string) => {
          let lastId = "0-0"
          let count = 0
          while (count < chunksPerRun) {
            const reply = (await reader.xread("COUNT", 100, "BLOCK", 1000, "STREAMS", key, lastId)) as XReadReply
            for (const [, entries] of reply ?? []) {
              for (const [id, fields] of entries) {
                JSON.parse(fields[1] as string)
                lastId = id
                count += 1
              }
            }
          }
          return count
        }
        const sample = rawConnectionsAfter(50).then((count) => {
          connections.perReader = count
        })
        const [counts] = await Promise.all([
          Promise.all(keys.map((key, i) => read(readers[i] as Redis, key))),
          produceRaw(keys),
          sample
        ])
        for (const reader of readers) reader.disconnect()
        expectAll("raw per reader", counts)
      })
    }

    // (c) ours: a run held halfway, its starter reading meanwhile; joiners `resume` it and take the first chunk
    const oursJoin = (readers: number, p: number) => async () => {
      const id = `join${++round}`
      const hold = holdAt(half)
      pauses.set(id, hold.pause)
      const started = await run(streams.start(Tail, { n: chunksPerRun, pause: id }))
      const starter = run(count(started.stream))
      await hold.reached
      const figure = await timeToFirstChunk(
        readers,
        async () =>
          Option.match(await run(Stream.runHead(streams.resume(Tail, started.token))), {
            onNone: () => "",
            onSome: (entry) => entry.chunk
          }),
        p
      )
      hold.release()
      expectAll("ours (starter)", [await starter])
      pauses.delete(id)
      return figure
    }
    // (c) the peer: the same with resumeExistingStream; a joiner reads one message, then cancels
    const peerJoin = (readers: number, p: number) => async () => {
      const id = `join${++round}`
      const hold = holdAt(half)
      const own = await vercel.createNewResumableStream(id, () => peerChunks(chunksPerRun, hold.pause))
      if (own === null) throw new Error(`resumable-stream refused ${id}`)
      const starter = countPeerChunks(own)
      await hold.reached
      const figure = await timeToFirstChunk(
        readers,
        async () => {
          const stream = await vercel.resumeExistingStream(id)
          if (stream === null || stream === undefined) throw new Error(`resumable-stream could not join ${id}`)
          const reader = stream.getReader()
          const { value } = await reader.read()
          await reader.cancel()
          return value ?? ""
        },
        p
      )
      hold.release()
      expectAll("peer (starter)", [await starter])
      return figure
    }
    // (c) raw: the first half stored (not timed); a joiner reads the first page of the backlog
    const rawJoin = (readers: number, p: number) => async () => {
      const key = `bench:rs:rawjoin:${++round}`
      const pipeline = rawReader.pipeline()
      for (let i = 0; i < half; i++) pipeline.xadd(key, "*", "data", JSON.stringify({ item: chunkText(i) }))
      await pipeline.exec()
      return timeToFirstChunk(
        readers,
        async () => {
          const page = await rawReader.xrange(key, "-", "+", "COUNT", 500)
          return (JSON.parse(page[0]?.[1][1] ?? "{}") as { item?: string }).item ?? ""
        },
        p
      )
    }

    // (e) ours: runs held halfway, each read by its starter and by a joiner through `resume`, both caught up
    const oursHeld = () =>
      heapHeldPer(heldRuns, async (count) => {
        const prefix = `held${++round}`
        const readers = await Promise.all(
          Array.from({ length: count }, async (_, i) => {
            const hold = holdAt(half)
            pauses.set(`${prefix}-${i}`, hold.pause)
            const started = await run(streams.start(Tail, { n: chunksPerRun, pause: `${prefix}-${i}` }))
            const read = (stream: Stream.Stream<unknown, unknown>) => {
              const counter = countingTo(half)
              const done = run(
                Stream.runFold(
                  stream,
                  () => 0,
                  () => counter.add(1)
                )
              )
              return { reached: counter.reached, done }
            }
            const own = read(started.stream)
            const joiner = read(streams.resume(Tail, started.token))
            await Promise.all([hold.reached, own.reached, joiner.reached])
            return { release: hold.release, done: Promise.all([own.done, joiner.done]) }
          })
        )
        return async () => {
          for (const reader of readers) reader.release()
          expectAll("ours (held runs)", (await Promise.all(readers.map((reader) => reader.done))).flat())
          for (let i = 0; i < count; i++) pauses.delete(`${prefix}-${i}`)
        }
      })
    // (e) the peer: the same with createNewResumableStream and resumeExistingStream
    const peerHeld = () =>
      heapHeldPer(heldRuns, async (count) => {
        const prefix = `vheld${++round}`
        const readers = await Promise.all(
          Array.from({ length: count }, async (_, i) => {
            const id = `${prefix}-${i}`
            const hold = holdAt(half)
            const own = await vercel.createNewResumableStream(id, () => peerChunks(chunksPerRun, hold.pause))
            if (own === null) throw new Error(`resumable-stream refused ${id}`)
            await hold.reached
            const joined = await vercel.resumeExistingStream(id)
            if (joined === null || joined === undefined) throw new Error(`resumable-stream could not join ${id}`)
            const read = (stream: ReadableStream<string>) => {
              const counter = countingTo(half)
              const done = (async () => {
                const reader = stream.getReader()
                for (;;) {
                  const { done: ended, value } = await reader.read()
                  if (ended) return counter.add(0)
                  counter.add(chunksIn(value))
                }
              })()
              return { reached: counter.reached, done }
            }
            const mine = read(own)
            const theirs = read(joined)
            await Promise.all([mine.reached, theirs.reached])
            return { release: hold.release, done: Promise.all([mine.done, theirs.done]) }
          })
        )
        return async () => {
          for (const reader of readers) reader.release()
          expectAll("peer (held runs)", (await Promise.all(readers.map((reader) => reader.done))).flat())
        }
      })

    // (d): one finished run of 10k chunks, read from the start
    const finished = await run(
      Effect.gen(function* () {
        const started = yield* streams.start(Tail, { n: resumeChunks, pause: "" })
        yield* Stream.runDrain(started.stream)
        return started
      })
    )
    const finishedKey = `bench:rs:tail:{${finished.runId}}`

    /** Ours after the producer's death: chunks a resumer gets, and how its stream ends (20 s at most). */
    const oursAfterCrash = async () => {
      const token = await killedHalfway("ours", url)
      const started = performance.now()
      let received = 0
      const exit = await runtime.runPromiseExit(
        Stream.runForEach(streams.resume(Tail, token), () =>
          Effect.sync(() => {
            received += 1
          })
        ).pipe(Effect.timeout("20 seconds"))
      )
      const seconds = ((performance.now() - started) / 1000).toFixed(1)
      const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
      const ending =
        error instanceof ResumableStream.ResumableStreamError
          ? `then fails ${error.reason._tag} after ${seconds} s`
          : error === undefined
            ? "then ends"
            : `then nothing more for ${seconds} s`
      return `ours recovers ${received} chunks, ${ending}`
    }
    /** The peer after the producer's death: chunks a resumer gets, and how `resumeExistingStream` ends. */
    const peerAfterCrash = async () => {
      const id = await killedHalfway("peer", url)
      const started = performance.now()
      const seconds = () => ((performance.now() - started) / 1000).toFixed(1)
      try {
        const stream = await vercel.resumeExistingStream(id)
        if (stream === null || stream === undefined) return `${peerName} recovers 0 chunks (stream ${stream})`
        const timeout = sleep(20_000).then(() => -1)
        const received = await Promise.race([countPeerChunks(stream), timeout])
        return `${peerName} recovers ${received < 0 ? "? (still waiting after 20 s)" : received} chunks`
      } catch (error) {
        return `${peerName} recovers 0 chunks: resumeExistingStream rejects after ${seconds()} s (${String(error)})`
      }
    }

    const tailing = { unit: "chunks/s", higherIsBetter: true } as const
    const connectionNote = (raw: () => number) => () => [
      `connections: ours ${connections.ours}, raw ${raw()} (the raw count includes its producers' connection), ${peerName} 2 (publisher + subscriber)`
    ]
    /** The `p`th percentile of the joiners' times to their first chunk (p 100: the worst). */
    const joining = (readers: number, p = 50): Scenario => ({
      name:
        readers === 1
          ? `time to first chunk, 1 reader joining a run halfway (raw: XRANGE)`
          : `time to first chunk, ${readers} readers joining a run halfway at once, ${p === 100 ? "worst" : `p${p}`} (raw: XRANGE)`,
      unit: "ms",
      higherIsBetter: false,
      ours: oursJoin(readers, p),
      raw: rawJoin(readers, p),
      peer: { name: peerName, measure: peerJoin(readers, p) },
      notes: () => [
        `first chunk checked on every side; ours: subscribe, then the backlog from Redis in pages of 32 entries, doubling up to 500; ${peerName}: the joiner subscribes and publishes a request, the live producer answers with its whole in-memory backlog as one message; raw: one XRANGE of the stored half on one connection`
      ]
    })
    return {
      scenarios: [
        {
          ...tailing,
          name: `starter's own stream, ${runs} runs × ${chunksPerRun / 1000}k (raw: XADD, then hand on)`,
          ours: ours(false),
          raw: rawOwn,
          peer: { name: peerName, measure: peer(false) },
          notes: () => [
            `${peerName} keeps chunks in the producer's memory and writes nothing to Redis per chunk while no one has joined; ours and raw store every chunk in a Redis stream`
          ]
        },
        {
          name: `bytes allocated per chunk appended and read by its starter, ${runs} runs × ${chunksPerRun / 1000}k`,
          unit: "B/op",
          higherIsBetter: false,
          ours: () => ours(false)(allocatedPerOp),
          raw: () => rawOwn(allocatedPerOp),
          peer: { name: peerName, measure: () => peer(false)(allocatedPerOp) }
        },
        {
          ...tailing,
          name: `second reader through Redis, ${runs} runs × ${chunksPerRun / 1000}k (raw: multiplexed XREAD)`,
          ours: ours(true),
          raw: rawMultiplexed,
          peer: { name: peerName, measure: peer(true) },
          notes: () => [
            ...connectionNote(() => connections.multiplexed)(),
            `${peerName}'s producer waits at its first chunk until its second reader has joined (resumeExistingStream answered): unjoined, a run goes on in memory and is over before a reader can join (resumeExistingStream then returns null); ours' and raw's readers just start with the producers`
          ]
        },
        {
          ...tailing,
          name: `second reader through Redis, ${runs} runs × ${chunksPerRun / 1000}k (raw: connection per reader)`,
          ours: ours(true),
          raw: rawPerReader,
          peer: { name: peerName, measure: peer(true) },
          notes: connectionNote(() => connections.perReader)
        },
        joining(1),
        joining(joinersAtOnce),
        joining(joinersAtOnce, 100),
        {
          name: `heap held per concurrent run, ${heldRuns} runs held halfway, each read by its starter and a joiner`,
          unit: "KB/run",
          higherIsBetter: false,
          ours: async () => (await oursHeld()) / 1024,
          peer: { name: peerName, measure: async () => (await peerHeld()) / 1024 },
          notes: () => [
            `no raw figure (raw code holds no run state); ${peerName} keeps each run's chunks in its producer's memory, ours in Redis (used_memory is not counted here)`
          ]
        },
        {
          name: `resume a finished ${resumeChunks / 1000}k-chunk run (raw: XRANGE paging)`,
          unit: "entries/s",
          higherIsBetter: true,
          ours: () =>
            throughput(resumeChunks + 1, async () => {
              const n = await run(count(streams.resume(Tail, finished.token)))
              if (n !== resumeChunks) throw new Error(`resumed ${n} of ${resumeChunks}`)
            }),
          raw: () =>
            throughput(resumeChunks + 1, async () => {
              let start = "-"
              for (;;) {
                const page = await rawReader.xrange(finishedKey, start, "+", "COUNT", 1000)
                for (const [, fields] of page) if (fields[0] === "data") JSON.parse(fields[1] as string)
                const last = page.at(-1)
                if (page.length < 1000 || last === undefined) break
                start = `(${last[0]}`
              }
            }),
          notes: async () => [
            `no ${peerName} figure: it cannot replay a finished stream (resumeExistingStream returns null once done; its chunks only lived in the producer's memory)`,
            `producer killed (SIGKILL) halfway through a ${chunksPerRun}-chunk run, a reader resuming from the start: ${await oursAfterCrash()}; ${await peerAfterCrash()}`
          ]
        }
      ],
      close: async () => {
        admin.disconnect()
        rawReader.disconnect()
        for (const connection of peerConnections) connection.disconnect()
        await runtime.dispose()
      }
    }
  }
}

export default suite
