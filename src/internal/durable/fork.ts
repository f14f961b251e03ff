/**
 * Creating a fork: a reference taken on the source (so that deleting the source only soft-deletes it), the source's
 * entries up to the fork position copied into the fork (the same offsets: no translation; a byte entry straddling a
 * sub-offset is cut), the source's TTL or expiry inherited unless the fork sets its own, and the fork created with
 * them in one script. A fork that was not created (it existed, or conflicted) gives back a reference it added.
 *
 * @internal
 */
import { Effect } from "effect"
import type { Created, CreateOptions } from "../../DurableStreams.js"
import * as Reasons from "../../DurableStreamsError.js"
import type { DurableStreamsError } from "../../DurableStreamsError.js"
import { isJson, mediaType } from "./body.js"
import { fail } from "./errors.js"
import * as Offsets from "./offsets.js"
import { maxItemsPerWrite, type Store } from "./store.js"

/** How many bytes each read of the source copies. */
const copyPageBytes = 4 * 1024 * 1024

/** The most bytes a fork copies (they pass through this process and one script). */
const maxCopyBytes = 64 * 1024 * 1024

/** The source's entries from `first` (where its kept data starts) up to `position`, each with the position it ends at. */
const copyUpTo = (
  store: Store,
  source: string,
  json: boolean,
  first: number,
  position: number
): Effect.Effect<Array<readonly [number, Buffer]>, DurableStreamsError> =>
  Effect.gen(function* () {
    const copied: Array<readonly [number, Buffer]> = []
    let at = first
    let bytes = 0
    while (at < position) {
      const page = yield* store.read(
        source,
        { _tag: "At", position: { ms: BigInt(at), seq: 0n } },
        { maxBytes: copyPageBytes, touch: false }
      )
      if (page.entries.length === 0) break
      for (const entry of page.entries) {
        bytes += entry.length
        if (copied.length >= maxItemsPerWrite || bytes > maxCopyBytes) {
          return yield* fail(
            source,
            Reasons.InvalidRequest,
            `a fork copies at most ${maxItemsPerWrite} entries and ${maxCopyBytes} bytes of its source`
          )
        }
        const end = at + (json ? 1 : entry.length)
        if (end <= position) copied.push([end, Buffer.from(entry)])
        else if (at < position) copied.push([position, Buffer.from(entry.subarray(0, position - at))])
        at = end
        if (at >= position) break
      }
    }
    return copied
  })

/** Creates stream `name` as a fork of `options.fork.from`, as the protocol's section 4.2 says. */
export const createFork = (
  store: Store,
  name: string,
  source: string,
  options: CreateOptions
): Effect.Effect<Created, DurableStreamsError> =>
  Effect.gen(function* () {
    const fork = options.fork!
    const subOffset = fork.subOffset ?? 0
    const anchor = fork.offset === undefined ? undefined : Offsets.parse(fork.offset)
    if (fork.offset !== undefined && (anchor === undefined || anchor.seq !== 0n)) {
      return yield* fail(name, Reasons.InvalidRequest, "Stream-Fork-Offset is not an offset of this server")
    }
    if (subOffset > 0 && anchor === undefined) {
      return yield* fail(name, Reasons.InvalidRequest, "Stream-Fork-Sub-Offset needs Stream-Fork-Offset")
    }
    const requestedMedia = options.contentType === undefined ? "" : mediaType(options.contentType)
    const asked = `${fork.offset ?? ""}+${subOffset}`
    // a retry of a fork that exists answers as an idempotent create, even once its source is gone
    const existing = yield* store.forkOf(name)
    if (existing !== undefined) {
      const same =
        existing.source === source &&
        existing.asked === asked &&
        existing.closed === (options.closed === true) &&
        (requestedMedia === "" || requestedMedia === existing.mediaType)
      if (!same) return yield* fail(name, Reasons.Conflict, `stream ${name} exists with another configuration`)
      return {
        created: false,
        contentType: existing.contentType,
        nextOffset: existing.nextOffset,
        closed: existing.closed
      }
    }
    const referenced = yield* store.reference(source, name, requestedMedia)
    const [, contentType, media, tail, ttl, expiresMs] = referenced
    const added = referenced[7] === 1
    const first = referenced[8]
    const created = Effect.gen(function* () {
      const position = (anchor === undefined ? tail : Number(anchor.ms)) + subOffset
      if (position > tail) {
        return yield* fail(name, Reasons.InvalidRequest, "the fork offset is beyond the source's tail")
      }
      if (position < first) {
        return yield* fail(name, Reasons.Gone, "the fork offset is before the source's kept data (retainEntries)")
      }
      if (subOffset > 0 && !isJson(media)) {
        // bytes of the one append after the anchor, not past it (the protocol's "next data boundary")
        const next = yield* store.read(source, { _tag: "At", position: anchor! }, { maxBytes: 1, touch: false })
        if (subOffset > (next.entries[0]?.length ?? 0)) {
          return yield* fail(name, Reasons.InvalidRequest, "Stream-Fork-Sub-Offset is past the next append's end")
        }
      }
      const copied = yield* copyUpTo(store, source, isJson(media), first, position)
      const own = options.ttlSeconds !== undefined || options.expiresAt !== undefined
      return yield* store.create(name, {
        contentType: options.contentType ?? contentType,
        ttlSeconds: own ? options.ttlSeconds : ttl === "" ? undefined : Number(ttl),
        expiresAt: own ? options.expiresAt : expiresMs === "" ? undefined : new Date(Number(expiresMs)),
        closed: options.closed === true,
        body: options.body ?? new Uint8Array(),
        fork: { source, asked, position, first, copied }
      })
    })
    return yield* created.pipe(
      Effect.tap((result) => (result.created || !added ? Effect.void : store.release(source, name))),
      Effect.tapError(() => (added ? Effect.ignore(store.release(source, name)) : Effect.void))
    )
  })
