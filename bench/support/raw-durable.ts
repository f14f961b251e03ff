/**
 * The thinnest Durable Streams-like server on raw ioredis, the bench's raw baseline: `POST` appends the body with one
 * XADD and PUBLISHes the new id (no content type, sequence, producer or closure checks, no metadata), `GET ?offset=`
 * reads with XRANGE (1,000 entries a page) and, with `live=long-poll`, waits on the stream's channel (one subscriber
 * connection per server, waiters in a map). Offsets are raw entry ids. What a hand-written endpoint does without the
 * protocol's guarantees.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { Redis } from "ioredis"

type Entries = Array<[string, Array<Buffer>]>

/** Starts the raw server on a free port; resolves with its URL and its `close`. */
export const startRawServer = async (url: string, longPollMs: number) => {
  const redis = new Redis(url)
  const subscriber = new Redis(url)
  const waiters = new Map<string, Set<() => void>>()
  subscriber.on("message", (channel: string) => {
    for (const wake of waiters.get(channel) ?? []) wake()
    waiters.delete(channel)
  })
  const subscribed = new Set<string>()
  const body = (request: IncomingMessage) =>
    new Promise<Buffer>((resolve) => {
      const parts: Array<Buffer> = []
      request.on("data", (part: Buffer) => parts.push(part))
      request.on("end", () => resolve(Buffer.concat(parts)))
    })
  const range = async (key: string, after: string) =>
    (await redis.xrangeBuffer(key, after === "-1" ? "-" : `(${after}`, "+", "COUNT", 1000)) as unknown as Entries
  const respond = (response: ServerResponse, entries: Entries, after: string) => {
    const last = entries.at(-1)?.[0].toString() ?? after
    response.writeHead(entries.length === 0 ? 204 : 200, { "stream-next-offset": last })
    response.end(Buffer.concat(entries.map(([, fields]) => fields[1]!)))
  }
  const server = createServer(async (request, response) => {
    const { pathname, searchParams } = new URL(request.url ?? "/", "http://raw")
    const key = `raw:${pathname}`
    if (request.method === "POST") {
      const id = await redis.xadd(key, "*", "d", await body(request))
      await redis.publish(key, id ?? "")
      response.writeHead(204, { "stream-next-offset": id ?? "" })
      response.end()
      return
    }
    if (request.method === "PUT") {
      response.writeHead(201)
      response.end()
      return
    }
    const after = searchParams.get("offset") ?? "-1"
    let entries = await range(key, after)
    if (entries.length === 0 && searchParams.get("live") === "long-poll") {
      if (!subscribed.has(key)) {
        subscribed.add(key)
        await subscriber.subscribe(key)
      }
      entries = await range(key, after)
      if (entries.length === 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, longPollMs)
          const set = waiters.get(key) ?? new Set()
          set.add(() => {
            clearTimeout(timer)
            resolve()
          })
          waiters.set(key, set)
        })
        entries = await range(key, after)
      }
    }
    respond(response, entries, after)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      redis.disconnect()
      subscriber.disconnect()
    }
  }
}
