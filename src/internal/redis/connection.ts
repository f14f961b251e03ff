/**
 * Opening and closing ioredis clients for one connection spec (single node, Sentinel or Cluster).
 *
 * Every client is created with `lazyConnect` and connected here, so a failure to connect is a typed `RedisError`
 * within the connect timeout instead of an endless silent reconnect loop. Three roles share one spec:
 * - `shared`: the pipelined connection every plain command uses; reconnects on the configured schedule, and its
 *   offline queue is off so commands fail fast (typed) while it is down instead of piling up in a hidden buffer;
 * - `subscriber`: the pub/sub connection; reconnects on the schedule and resubscribes by itself;
 * - `dedicated`: a pooled connection for blocking commands and WATCH; never reconnects (a broken one is replaced).
 *
 * @internal
 */
import { Duration, Effect } from "effect"
import { Cluster, type ClusterNode, type ClusterOptions, Redis, type RedisOptions } from "ioredis"
import type { RedisError } from "../../RedisError.js"
import { redisError } from "../reasons.js"
import { watchDeadlines } from "./deadlines.js"
import { classify, scrub } from "./errors.js"
import { fromSchedule, type RetryStrategy } from "./reconnect.js"

/** A connected ioredis client: a single node (also behind Sentinel) or a Cluster. */
export type Client = Redis | Cluster

/** ioredis options without `replyMapping`, which `exactOptionalPropertyTypes` rejects. */
export type NodeOptions = Omit<RedisOptions, "replyMapping">

/** Everything needed to open a client of any role. */
export type ConnectionSpec =
  | { readonly kind: "single" | "sentinel"; readonly options: NodeOptions; readonly common: CommonSpec }
  | {
      readonly kind: "cluster"
      readonly nodes: ReadonlyArray<ClusterNode>
      readonly options: NodeOptions
      readonly common: CommonSpec
    }

/** Settings shared by every role and mode. */
export interface CommonSpec {
  readonly connectTimeout: Duration.Duration
  readonly commandTimeout: Duration.Duration | undefined
  readonly reconnect: Parameters<typeof fromSchedule>[0]
  /** Values to scrub from every error message (passwords). */
  readonly secrets: ReadonlyArray<string>
  /** Connect the shared and subscriber connections in the background instead of waiting for them. */
  readonly background: boolean
  /** Which settings gave the address, the credentials and the connect timeout: named when a connect fails. */
  readonly origin: Origin
}

/** Names of the settings behind a connection, for the errors of a failed connect (`REDIS_URL`, `the url option`…). */
export interface Origin {
  readonly address: string
  readonly credentials: string
  readonly connectTimeout: string
}

/** What a failed connect's reason should make the reader look at: the setting behind it. */
const hints = {
  Connection: (origin: Origin) => `the address is set by ${origin.address}`,
  Auth: (origin: Origin) => `the credentials are set by ${origin.credentials}`,
  Timeout: (origin: Origin) => `the address is set by ${origin.address}; the wait by ${origin.connectTimeout}`
}

/** A failed connect's error, saying which setting to look at: the address, the credentials or the timeout. */
const explained = (error: RedisError, origin: Origin): RedisError => {
  const reason = error.reason
  switch (reason._tag) {
    case "Connection":
    case "Auth":
    case "Timeout":
      return redisError(error.op, reason._tag, `${reason.message} (${hints[reason._tag](origin)})`, reason.code)
    default:
      return error
  }
}

/** What a client is opened for; see the module header. */
export type Role = "shared" | "subscriber" | "dedicated"

const roleOptions = (spec: ConnectionSpec, role: Role, retry: RetryStrategy | undefined): NodeOptions => ({
  ...spec.options,
  lazyConnect: true,
  enableOfflineQueue: role === "subscriber",
  maxRetriesPerRequest: 0,
  connectTimeout: Duration.toMillis(spec.common.connectTimeout),
  // no commandTimeout: `watchTimeouts` gives the same with one timer per connection instead of one per command
  retryStrategy: retry === undefined ? () => null : retry.retryStrategy
})

/** A node's address. */
export interface Address {
  readonly host: string
  readonly port: number
}

/**
 * Where a Cluster's nodes are now: the nodes the shared client knows from the live topology, then the seeds. The
 * subscriber and dedicated connections of a Cluster are opened from it, so they find the cluster even when the seed
 * nodes are gone.
 */
export type Topology = () => ReadonlyArray<Address>

const seedAddresses = (nodes: ReadonlyArray<ClusterNode>): Array<Address> =>
  nodes.flatMap((node) =>
    typeof node === "object" && node.host !== undefined && node.port !== undefined
      ? [{ host: node.host, port: node.port }]
      : []
  )

/** The live nodes first, then the seeds, each address once. */
const addressesOf = (spec: ConnectionSpec & { kind: "cluster" }, topology: Topology | undefined): Array<Address> => {
  const seen = new Set<string>()
  return [...(topology?.() ?? []), ...seedAddresses(spec.nodes)].filter((address) => {
    const key = `${address.host}:${address.port}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

/**
 * The subscriber of a Cluster: PUBLISH reaches every node, so one plain connection to any node hears every channel.
 * On a drop it moves on to the next node of the live topology (the connector reads host and port from the options
 * at each attempt).
 */
const clusterSubscriber = (
  addresses: () => ReadonlyArray<Address>,
  options: NodeOptions,
  retry: RetryStrategy
): { client: Client; retry: RetryStrategy } => {
  let attempt = 0
  const client = new Redis({ ...options, ...addresses()[0] } as NodeOptions)
  const rotating: RetryStrategy = {
    reset: retry.reset,
    retryStrategy: (times) => {
      const current = addresses()
      attempt += 1
      Object.assign(client.options, current[attempt % current.length])
      return retry.retryStrategy(times)
    }
  }
  return { client, retry: rotating }
}

const build = (
  spec: ConnectionSpec,
  role: Role,
  topology: Topology | undefined
): { client: Client; retry: RetryStrategy | undefined } => {
  const retry = role === "dedicated" ? undefined : fromSchedule(spec.common.reconnect)
  const options = roleOptions(spec, role, retry)
  if (spec.kind !== "cluster") {
    const client = new Redis({ ...options, sentinelRetryStrategy: options.retryStrategy } as NodeOptions)
    return { client, retry }
  }
  if (role === "subscriber" && retry !== undefined) {
    return clusterSubscriber(() => addressesOf(spec, topology), options, retry)
  }
  const { retryStrategy, enableOfflineQueue, ...nodeOptions } = options
  const clusterOptions: Omit<ClusterOptions, "redisOptions"> & { readonly redisOptions: typeof nodeOptions } = {
    lazyConnect: true,
    enableOfflineQueue,
    redisOptions: nodeOptions,
    clusterRetryStrategy: retryStrategy === undefined || retryStrategy === null ? () => null : retryStrategy,
    // a node that hangs gives neither MOVED nor a closed socket: the slot map is read again every interval (and
    // after a timeout, see `noteTimeout`), asking each node at most this long (a hung one is passed over)
    slotsRefreshTimeout: Math.min(1000, Duration.toMillis(spec.common.connectTimeout)),
    ...(role === "shared" ? { slotsRefreshInterval: slotsRefreshMs } : {})
  }
  return { client: new Cluster(addressesOf(spec, topology), clusterOptions), retry }
}

/** How often the shared client of a Cluster reads the slot map again, whatever happens (bounds a failover's notice). */
const slotsRefreshMs = 2000

/** What a client does when a command of its got no reply in time (set by `open` for Sentinel clients). */
const onTimeout = new WeakMap<Client, () => void>()

/**
 * Called with a command that got no reply in time: its server may hang (a partition, a stalled host) while a replica
 * takes over, and a hung server closes no socket. On a Cluster the slot map is read again at once (ioredis asks one
 * node at a time, skipping one that does not answer within the refresh timeout; concurrent calls make one refresh);
 * with Sentinel the sentinels are asked which master they name (see `sentinelCheck`).
 */
export const noteTimeout = (client: Client): void => {
  if (client instanceof Cluster) client.refreshSlotsCache()
  else onTimeout.get(client)?.()
}

/** Who is told when a client sees a failover (see `onFailover`). */
const failoverListeners = new WeakMap<Client, () => void>()

/**
 * Calls `listener` each time `client` (a shared client) sees a failover: a Cluster's slot map names another master
 * for a slot range, or the sentinels name another master than the hung one. Calls in flight meanwhile may have been
 * held up for as long as the failover took.
 */
export const onFailover = (client: Client, listener: () => void): void => {
  failoverListeners.set(client, listener)
}

/** The owner of each slot range, as `from-to host:port` texts (to say what a refresh changed). */
const slotOwners = (client: Cluster): Map<string, string> => {
  const owners = new Map<string, string>()
  let from = 0
  for (let slot = 1; slot <= client.slots.length; slot++) {
    const owner = client.slots[from]?.[0]
    if (slot === client.slots.length || client.slots[slot]?.[0] !== owner) {
      if (owner !== undefined) owners.set(`${from}-${slot - 1}`, owner)
      from = slot
    }
  }
  return owners
}

/**
 * Says what a Cluster client's slot map refresh changed: one line per slot range whose master changed (a failover,
 * or slots moved), naming the old and the new master.
 */
const watchSlots = (client: Cluster, log: (message: string) => void): void => {
  let known = new Map<string, string>()
  client.on("refresh", () => {
    const now = slotOwners(client)
    const moved = Array.from(now).filter(
      ([range, owner]) => known.size > 0 && known.has(range) && known.get(range) !== owner
    )
    for (const [range, owner] of moved) {
      log(`RedisClient: slots ${range} are served by ${owner} now, no longer by ${known.get(range)} (a failover)`)
    }
    if (moved.length > 0) failoverListeners.get(client)?.()
    known = now
  })
}

/**
 * ioredis opens a Cluster node's connection at the node's first command and, with the offline queue off, refuses
 * what is sent to the node meanwhile ("Connection is closed"), retrying it 100 ms later on a random node: on the
 * hung master, when one hangs (measured with plain ioredis and a frozen master: commands for the other masters held
 * 0.1–0.7 s, some failed `Timeout`). The shared client connects to each master once it is ready (`open` waits for
 * these connects, see `mastersSettled`), and to a master it learns of later at once. Not before it is ready: its
 * ready check would be refused by a node still connecting.
 */
const connectMasters = (client: Cluster): void => {
  const connect = (node: Redis) => {
    if (client.status === "ready" && !node.options.readOnly && node.status === "wait") {
      node.connect().catch(() => undefined)
    }
  }
  client.on("ready", () => client.nodes("master").forEach(connect))
  client.on("+node", connect)
}

/** How long `open` waits at most for a Cluster's master connections (a hung master's never gets ready). */
const mastersWaitMs = 1000

/** Resolves when each master connection of `client` is ready or has failed, or after `mastersWaitMs`; never fails. */
const mastersSettled = (client: Cluster): Promise<void> =>
  new Promise((resolve) => {
    const pending = client.nodes("master").filter((node) => node.status !== "ready" && node.status !== "end")
    let left = pending.length
    if (left === 0) return resolve()
    const timer = setTimeout(resolve, mastersWaitMs)
    const settled = () => {
      left -= 1
      if (left === 0) {
        clearTimeout(timer)
        resolve()
      }
    }
    for (const node of pending) {
      const once = () => {
        node.off("ready", once).off("close", once)
        settled()
      }
      node.on("ready", once).on("close", once)
    }
  })

/** An address as compared: IPv4 of an IPv4-mapped IPv6 address, lower case. */
const normalHost = (host: string | undefined): string => (host ?? "").replace(/^::ffff:/, "").toLowerCase()

/**
 * The timeout handler of a Sentinel client: asks the sentinels in turn (each within a second) which master they name
 * for `name`; when it is not the server the client is connected to (the hung master was replaced), drops the
 * connection, which reconnects to the master the sentinels name. At most one check a second.
 */
const sentinelCheck = (client: Redis, options: NodeOptions, log: (message: string) => void): (() => void) => {
  let checking = false
  let lastCheck = 0
  const ask = async (sentinel: { readonly host?: string; readonly port?: number }) => {
    const probe = new Redis({
      host: sentinel.host ?? "127.0.0.1",
      port: sentinel.port ?? 26379,
      ...(options.sentinelUsername === undefined ? {} : { username: options.sentinelUsername }),
      ...(options.sentinelPassword === undefined ? {} : { password: options.sentinelPassword }),
      ...(options.sentinelTLS === undefined ? {} : { tls: options.sentinelTLS }),
      lazyConnect: true,
      connectTimeout: 1000,
      commandTimeout: 1000,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null
    })
    probe.on("error", () => undefined)
    try {
      await probe.connect()
      return (await probe.call("SENTINEL", "get-master-addr-by-name", options.name ?? "")) as [string, string] | null
    } finally {
      probe.disconnect()
    }
  }
  return () => {
    if (checking || Date.now() - lastCheck < 1000) return
    checking = true
    lastCheck = Date.now()
    void (async () => {
      for (const sentinel of options.sentinels ?? []) {
        const named = await ask(sentinel).catch(() => undefined)
        if (named === undefined || named === null) continue
        const stream = client.stream as { readonly remoteAddress?: string; readonly remotePort?: number } | undefined
        const connected = stream?.remoteAddress !== undefined && stream.remotePort !== undefined
        if (
          connected &&
          (normalHost(named[0]) !== normalHost(stream.remoteAddress) || Number(named[1]) !== stream.remotePort)
        ) {
          log(
            `RedisClient: ${normalHost(stream.remoteAddress)}:${stream.remotePort} does not answer, and the sentinels ` +
              `name ${named[0]}:${named[1]} as the master of ${options.name ?? ""} (a failover): reconnecting to it`
          )
          failoverListeners.get(client)?.()
          client.disconnect(true)
        }
        return
      }
    })().finally(() => {
      checking = false
    })
  }
}

/**
 * A subscriber connection's node may hang with its socket open: subscribed, it would hear nothing and say nothing.
 * While it is ready it is pinged every second; a ping that fails (no reply within the command timeout) drops the
 * connection, which reconnects (on a Cluster, to the next node) and tells the subscriptions (`Reconnected`).
 */
const watchSubscriber = (client: Client): void => {
  let pinging = false
  const timer = setInterval(() => {
    if (pinging || client.status !== "ready") return
    pinging = true
    client
      .ping()
      .catch(() => {
        if (client.status === "ready") client.disconnect(true)
      })
      .finally(() => {
        pinging = false
      })
  }, 1000)
  timer.unref()
  client.once("end", () => clearInterval(timer))
}

/**
 * Fails each command of `client` that has no reply within the spec's command timeout (see deadlines.ts); on a Cluster,
 * on each node's connection. A dedicated connection runs blocking commands, which wait as long as they are told to.
 */
const watchTimeouts = (client: Client, spec: ConnectionSpec, role: Role): void => {
  if (role === "dedicated" || spec.common.commandTimeout === undefined) return
  const timeoutMs = Duration.toMillis(spec.common.commandTimeout)
  if (!(client instanceof Cluster)) return watchDeadlines(client, timeoutMs)
  for (const node of client.nodes()) watchDeadlines(node, timeoutMs)
  client.on("+node", (node: Redis) => watchDeadlines(node, timeoutMs))
}

/** The clients closed here: their end is final. */
const closedHere = new WeakSet<Client>()

/** Disconnects `client` at once, for good. */
const disconnect = (client: Client): void => {
  closedHere.add(client)
  client.disconnect()
}

/**
 * ioredis ends a client for good when its connector fails (its status goes from `connecting` straight to `end`),
 * though the client is meant to reconnect: a failover announced while the client asks a sentinel for the master
 * cancels that connect, and every command then fails "Connection is closed" forever (ioredis#1683; the fault suite
 * saw a subscriber go deaf this way). Such a client is connected again after the schedule's next delay, with one
 * warning per outage through `warn`. A client closed here or by its user (through `close`, so not from `connecting`),
 * one that does not reconnect (`reconnects()` false: never ready yet), and one whose schedule has ended (said too)
 * stay ended.
 */
const reconnectAfterEnd = (
  client: Redis,
  role: Role,
  reconnects: () => boolean,
  cause: () => string,
  warn: (message: string) => void
): void => {
  let connecting = false
  let warned = false
  client.on("connecting", () => (connecting = true))
  client.on("connect", () => (connecting = false))
  client.on("close", () => (connecting = false))
  client.on("ready", () => (warned = false))
  client.on("end", () => {
    const connectorFailed = connecting
    connecting = false
    if (!connectorFailed || closedHere.has(client) || !reconnects()) return
    // our strategy ignores the attempt number and follows the schedule: null once the schedule has ended
    const delay = client.options.retryStrategy?.(1)
    const ended = `ioredis ended the ${role} connection while it reconnected (${cause()})`
    if (typeof delay !== "number") return warn(`RedisClient: ${ended}; the reconnect schedule has ended: it stays down`)
    if (!warned) warn(`RedisClient: ${ended}; connecting it again`)
    warned = true
    setTimeout(() => {
      if (client.status === "end" && !closedHere.has(client)) client.connect().catch(() => undefined)
    }, delay).unref()
  })
}

/**
 * Opens a client for `role` and waits until it is ready, or fails with a typed `RedisError` within the connect
 * timeout (with `background`, the shared and subscriber connections are returned at once and connect meanwhile). On a
 * Cluster, `topology` gives the nodes to reach (the live ones first); without it, the seeds. The client reconnects on
 * the spec's schedule only after it has been ready once; a failed first connect is torn down, not left reconnecting
 * in the background. What the client says later is logged in the context of the fiber that opens it.
 */
export const open = (spec: ConnectionSpec, role: Role, topology?: Topology): Effect.Effect<Client, RedisError> =>
  Effect.flatMap(Effect.context<never>(), (context) => {
    const { client, retry } = build(spec, role, topology)
    const warn = (message: string) => void Effect.runForkWith(context)(Effect.logWarning(message))
    watchTimeouts(client, spec, role)
    if (role === "subscriber") watchSubscriber(client)
    if (spec.kind === "sentinel" && client instanceof Redis) {
      onTimeout.set(client, sentinelCheck(client, spec.options, warn))
    }
    if (role === "shared" && client instanceof Cluster) {
      watchSlots(client, warn)
      connectMasters(client)
    }
    let ready = false
    // failures reach callers through rejected commands; the last one seen explains a failed connect
    // ("Connection is closed." alone hides a refused socket or a wrong password)
    let lastError: unknown
    client.on("error", (error) => {
      lastError = error
    })
    client.on("ready", () => {
      ready = true
      retry?.reset()
    })
    // in the background, a first connect that fails is retried like a dropped connection
    const background = spec.common.background && role !== "dedicated"
    if (retry !== undefined) {
      const gated = (times: number) => (ready || background ? retry.retryStrategy(times) : null)
      if (client instanceof Cluster) client.options.clusterRetryStrategy = gated
      else {
        client.options.retryStrategy = gated
        reconnectAfterEnd(
          client,
          role,
          () => ready || background,
          () => scrub(lastError instanceof Error ? lastError.message : String(lastError), spec.common.secrets),
          warn
        )
      }
    }
    if (background) {
      client.connect().catch(() => undefined) // commands fail with a retryable Connection error until it is ready
      return Effect.succeed(client)
    }
    return Effect.tryPromise({
      try: () =>
        role === "shared" && client instanceof Cluster
          ? client.connect().then(() => mastersSettled(client))
          : client.connect(),
      catch: (cause) => classify(lastError ?? cause, "connect", spec.common.secrets)
    }).pipe(
      Effect.timeoutOrElse({
        duration: spec.common.connectTimeout,
        orElse: () =>
          Effect.fail(
            redisError(
              "connect",
              "Timeout",
              `no ready connection within ${Duration.format(spec.common.connectTimeout)}`
            )
          )
      }),
      Effect.mapError((error) => explained(error, spec.common.origin)),
      Effect.onError(() => Effect.sync(() => disconnect(client))),
      Effect.as(client)
    )
  })

/** Waits until the client's socket has ended (status `end`), or returns at once when it already has. */
const ended = (client: Client): Promise<void> =>
  client.status === "end" ? Promise.resolve() : new Promise((resolve) => client.once("end", () => resolve()))

/**
 * Closes a client. Gracefully (the default): `QUIT`, so pending replies arrive first, then waits for the socket to
 * end, falling back to a hard disconnect when that takes longer than `grace`. Not gracefully: disconnects at once,
 * failing whatever is pending (a blocked `XREAD` would otherwise hold a `QUIT` back for its whole block time).
 */
export const close = (
  client: Client,
  options: { readonly graceful?: boolean; readonly grace?: Duration.Input } = {}
): Effect.Effect<void> =>
  Effect.promise(() => {
    closedHere.add(client)
    if (client.status === "end") return Promise.resolve()
    // between reconnect attempts there is no socket to end: disconnecting cancels the next attempt, and no "end"
    // follows (waiting for one held a shutdown for the whole grace while Redis was down)
    const socketless = client.status === "reconnecting" || client.status === "close" || client.status === "wait"
    const done = socketless ? Promise.resolve() : ended(client)
    if (options.graceful === false || client.status !== "ready") client.disconnect()
    else client.quit().catch(() => client.disconnect())
    return done
  }).pipe(
    Effect.timeoutOrElse({
      duration: options.grace ?? "2 seconds",
      orElse: () => Effect.sync(() => client.disconnect())
    })
  )

/**
 * The nodes a Cluster client knows now (connected ones first), for the connections derived from it; none for a
 * single node or Sentinel, whose connections find the server by themselves.
 */
export const liveTopology =
  (client: Client): Topology =>
  () =>
    client instanceof Cluster
      ? client
          .nodes()
          .toSorted((a, b) => Number(b.status === "ready") - Number(a.status === "ready"))
          .flatMap((node) =>
            node.options.host === undefined || node.options.port === undefined
              ? []
              : [{ host: node.options.host, port: node.options.port }]
          )
      : []
