/**
 * A look inside Redis for the people who run the library's streams: topics and their consumer groups, dead letters,
 * resumable runs, event sinks and live state, as JSON endpoints and one self-contained HTML page that polls them
 * (inline CSS and JavaScript, nothing fetched from elsewhere), built on effect's own HTTP router.
 *
 * Routes under `path` (default `/inspector`):
 * - `GET {path}`: the page (`?token=` stores an access token in a cookie of the path, then redirects to the page);
 *   `GET {path}/page.js`: its script.
 * - `GET {path}/api/config`: what is inspected, whether actions are enabled, the page's poll interval.
 * - `GET {path}/api/topics?cursor=&limit=`: a page of topics ({@link InspectedTopic}) and the next cursor.
 * - `GET {path}/api/topic?topic=`: one topic (404 when neither it nor its dead letters exist).
 * - `GET {path}/api/dead-letters?topic=&cursor=&limit=`: a page of a topic's dead letters, oldest first.
 * - `POST {path}/api/dead-letters/replay`, `POST {path}/api/dead-letters/delete` with JSON
 *   `{ topic, ids: [...] }` or `{ topic, all: true, upTo? }`: puts dead letters back on their topic, or deletes them.
 * - `GET {path}/api/runs?cursor=&limit=`: a page of resumable runs; `POST {path}/api/runs/cancel` with JSON
 *   `{ stream, runId, reason? }` cancels one.
 * - `GET {path}/api/sinks`: the event sinks of this process; `GET {path}/api/adapter?cursor=&limit=`: live-state
 *   streams and their groups; `GET {path}/api/subjects?cursor=`: subjects counted in bounded stretches.
 *
 * Every request passes the routes' guard first (`Host` among `allowedHosts`, an `Origin` the page's own or allowed,
 * JSON bodies for actions: see `ResumableStreamHttp.SecurityOptions`), then `authorize`, which is required: a hook,
 * {@link withToken} (an access token, as Jupyter does), or {@link allowEveryone}. It is asked for the kind of access a
 * request needs: `read` (figures), `data` (what messages hold: dead letters' payload previews and metadata, hidden
 * otherwise) or `action` (replay, delete, cancel: also needs `actions: true`). A refused request gets 403
 * `{ reason: "Forbidden", message }`.
 *
 * Cost is bounded: keys are found with `SCAN … COUNT … TYPE` on every master (never `KEYS`), at most `maxScanCalls`
 * calls per request, in pages continued by a cursor; the figures come from `XINFO GROUPS`/`CONSUMERS`, `XPENDING`,
 * `XLEN` and small scripts, pipelined per node.
 *
 * A dead letter's replay is one script per batch that adds each message to its topic and deletes it from the dead
 * letters in one step: the topic `{prefix}{T}` and its dead letters `{prefix}{T}:dead` share the hash tag `{T}`, so
 * this holds on a Cluster too; a message is never in both, never in neither, and is replayed once.
 *
 * @since 0.1.0
 */

import { createHash, timingSafeEqual } from "node:crypto"
import { Duration, Effect, Layer, Option, Redacted, Result } from "effect"
import { HttpRouter, type HttpServerRequest, HttpServerResponse } from "effect/http"
import type * as EventSinkModule from "./EventSink.js"
import { EventSink } from "./EventSink.js"
import * as RedisClient from "./RedisClient.js"
import type { RedisError } from "./RedisError.js"
import type { SecurityOptions } from "./ResumableStreamHttp.js"
import { ResumableStream, type RunState } from "./ResumableStream.js"
import * as Guard from "./internal/http/guard.js"
import { refusal, searchParam, under } from "./internal/http/request.js"
import { listAdapterStreams } from "./internal/adapter/inspectStreams.js"
import * as DeadLetters from "./internal/messaging/inspectDeadLetters.js"
import { page, script as pageScript } from "./internal/inspector/page.js"
import * as Requests from "./internal/inspector/requests.js"
import { cancelRun, listRuns } from "./internal/resumable/inspectRuns.js"
import { inspectSinks } from "./internal/inspector/sinks.js"
import { countSubjects } from "./internal/subjects/inspectSubjects.js"
import { describeTopics, listTopics } from "./internal/messaging/inspectTopics.js"

/**
 * What a request asks for: to `read` (the page and the JSON figures), to see `data` (what messages hold: payload
 * previews, metadata), or an `action` (replay, delete, cancel).
 *
 * @since 0.1.0
 */
export type Access = "read" | "data" | "action"

/**
 * Decides whether a request may go on: `true` lets it, `false` refuses it with 403 (for `data`: the dead letters are
 * listed without their payloads and metadata). Called for every request, with the kind of access it asks for.
 *
 * @since 0.1.0
 */
export type Authorize = (request: HttpServerRequest.HttpServerRequest, access: Access) => Effect.Effect<boolean>

/**
 * The explicit choice to let every request that passes the `Host`/`Origin` checks read everything, messages' data
 * included, and act (with `actions: true`): for an inspector only trusted people reach.
 *
 * @since 0.1.0
 */
export const allowEveryone: Authorize = () => Effect.succeed(true)

/** The cookie that carries the access token of {@link withToken}. */
const tokenCookie = "inspector-token"

/**
 * Lets in the requests that bear `token`: as `Authorization: Bearer <token>`, as the cookie the page sets when opened
 * as `{path}?token=<token>` (HttpOnly, SameSite=Strict), or as that query parameter. Compared in constant time. Print
 * the page's URL with the token at start, as Jupyter does; everyone else gets 403.
 *
 * @since 0.1.0
 */
export const withToken = (token: Redacted.Redacted<string>): Authorize => {
  const expected = createHash("sha256").update(Redacted.value(token)).digest()
  if (Redacted.value(token).length === 0) throw new Error("Inspector.withToken needs a non-empty token")
  const matches = (given: string | undefined) =>
    given !== undefined && timingSafeEqual(createHash("sha256").update(given).digest(), expected)
  return (request) =>
    Effect.succeed(
      matches(/^Bearer (.+)$/i.exec(request.headers.authorization ?? "")?.[1]) ||
        matches(request.cookies[tokenCookie]) ||
        matches(searchParam(request, "token"))
    )
}

/**
 * An event sink to show: an `EventSink` service is one (its `streamKey`, `stats` and `health`), or give its stats
 * effect with a name.
 *
 * @since 0.1.0
 */
export interface SinkSource {
  readonly streamKey: string
  readonly stats: Effect.Effect<EventSinkModule.Stats>
  /** The stream's length and groups; shown when given (an `EventSink` service has it). */
  readonly health?: Effect.Effect<EventSinkModule.Health, unknown> | undefined
}

/**
 * Which resumable runs to show and how to judge and cancel them.
 *
 * @since 0.1.0
 */
export interface ResumableOptions {
  /** The `ResumableStream` key prefix. Default `river:stream:` (the library's). */
  readonly keyPrefix?: string | undefined
  /** A running run whose heartbeat is older than this is shown `lost`. Default 5 seconds (the library's). */
  readonly producerTimeout?: Duration.Input | undefined
  /** How long a run cancelled by the inspector stays readable. Default 1 hour (the library's `completedTtl`). */
  readonly completedTtl?: Duration.Input | undefined
  /**
   * The `ResumableStream` service's token secrets: a cancel then goes through the service in context (its local
   * producer stops at once). Without them, or without the service, the inspector ends the run with the library's own
   * finish script, and the producer stops at its next heartbeat.
   */
  readonly secret?: Redacted.Redacted<string> | ReadonlyArray<Redacted.Redacted<string>> | undefined
}

/**
 * Options of {@link routes}. Each kind of key is looked for under its capability's prefix (the library's default
 * unless given); `false` leaves it out.
 *
 * @since 0.1.0
 */
export interface Options extends SecurityOptions {
  /**
   * Who may read, see messages' data and act: a hook, {@link withToken}, or {@link allowEveryone}. Required: the
   * routes refuse to be built without an access decision.
   */
  readonly authorize: Authorize
  /** Path under which the page and its endpoints live. Default `/inspector`. */
  readonly path?: string | undefined
  /** Topics of `Publisher` / `Subscriber`: their `keyPrefix`. Default: none (the library's). */
  readonly messaging?: { readonly keyPrefix?: string | undefined } | false | undefined
  /** Runs of `ResumableStream`. */
  readonly resumable?: ResumableOptions | false | undefined
  /** Live state of `StreamAdapter`: its `keyPrefix` (default `motia:stream:`), groups shown per stream (default 20). */
  readonly adapter?:
    { readonly keyPrefix?: string | undefined; readonly maxGroups?: number | undefined } | false | undefined
  /**
   * Subjects of `SubjectStorage` under this `keyPrefix` (`""` for none) are counted. Default: not counted (a count is a
   * keyspace scan, done in bounded stretches).
   */
  readonly subjects?: { readonly keyPrefix?: string | undefined } | false | undefined
  /** The event sinks to show. Default: the `EventSink` service in context, if any. */
  readonly sinks?: ReadonlyArray<SinkSource> | undefined
  /** Enables replay, delete and cancel (for the requests `authorize` lets act). Default false. */
  readonly actions?: boolean | undefined
  /** The `COUNT` of each SCAN call. Default 1,000. */
  readonly scanCount?: number | undefined
  /** SCAN calls one request may make at most (it then answers with what it found and a cursor). Default 20. */
  readonly maxScanCalls?: number | undefined
  /** Dead letters one "all" action moves at most (the reply says when some are left). Default 10,000. */
  readonly maxActionEntries?: number | undefined
  /** How often the page polls the endpoints. Default 2 seconds. */
  readonly pollInterval?: Duration.Input | undefined
}

/**
 * A consumer of a group, as `XINFO CONSUMERS` reports it (`inactiveMs`: Redis 7.2 and later, else `null`).
 *
 * @since 0.1.0
 */
export interface InspectedConsumer {
  readonly name: string
  readonly pending: number
  readonly idleMs: number
  readonly inactiveMs: number | null
}

/**
 * The oldest pending entry of a group (`XPENDING … - + 1`): its id, its consumer, its age (from the id's time), the
 * time since its last delivery, and how many times it was delivered.
 *
 * @since 0.1.0
 */
export interface OldestPending {
  readonly id: string
  readonly consumer: string
  readonly ageMs: number
  readonly idleMs: number
  readonly deliveries: number
}

/**
 * A consumer group of a topic, as `XINFO GROUPS` reports it (`lag`: `null` when Redis cannot tell), with its
 * consumers, its oldest pending entry, the age of the oldest entry it has not read yet (its lag in time; `null`: it
 * has read everything), and its messages waiting for a redelivery (how many, and when the next is due, ms since the
 * epoch by the server's clock).
 *
 * @since 0.1.0
 */
export interface InspectedGroup {
  readonly name: string
  readonly pending: number
  readonly lag: number | null
  readonly lastDeliveredId: string
  readonly entriesRead: number | null
  readonly consumers: ReadonlyArray<InspectedConsumer>
  readonly oldestPending: OldestPending | null
  readonly oldestUnreadAgeMs: number | null
  readonly retrying: { readonly count: number; readonly nextDueAt: number | null }
  /** For a partition of a partitioned topic: the member owning it in this group, and its lease's fencing token. */
  readonly owner: { readonly member: string; readonly fence: number } | null
}

/**
 * A topic: its stream key, whether the stream exists, its length, its groups, and how many dead letters it has.
 *
 * @since 0.1.0
 */
export interface InspectedTopic {
  readonly topic: string
  readonly key: string
  readonly exists: boolean
  readonly length: number
  readonly groups: ReadonlyArray<InspectedGroup>
  readonly deadLetters: number
  readonly deadLetterKey: string
}

/**
 * A dead letter: its entry id in the dead-letter stream, the message's uuid, why it died, where it came from (topic
 * and entry id), the group and consumer that gave up, after how many deliveries, when; the payload's size and its
 * first 256 bytes as text, and its metadata.
 *
 * @since 0.1.0
 */
export interface InspectedDeadLetter {
  readonly id: string
  readonly uuid: string | null
  readonly reason: string
  readonly origin: { readonly topic: string; readonly id: string }
  readonly group: string
  readonly consumer: string
  readonly deliveries: number
  readonly at: string
  readonly payload: { readonly bytes: number; readonly preview: string; readonly truncated: boolean } | null
  readonly metadata: Readonly<Record<string, unknown>> | null
  /** The error that put it there, as kept (`dead_error`, JSON data); null when none was. */
  readonly error: unknown
}

/**
 * A resumable run: its stream and id, where it is (`lost`: marked running, heartbeat older than `producerTimeout`),
 * the stored status, chunks written, producer generation and id, heartbeat age (running runs, by the server's clock),
 * when it started and finished, and when its data expires.
 *
 * @since 0.1.0
 */
export interface InspectedRun {
  readonly stream: string
  readonly runId: string
  readonly state: RunState
  readonly status: string
  readonly chunks: number
  readonly generation: number
  readonly producer: string
  readonly heartbeatAgeMs: number | null
  readonly createdAt: string | null
  readonly finishedAt: string | null
  readonly expiresInMs: number | null
}

/**
 * An event sink of this process: its figures (see `EventSink.Stats`), its latest breaker transitions, and its
 * stream's length and groups when it offers `health` (`null` when Redis cannot answer).
 *
 * @since 0.1.0
 */
export interface InspectedSink extends Omit<EventSinkModule.Stats, "transitions"> {
  readonly streamKey: string
  readonly transitions: ReadonlyArray<{
    readonly from: EventSinkModule.BreakerState
    readonly to: EventSinkModule.BreakerState
    readonly at: string
  }>
  readonly stream: { readonly length: number; readonly groups: ReadonlyArray<EventSinkModule.GroupHealth> } | null
}

/**
 * A group of live state: its id, its item count and its version.
 *
 * @since 0.1.0
 */
export interface InspectedAdapterGroup {
  readonly groupId: string
  readonly items: number
  readonly version: number
}

/**
 * A live-state stream: its name, how many groups it has, and the first of them (at most `maxGroups`).
 *
 * @since 0.1.0
 */
export interface InspectedAdapterStream {
  readonly stream: string
  readonly groupCount: number
  readonly groups: ReadonlyArray<InspectedAdapterGroup>
}

const forbidden = (message: string) => refusal(403, "Forbidden", message)
const notFound = (message: string) => refusal(404, "NotFound", message)
/** A Redis failure: 503 with a message a client may read; the failure itself goes to the log. */
const redisFailure = (error: RedisError) =>
  Effect.as(
    Effect.logWarning(`Inspector: ${error.message}`),
    refusal(503, "Redis", "Redis is unavailable right now; try again shortly")
  )
const json = (body: unknown) => HttpServerResponse.jsonUnsafe(body, { headers: Requests.noStore })

/**
 * The inspector's routes, as a layer to merge into an `HttpRouter` (serve it with `HttpRouter.serve`). Needs the
 * `RedisClient`; uses the `ResumableStream` and `EventSink` services when they are in context. Fails at once (a
 * defect) without `authorize`.
 *
 * @since 0.1.0
 */
export const routes = (
  options: Options
): Layer.Layer<never, never, HttpRouter.HttpRouter | RedisClient.RedisClient> => {
  Guard.requireAccessDecision("Inspector", options.authorize, "Inspector.allowEveryone")
  return Layer.unwrap(
    Effect.gen(function* () {
      const redis = yield* RedisClient.RedisClient
      const settings = settingsOf(
        options,
        redis,
        yield* Effect.serviceOption(ResumableStream),
        yield* Effect.serviceOption(EventSink)
      )
      const kit = kitOf(options, redis, settings)
      return Layer.mergeAll(
        pageRoutes(kit),
        messagingRoutes(kit),
        runRoutes(kit),
        stateRoutes(kit),
        kit.guard.preflight(kit.base)
      )
    })
  )
}

/** What the inspector shows and may do, from its options and the services in context. */
const settingsOf = (
  options: Options,
  redis: RedisClient.Service,
  streams: Option.Option<ResumableStream["Service"]>,
  sinkInContext: Option.Option<SinkSource>
) => {
  const messaging = options.messaging === false ? undefined : (options.messaging?.keyPrefix ?? "")
  const resumable = options.resumable === false ? undefined : (options.resumable ?? {})
  const resumablePrefix = resumable === undefined ? undefined : (resumable.keyPrefix ?? "river:stream:")
  const adapter = options.adapter === false ? undefined : (options.adapter ?? {})
  const adapterPrefix = adapter === undefined ? undefined : (adapter.keyPrefix ?? "motia:stream:")
  const subjects =
    options.subjects === undefined || options.subjects === false ? undefined : (options.subjects.keyPrefix ?? "")
  const sinks: ReadonlyArray<SinkSource> = options.sinks ?? Option.toArray(sinkInContext)
  const secretList = resumable?.secret
  const cancelOptions =
    resumablePrefix === undefined
      ? undefined
      : {
          redis,
          prefix: resumablePrefix,
          completedTtl: Duration.fromInputUnsafe(resumable?.completedTtl ?? "1 hour"),
          service: Option.getOrUndefined(streams),
          secrets: (secretList === undefined ? [] : Redacted.isRedacted(secretList) ? [secretList] : secretList).map(
            Redacted.value
          )
        }
  return {
    actions: options.actions === true,
    scan: { count: Math.max(1, options.scanCount ?? 1000), maxCalls: Math.max(1, options.maxScanCalls ?? 20) },
    maxActionEntries: Math.max(1, options.maxActionEntries ?? 10_000),
    messaging,
    resumablePrefix,
    adapterPrefix,
    maxGroups: Math.max(1, adapter?.maxGroups ?? 20),
    subjects,
    sinks,
    cancelOptions,
    producerTimeout: Duration.fromInputUnsafe(resumable?.producerTimeout ?? "5 seconds"),
    config: {
      actions: options.actions === true,
      pollIntervalMs: Duration.toMillis(Duration.fromInputUnsafe(options.pollInterval ?? "2 seconds")),
      messaging: messaging === undefined ? null : { keyPrefix: messaging },
      resumable: resumablePrefix === undefined ? null : { keyPrefix: resumablePrefix },
      adapter: adapterPrefix === undefined ? null : { keyPrefix: adapterPrefix },
      subjects: subjects === undefined ? null : { keyPrefix: subjects },
      sinks: sinks.length
    }
  }
}

/** What the route groups share: the settings, the guard, and how a route is added. */
const kitOf = (options: Options, redis: RedisClient.Service, settings: ReturnType<typeof settingsOf>) => {
  const { authorize } = options
  const guard = Guard.make(options)
  const base = options.path ?? "/inspector"
  return {
    redis,
    settings,
    authorize,
    guard,
    base,
    /** A route that passes the guard, checks access, and answers a Redis failure with 503. */
    route: (
      method: "GET" | "POST",
      suffix: `/${string}`,
      access: Access,
      handle: (
        request: HttpServerRequest.HttpServerRequest
      ) => Effect.Effect<HttpServerResponse.HttpServerResponse, RedisError>
    ) =>
      HttpRouter.add(method, under(base, suffix), (request) =>
        guard.check(
          request,
          Effect.gen(function* () {
            if (access === "action" && !settings.actions)
              return forbidden("actions are disabled (the inspector's actions option)")
            if (!(yield* authorize(request, access))) return forbidden("not authorized")
            return yield* handle(request)
          }).pipe(Effect.catch(redisFailure))
        )
      ),
    /** A route of a part that may be left out: 404 when it is. */
    section: <A>(
      value: A | undefined,
      name: string,
      handle: (value: A) => Effect.Effect<HttpServerResponse.HttpServerResponse, RedisError>
    ) => (value === undefined ? Effect.succeed(notFound(`${name} are not inspected here`)) : handle(value))
  }
}

/** The route groups' shared parts. */
type Kit = ReturnType<typeof kitOf>

/** The page, its script and its configuration. */
const pageRoutes = (kit: Kit) => {
  const { base, guard, authorize, settings, route } = kit
  const html = page({ base: under(base, "/").replace(/\/$/, ""), config: settings.config })
  // the router ignores a trailing slash: `{path}` and `{path}/` are one route
  const pagePath = under(base, "/").replace(/(.)\/$/, "$1") as `/${string}`
  const pageRoute = HttpRouter.add("GET", pagePath, (request) =>
    guard.check(
      request,
      Effect.gen(function* () {
        if (!(yield* authorize(request, "read"))) return forbidden("not authorized")
        // opened with ?token=: kept in a cookie of the inspector's path, and out of the address bar and history
        const token = searchParam(request, "token")
        if (token !== undefined) {
          return HttpServerResponse.empty({ status: 303, headers: { location: pagePath } }).pipe(
            HttpServerResponse.setCookieUnsafe(tokenCookie, token, {
              httpOnly: true,
              sameSite: "strict",
              path: pagePath
            })
          )
        }
        return HttpServerResponse.text(html, {
          contentType: "text/html; charset=utf-8",
          headers: Requests.pageHeaders
        })
      })
    )
  )
  const scriptRoute = route("GET", "/page.js", "read", () =>
    Effect.succeed(HttpServerResponse.text(pageScript, { contentType: "text/javascript; charset=utf-8" }))
  )

  const configRoute = route("GET", "/api/config", "read", () => Effect.succeed(json(settings.config)))

  return Layer.mergeAll(pageRoute, scriptRoute, configRoute)
}

/** The topics, their dead letters and the dead-letter actions. */
const messagingRoutes = ({ route, section, redis, settings, authorize }: Kit) => {
  const { messaging, scan, maxActionEntries } = settings
  const topicsRoute = route("GET", "/api/topics", "read", (request) =>
    section(messaging, "topics", (prefix) => {
      const params = Requests.pageParams(request, RedisClient.isScanCursor)
      if (Result.isFailure(params)) return Effect.succeed(params.failure)
      return Effect.map(
        listTopics(redis, prefix, { ...scan, limit: params.success.limit }, params.success.cursor),
        json
      )
    })
  )

  const topicRoute = route("GET", "/api/topic", "read", (request) =>
    section(messaging, "topics", (prefix) => {
      const topic = Requests.topicParam(request)
      if (Result.isFailure(topic)) return Effect.succeed(topic.failure)
      return Effect.map(describeTopics(redis, prefix, [topic.success]), ([found]) =>
        found === undefined || (!found.exists && found.deadLetters === 0)
          ? notFound(`no topic ${topic.success}`)
          : json(found)
      )
    })
  )

  const deadLettersRoute = route("GET", "/api/dead-letters", "read", (request) =>
    section(messaging, "topics", (prefix) => {
      const topic = Requests.topicParam(request)
      if (Result.isFailure(topic)) return Effect.succeed(topic.failure)
      const params = Requests.pageParams(request, DeadLetters.isCursor)
      if (Result.isFailure(params)) return Effect.succeed(params.failure)
      return Effect.gen(function* () {
        const listed = yield* DeadLetters.listDeadLetters(
          redis,
          prefix,
          topic.success,
          params.success.cursor,
          params.success.limit
        )
        // what the messages hold is shown only to requests allowed to see data
        if (yield* authorize(request, "data")) return json(listed)
        return json({ ...listed, deadLetters: listed.deadLetters.map(withoutData), dataHidden: true })
      })
    })
  )

  const deadLetterAction = (mode: "replay" | "delete") =>
    route("POST", `/api/dead-letters/${mode}`, "action", (request) =>
      section(messaging, "topics", (prefix) =>
        Effect.gen(function* () {
          const body = yield* Requests.deadLetterAction(request)
          if (Result.isFailure(body)) return body.failure
          const { topic, ids, upTo } = body.success
          const moved = yield* DeadLetters.moveDeadLetters(redis, prefix, topic, { mode, ids, upTo }, maxActionEntries)
          return json({ topic, mode, ...moved })
        })
      )
    )

  return Layer.mergeAll(
    topicsRoute,
    topicRoute,
    deadLettersRoute,
    deadLetterAction("replay"),
    deadLetterAction("delete")
  )
}

/** The resumable runs and their cancellation. */
const runRoutes = ({ route, section, redis, settings }: Kit) => {
  const { resumablePrefix, producerTimeout, scan, cancelOptions } = settings
  const runsRoute = route("GET", "/api/runs", "read", (request) =>
    section(resumablePrefix, "resumable runs", (prefix) => {
      const params = Requests.pageParams(request, RedisClient.isScanCursor)
      if (Result.isFailure(params)) return Effect.succeed(params.failure)
      return Effect.map(
        listRuns(redis, prefix, producerTimeout, { ...scan, limit: params.success.limit }, params.success.cursor),
        json
      )
    })
  )

  const cancelRoute = route("POST", "/api/runs/cancel", "action", (request) =>
    section(cancelOptions, "resumable runs", (cancel) =>
      Effect.gen(function* () {
        const body = yield* Requests.cancelAction(request)
        if (Result.isFailure(body)) return body.failure
        const { stream, runId, reason } = body.success
        const status = yield* cancelRun(cancel, stream, runId, reason)
        return status === "gone"
          ? notFound(`no run ${runId} of stream ${stream} (expired, or never was)`)
          : json({ stream, runId, status })
      })
    )
  )

  return Layer.mergeAll(runsRoute, cancelRoute)
}

/** The sinks, the live-state streams and the subjects. */
const stateRoutes = ({ route, section, redis, settings }: Kit) => {
  const { sinks, adapterPrefix, scan, maxGroups, subjects } = settings
  const sinksRoute = route("GET", "/api/sinks", "read", () =>
    Effect.map(inspectSinks(sinks), (found) => json({ sinks: found }))
  )

  const adapterRoute = route("GET", "/api/adapter", "read", (request) =>
    section(adapterPrefix, "live-state streams", (prefix) => {
      const params = Requests.pageParams(request, RedisClient.isScanCursor)
      if (Result.isFailure(params)) return Effect.succeed(params.failure)
      return Effect.map(
        listAdapterStreams(redis, prefix, { ...scan, limit: params.success.limit }, params.success.cursor, maxGroups),
        json
      )
    })
  )

  const subjectsRoute = route("GET", "/api/subjects", "read", (request) =>
    section(subjects, "subjects", (prefix) => {
      const params = Requests.pageParams(request, RedisClient.isScanCursor)
      if (Result.isFailure(params)) return Effect.succeed(params.failure)
      return Effect.map(countSubjects(redis, prefix, scan, params.success.cursor), (counted) =>
        json({ keyPrefix: prefix, ...counted })
      )
    })
  )

  return Layer.mergeAll(sinksRoute, adapterRoute, subjectsRoute)
}

/** A dead letter without what its message holds: the payload's size stays, its preview, the metadata and the error go. */
const withoutData = (letter: InspectedDeadLetter): InspectedDeadLetter => ({
  ...letter,
  payload: letter.payload === null ? null : { ...letter.payload, preview: "", truncated: letter.payload.bytes > 0 },
  metadata: null,
  error: null
})
