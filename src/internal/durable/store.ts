/**
 * The Redis side of every Durable Streams operation: the scripts run with the stream's keys, their replies turned
 * into results or typed errors. Positions are numbers (bytes, or messages in JSON mode), offsets their 16_16 form.
 *
 * @internal
 */
import { randomBytes } from "node:crypto"
import { Effect, Result } from "effect"
import type * as RedisClient from "../../RedisClient.js"
import * as Reasons from "../../DurableStreamsError.js"
import type { DurableStreamsError } from "../../DurableStreamsError.js"
import type { Appended, AppendOptions, Created, ReadResult, StreamInfo } from "../../DurableStreams.js"
import { isJson, items, mediaType } from "./body.js"
import { fail, failWith, fromRedis, gone, notFound } from "./errors.js"
import { streamKeys } from "./keys.js"
import * as Offsets from "./offsets.js"
import * as Scripts from "./scripts.js"

/** What a create writes, resolved by the caller (a fork's inherited settings and copied entries included). */
export interface CreateRequest {
  readonly contentType: string
  readonly ttlSeconds: number | undefined
  readonly expiresAt: Date | undefined
  readonly closed: boolean
  readonly body: Uint8Array
  readonly fork?: {
    readonly source: string
    /** The fork's configuration as asked (offset and sub-offset), compared by an idempotent create. */
    readonly asked: string
    readonly position: number
    /** Where the source's kept data starts (it was trimmed): the fork's data starts there too. */
    readonly first: number
    readonly copied: ReadonlyArray<readonly [position: number, item: Buffer]>
  }
}

/** A stream as a fork's create compares it (see `Store.forkOf`). */
export interface ExistingFork {
  readonly source: string
  readonly asked: string
  readonly contentType: string
  readonly mediaType: string
  readonly closed: boolean
  readonly nextOffset: string
}

/** The Redis operations of one layer. */
export interface Store {
  readonly keysOf: (name: string) => ReturnType<typeof streamKeys>
  readonly create: (name: string, request: CreateRequest) => Effect.Effect<Created, DurableStreamsError>
  readonly append: (
    name: string,
    body: Uint8Array,
    options: AppendOptions
  ) => Effect.Effect<Appended, DurableStreamsError>
  readonly read: (
    name: string,
    after: Offsets.Requested,
    options: { readonly maxBytes: number; readonly touch: boolean }
  ) => Effect.Effect<ReadResult, DurableStreamsError>
  readonly head: (name: string) => Effect.Effect<StreamInfo, DurableStreamsError>
  /** Deletes a stream (soft while forks reference it); releases its own source's reference, up the chain. */
  readonly remove: (name: string) => Effect.Effect<void, DurableStreamsError>
  /** Takes a fork's reference on `source`: its metadata. */
  readonly reference: (
    source: string,
    fork: string,
    media: string
  ) => Effect.Effect<Scripts.Referenced, DurableStreamsError>
  /** What a fork at `name` was created as, if a stream exists there (`source` "" when it is not a fork). */
  readonly forkOf: (name: string) => Effect.Effect<ExistingFork | undefined, DurableStreamsError>
  /** Releases `fork`'s reference on `source`, collecting soft-deleted sources up the chain. */
  readonly release: (source: string, fork: string) => Effect.Effect<void, DurableStreamsError>
}

/**
 * The most messages one append (or create) writes, and the most entries a fork copies: each is an argument of one
 * script call, and a call takes about 100,000 at the most.
 */
export const maxItemsPerWrite = 10_000

const tooMany = (name: string) =>
  fail(name, Reasons.InvalidRequest, `a write holds at most ${maxItemsPerWrite} JSON messages`)

/** How long a fork's reference counts without the fork existing (it is being created): then it is pruned. */
const referenceGraceMs = 60_000

/** Makes the store of a layer whose keys start with `prefix`, keeping at most `retainEntries` entries per stream. */
export const make = (
  redis: RedisClient.Service,
  prefix: string,
  maxEntriesPerRead: number,
  retainEntries: number | undefined
): Store => {
  const keep = retainEntries === undefined ? "" : String(retainEntries)
  const keysOf = (name: string) => streamKeys(prefix, name)

  /** Creates a stream; a tombstone at its name that no fork references any more is collected first (once). */
  const create = (
    name: string,
    request: CreateRequest,
    collected = false
  ): Effect.Effect<Created, DurableStreamsError> => {
    const media = mediaType(request.contentType)
    const body = items(request.body, media, true)
    if (body._tag === "Invalid") return fail(name, Reasons.InvalidRequest, body.message)
    if (body.items.length > maxItemsPerWrite) return tooMany(name)
    const fork = request.fork
    const copied = (fork?.copied ?? []).flatMap(([position, item]) => [String(position), item])
    return redis
      .eval(Scripts.create, keysOf(name).keys, [
        randomBytes(6).toString("hex"),
        request.contentType,
        media,
        request.ttlSeconds === undefined ? "" : String(request.ttlSeconds),
        request.expiresAt === undefined ? "" : String(request.expiresAt.getTime()),
        request.expiresAt === undefined ? "" : request.expiresAt.toISOString(),
        request.closed ? "1" : "",
        isJson(media) ? "1" : "",
        fork?.source ?? "",
        fork?.asked ?? "",
        fork?.position ?? 0,
        fork?.first ?? 0,
        keep,
        fork?.copied.length ?? 0,
        ...copied,
        ...body.items
      ])
      .pipe(
        Effect.mapError(fromRedis(name)),
        Effect.flatMap((reply) => {
          switch (reply[0]) {
            case "gone":
              return collected
                ? fail(name, Reasons.Conflict, `stream ${name} was deleted and forks still reference it`)
                : Effect.andThen(Effect.ignore(remove(name)), create(name, request, true))
            case "conflict":
              return fail(name, Reasons.Conflict, `stream ${name} exists with another configuration`)
            default:
              return Effect.succeed({
                created: reply[0] === "created",
                contentType: request.contentType,
                nextOffset: Offsets.ofPosition(reply[1]),
                closed: reply[2] === "1"
              })
          }
        })
      )
  }

  const append = (
    name: string,
    body: Uint8Array,
    options: AppendOptions
  ): Effect.Effect<Appended, DurableStreamsError> => {
    const close = options.close === true
    if (body.length === 0 && !close) return fail(name, Reasons.InvalidRequest, "an append needs a body")
    const media = body.length === 0 ? "" : mediaType(options.contentType ?? "")
    if (body.length > 0 && media === "") return fail(name, Reasons.InvalidRequest, "an append needs a Content-Type")
    const parsed = items(body, media, false)
    if (parsed._tag === "Invalid") return fail(name, Reasons.InvalidRequest, parsed.message)
    if (parsed.items.length > maxItemsPerWrite) return tooMany(name)
    const producer = options.producer
    const { keys, channel } = keysOf(name)
    return redis
      .eval(Scripts.append, keys, [
        media,
        options.streamSeq ?? "",
        producer?.id ?? "",
        producer === undefined ? "" : String(producer.epoch),
        producer === undefined ? "" : String(producer.seq),
        close ? "1" : "",
        channel,
        keep,
        ...parsed.items
      ])
      .pipe(
        Effect.mapError(fromRedis(name)),
        Effect.flatMap((reply): Effect.Effect<Appended, DurableStreamsError> => {
          switch (reply[0]) {
            case "ok":
            case "duplicate":
              return Effect.succeed({
                duplicate: reply[0] === "duplicate",
                nextOffset: Offsets.ofPosition(reply[1]),
                closed: reply[2] === "1",
                ...(producer === undefined ? {} : { producer: { epoch: reply[3], seq: reply[4] } })
              })
            case "closed":
              return failWith(
                name,
                new Reasons.StreamClosed({
                  message: `stream ${name} is closed`,
                  nextOffset: Offsets.ofPosition(reply[1])
                })
              )
            case "stale":
              return failWith(
                name,
                new Reasons.StaleEpoch({ message: `producer ${producer?.id} has a newer epoch`, epoch: reply[1] })
              )
            case "gap":
              return failWith(
                name,
                new Reasons.SequenceGap({
                  message: `producer ${producer?.id} sent seq ${reply[2]}, expected ${reply[1]}`,
                  expected: reply[1],
                  received: reply[2]
                })
              )
            case "notfound":
              return notFound(name)
            case "gone":
              return gone(name)
            case "contentType":
              return fail(name, Reasons.Conflict, `stream ${name} has another content type`)
            case "streamSeq":
              return fail(name, Reasons.Conflict, `Stream-Seq ${options.streamSeq} is not above the last one`)
            case "epochStart":
              return fail(name, Reasons.InvalidRequest, "a new producer epoch must start at Producer-Seq 0")
          }
        })
      )
  }

  const read = (
    name: string,
    requested: Offsets.Requested,
    options: { readonly maxBytes: number; readonly touch: boolean }
  ): Effect.Effect<ReadResult, DurableStreamsError> => {
    const after = requested._tag === "At" ? requested.position : Offsets.start
    const count = requested._tag === "Now" ? 0 : maxEntriesPerRead
    return redis
      .evalBytes(Scripts.read, keysOf(name).keys, [
        Offsets.entryId(after),
        options.maxBytes,
        count,
        options.touch ? "1" : "",
        requested._tag === "Start" ? "start" : requested._tag === "Now" ? "now" : ""
      ])
      .pipe(
        Effect.mapError(fromRedis(name)),
        Effect.flatMap((reply) => {
          if (String(reply[0]) === "notfound") return notFound(name)
          if (String(reply[0]) === "gone") return gone(name)
          if (String(reply[0]) === "trimmed") {
            return fail(name, Reasons.Gone, `this offset of ${name} is no longer kept (retainEntries)`)
          }
          const info = infoOf(reply as unknown as Scripts.ReadHead)
          const first = { ms: BigInt(Number(reply[7])), seq: 0n }
          const tail = BigInt(Number(reply[2]))
          const entries: Array<Buffer> = []
          const from = requested._tag === "Start" ? first : after
          let last = from
          for (let i = 8; i + 1 < reply.length; i += 2) {
            last = Offsets.ofEntryId(String(reply[i]))
            entries.push(reply[i + 1] as Buffer)
          }
          const start = requested._tag === "Now" ? { ms: tail, seq: 0n } : from
          const end = entries.length > 0 ? last : start.ms > tail ? { ms: tail, seq: 0n } : start
          return Effect.succeed({
            ...info,
            offset: Offsets.format(start),
            nextOffset: Offsets.format(end),
            entries,
            upToDate: end.ms >= tail
          })
        })
      )
  }

  const infoOf = (head: Scripts.ReadHead): StreamInfo => ({
    contentType: String(head[1]),
    nextOffset: Offsets.ofPosition(Number(head[2])),
    closed: String(head[3]) === "1",
    ttlSeconds: String(head[4]) === "" ? undefined : Number(String(head[4])),
    expiresAt: String(head[5]) === "" ? undefined : String(head[5]),
    id: String(head[6])
  })

  const head = (name: string) =>
    Effect.map(read(name, { _tag: "Now" }, { maxBytes: 0, touch: false }), (result): StreamInfo => ({
      contentType: result.contentType,
      nextOffset: result.nextOffset,
      closed: result.closed,
      ttlSeconds: result.ttlSeconds,
      expiresAt: result.expiresAt,
      id: result.id
    }))

  const release = (source: string, fork: string): Effect.Effect<void, DurableStreamsError> =>
    redis.eval(Scripts.release, keysOf(source).keys, [fork]).pipe(
      Effect.mapError(fromRedis(source)),
      Effect.flatMap((reply) => (reply[0] === "collected" && reply[1] !== "" ? release(reply[1], source) : Effect.void))
    )

  /** Releases the references of forks that no longer exist (expired), so that a delete is not soft for ever. */
  const pruneForks = (name: string): Effect.Effect<void, DurableStreamsError> =>
    Effect.gen(function* () {
      const forks = yield* redis
        .send<Array<string>>("HGETALL", keysOf(name).keys[3])
        .pipe(Effect.mapError(fromRedis(name)))
      const now = Date.now()
      const old: Array<string> = []
      for (let i = 0; i + 1 < forks.length; i += 2) {
        if (now - Number(forks[i + 1]) >= referenceGraceMs) old.push(forks[i]!)
      }
      if (old.length === 0) return
      // one pipelined round trip for every old reference's fork, however many there are
      const found = yield* redis.pipeline(
        old.map((fork) => ({ name: "EXISTS", args: [keysOf(fork).keys[0]], key: keysOf(fork).keys[0] }))
      )
      const gone = old.filter((_, i) => {
        const reply = found[i]
        return reply !== undefined && Result.isSuccess(reply) && reply.success === 0
      })
      if (gone.length > 0) {
        yield* redis.send("HDEL", keysOf(name).keys[3], ...gone).pipe(Effect.mapError(fromRedis(name)))
      }
    })

  const remove = (name: string): Effect.Effect<void, DurableStreamsError> =>
    pruneForks(name).pipe(
      Effect.andThen(redis.eval(Scripts.remove, keysOf(name).keys, [keysOf(name).channel])),
      Effect.mapError((error) => (error._tag === "DurableStreamsError" ? error : fromRedis(name)(error))),
      Effect.flatMap((reply) => {
        switch (reply[0]) {
          case "notfound":
            return notFound(name)
          case "gone":
            // a tombstone no fork references any more was collected: its own source is released
            return Effect.andThen(reply[1] === "" ? Effect.void : release(reply[1], name), gone(name))
          case "soft":
            return Effect.void
          case "deleted":
            return reply[1] === "" ? Effect.void : release(reply[1], name)
        }
      })
    )

  const reference = (source: string, fork: string, media: string) =>
    redis.eval(Scripts.reference, [keysOf(source).keys[0], keysOf(source).keys[3]], [media, fork, Date.now()]).pipe(
      Effect.mapError(fromRedis(source)),
      Effect.flatMap((reply) => {
        switch (reply[0]) {
          case "notfound":
            return notFound(source)
          case "gone":
            return fail(source, Reasons.Conflict, `the fork's source ${source} was deleted`)
          case "contentType":
            return fail(source, Reasons.Conflict, `the fork's content type is not its source's`)
          default:
            return Effect.succeed(reply)
        }
      })
    )

  const forkOf = (name: string) =>
    redis
      .send<Array<string | null>>("HMGET", keysOf(name).keys[0], "src", "fo", "ct", "mt", "closed", "tail", "gone")
      .pipe(
        Effect.mapError(fromRedis(name)),
        Effect.map(([source, asked, contentType, media, closed, tail, tombstone]): ExistingFork | undefined =>
          tail === null || tail === undefined || tombstone !== null
            ? undefined
            : {
                source: source ?? "",
                asked: asked ?? "",
                contentType: contentType ?? "",
                mediaType: media ?? "",
                closed: closed === "1",
                nextOffset: Offsets.ofPosition(Number(tail))
              }
        )
      )

  return { keysOf, create, append, read, head, remove, reference, release, forkOf }
}
