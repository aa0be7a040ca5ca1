/**
 * 2025-era sessions (`initialize`, `Mcp-Session-Id`, GET stream, DELETE): one SDK transport and
 * one downstream `Server` per session, bound to the caller who opened it. A session is only
 * ever served to that caller (same login, plugin, groups and tags); anyone else gets 404, as for
 * an unknown session. Idle sessions
 * (no request and no open stream for `server.sessionIdleTimeout`) are closed. A plain
 * `tools/call` (and what belongs to it: answers, cancellations, resumptions) is served by the
 * gateway itself (`sessionCalls.ts`), lists too (`sessionLists.ts`); the rest by the SDK.
 *
 * In a cluster (`cluster: redis(…)`) any replica serves any request of a session: the session's
 * record (its caller and the client's `initialize`) is in Redis (`cluster/sessionRecords.ts`), and
 * a replica that gets a request for a session it does not hold builds it from the record, by
 * replaying the `initialize` to a new SDK transport and server. Each replica's copy is its own;
 * what must cross replicas does so on the replica bus (`cluster/replicaBus.ts`): a caller's answer
 * to a request one replica's call sent, `notifications/cancelled`, a DELETE, a log level, a
 * subscription (held by the copy holding the session's GET stream, recorded for the next). Request
 * streams (direct calls' and the SDK path's) are kept in the shared event log once their first
 * writes leave before their answer, so `Last-Event-ID` resumes them anywhere; messages outside
 * any request go to the replica recorded as holding the session's GET stream, or are kept in
 * Redis for the next one to open it. A
 * copy left idle is dropped without ending the session: the session ends on DELETE, or when no
 * replica has used it for the idle timeout (its record lapses).
 * @module
 */
import { randomUUID } from "node:crypto"
import type { ServerResponse } from "node:http"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import {
  isInitializeRequest,
  type JSONRPCMessage,
  type LoggingLevel,
  type Server,
  SUPPORTED_PROTOCOL_VERSIONS,
  WebStandardStreamableHTTPServerTransport
} from "@modelcontextprotocol/server"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Deferred from "effect/Deferred"
import * as Fiber from "effect/Fiber"
import * as Predicate from "effect/Predicate"
import * as Runtime from "effect/Runtime"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { UserAuth } from "../../auth/UserAuth.js"
import { Catalog } from "../../catalog/Catalog.js"
import { ReplicaBus } from "../../cluster/replicaBus.js"
import { type LoadedRecord, SessionRecords } from "../../cluster/sessionRecords.js"
import { SessionSlots } from "../../cluster/sessionSlots.js"
import { type RequestId, SharedEventLog } from "../../cluster/sharedEventLog.js"
import { GatewayConfig } from "../../config/GatewayConfig.js"
import type { Identity } from "../../plugin/IdentityPlugin.js"
import { makeDownstreamServer } from "../downstreamServer.js"
import { CallEventStream, messageEvent } from "./callEventStream.js"
import { askedBy, SessionCalls, sessionToolCall } from "./sessionCalls.js"
import { sessionList, invalidParamsEvent, passesPostChecks, resultEvent } from "./sessionLists.js"
import { nodeResponseOf, untilClosed } from "../../http/nodeBridge.js"
import { type BoundedEventStore, boundedEventStore } from "./eventStore.js"
import { type SharedSdkStreamEvents, sharedSdkStreamEvents, transportRequestsOf } from "./sharedSdkStreams.js"
import { jsonRpcError } from "../httpErrors.js"
import { McpRouter } from "../../router/McpRouter.js"
import { isEventStream, onBodyDone } from "../../http/responseBody.js"
import { type CallerView, callerView } from "../../router/views.js"

interface LegacySession {
  readonly id: string
  readonly identity: Identity
  readonly server: Server
  readonly transport: WebStandardStreamableHTTPServerTransport
  readonly events: BoundedEventStore
  /** The `tools/call`s the gateway answers itself (see `sessionCalls.ts`). */
  readonly direct: SessionCalls
  /** Sets the level the session asked for on another replica. */
  readonly setLogLevel: (level: LoggingLevel) => void
  /** In a cluster, the record other replicas build the session from (JSON); kept alive by touches. */
  readonly record: string | undefined
  /** Epoch ms the session was initialized (here: restored copies count from their restore). */
  readonly openedAt: number
  lastSeen: number
  openStreams: number
  /** Of those, the SDK path's GET streams: where messages outside any request go. */
  getStreams: number
  /**
   * In a cluster, the copy holding the session's GET stream holds its resource subscriptions
   * (the session record lists them): taken when its first GET stream opens, given up when the last
   * one ends. Any replica then delivers the updates, and a replica's death loses none.
   */
  readonly holdSubscriptions: (holding: boolean) => void
  /** Subscribes this copy to one more of the session's resources, if it holds them. */
  readonly heardSubscription: (uri: string, yes: boolean) => void
  /** What the caller last saw, to notify `list_changed` only when their visible list changed. */
  seen: CallerView["fingerprints"] | undefined
}

/** What {@link Sessions2025}'s `list` tells of one open session. */
export interface OpenSession {
  readonly idPrefix: string
  readonly login: string
  readonly via: string
  readonly protocolVersion: string | undefined
  readonly client: string | undefined
  readonly openedAt: number
  readonly lastSeen: number
}

/** The SSE `retry` a client should wait before resuming a broken stream. */
export const RETRY_INTERVAL_MS = 1000

/** New sessions beyond this many are refused with 503 until some close: the last resort. */
export const MAX_SESSIONS = 10_000


/**
 * The `Retry-After` (seconds) of that 429: a slot frees only on DELETE or after the idle timeout
 * (default 30 min), so retrying sooner would only poll; a minute still lets a client that closes
 * sessions in the meantime get back in soon.
 */
export const SESSION_CAP_RETRY_AFTER_SECONDS = 60

/**
 * The `Retry-After` (seconds) of the 503 an initialize gets while a cluster's Redis is away: the
 * client reconnects within ~2 s of Redis returning, so a few seconds is enough.
 */
export const SHARED_STATE_RETRY_AFTER_SECONDS = 5

/**
 * What replicas tell each other about the sessions they hold (`cluster/replicaBus.ts`): a caller's
 * answer to a request the receiving replica's call sent (`answer`), or its SDK server sent
 * (`response`), a cancellation of a call running somewhere, a message outside any request for the
 * replica holding the session's GET stream (`heldOutside`; `outside` is the same sent to every
 * replica), a session ended by DELETE, a log level.
 */
const BusMessage = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("answer", "cancel", "response", "outside", "heldOutside"), session: Schema.String, message: Schema.Unknown }),
  Schema.Struct({ kind: Schema.Literal("closed"), session: Schema.String }),
  Schema.Struct({ kind: Schema.Literal("logLevel"), session: Schema.String, level: Schema.String }),
  Schema.Struct({ kind: Schema.Literal("subscribed", "unsubscribed"), session: Schema.String, uri: Schema.String })
)
const decodeBusMessage = Schema.decodeUnknownOption(BusMessage)

/** The URL the replayed `initialize` of a session built from its record is addressed to (never sent anywhere). */
const REPLAY_URL = "http://aperture.invalid/v1/mcp"

const isCancellation = (message: unknown) => Predicate.isRecord(message) && message["method"] === "notifications/cancelled"

/** A client's answer to a request an SDK server sent (numeric ids; direct calls' are `aperture-…` strings). */
const isSdkResponse = (message: unknown) =>
  Predicate.isRecord(message) && !("method" in message) && typeof message["id"] === "number"

/**
 * A message outside any request that the replica holding the session's GET stream must send: a
 * resource update, a log message, a request such as `roots/list`. List changes are not: every
 * replica sees the catalog change and tells its own streams.
 */
const goesToGetStream = (message: JSONRPCMessage) =>
  "method" in message && !message.method.endsWith("/list_changed")

/** The replica a direct call's stream id (`<replica>:<uuid>`) was made on. */
const replicaOfStream = (streamId: string) => streamId.slice(0, Math.max(0, streamId.indexOf(":")))

/** An SSE response's head, as the SDK transport writes it. */
const eventStreamHeaders = (sessionId: string): Record<string, string> => ({
  "content-type": "text/event-stream",
  "cache-control": "no-cache, no-transform",
  connection: "keep-alive",
  "x-accel-buffering": "no",
  "mcp-session-id": sessionId
})

/**
 * Whether `b` is the caller who opened a session as `a`, in everything grants read (login,
 * plugin, groups, tags). The session's handlers, list notifications and upstream attachments act
 * with the opener's identity, also outside any request, so a per-request identity swapped into
 * the session would race between concurrent requests and still leave those on the opener's.
 * Refusing any other identity (404, as for a foreign session) instead keeps every request judged
 * on its own caller's identity: the two are the same. A caller whose groups changed opens anew.
 */
const sameCaller = (a: Identity, b: Identity) =>
  a === b || (a.login === b.login && a.via === b.via && sameMembers(a.groups, b.groups) && sameMembers(a.tags, b.tags))

const sameMembers = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) =>
  a === b || (a.length === b.length && a.every((item) => b.includes(item)) && b.every((item) => a.includes(item)))

/** Counts a GET stream as an open stream until it ends or the client goes away. */
const trackStream = (response: Response, session: LegacySession): Response => {
  if (!isEventStream(response)) return response
  session.openStreams++
  if (session.getStreams++ === 0) session.holdSubscriptions(true)
  return onBodyDone(response, () => {
    session.openStreams--
    if (--session.getStreams === 0) session.holdSubscriptions(false)
  })
}

/** Counts a POST's event stream (a request the SDK answers as SSE) as open until it ends. */
const countWhileOpen = (response: Response, session: LegacySession): Response => {
  if (!isEventStream(response)) return response
  session.openStreams++
  return onBodyDone(response, () => void session.openStreams--)
}

export class Sessions2025 extends Effect.Service<Sessions2025>()("aperture/Sessions2025", {
  scoped: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const router = yield* McpRouter
    const catalog = yield* Catalog
    /** Per login, its sessions open or being opened: in this process, or across the cluster in Redis. */
    const slots = yield* SessionSlots
    /** Session records, shared with other replicas in a cluster (`records.shared`). */
    const records = yield* SessionRecords
    const bus = yield* ReplicaBus
    const eventLog = yield* SharedEventLog
    const userAuth = yield* UserAuth
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const sessions = new Map<string, LegacySession>()
    /** Sessions whose copy is being built from their record here (see {@link restore}). */
    const restoring = new Map<string, Deferred.Deferred<void>>()
    /**
     * Forgets this replica's copy of a session. In one process that is the session: its caller's
     * slot is freed. In a cluster other replicas may go on serving it: it ends on DELETE
     * ({@link ended}) or lapses when none uses it.
     */
    const forget = (session: LegacySession) => {
      if (sessions.get(session.id) !== session) return
      sessions.delete(session.id)
      if (!records.shared) slots.release(session.identity.login, session.id)
    }
    /** The session ended (DELETE): everywhere. */
    const ended = (session: LegacySession) => {
      forget(session)
      if (!records.shared) return
      slots.release(session.identity.login, session.id)
      records.remove(session.id)
      bus.toOthers({ kind: "closed", session: session.id })
    }
    const idleMillis = Duration.toMillis(config.server.sessionIdleTimeout)

    const closeSession = (session: LegacySession) =>
      Effect.promise(async () => {
        forget(session)
        session.direct.close()
        await session.transport.close().catch(() => {})
        await session.server.close().catch(() => {})
      })

    const open = (request: Request, parsedBody: unknown, identity: Identity) =>
      Effect.gen(function*() {
        // The id is chosen here so the slot is taken under it before the handshake: concurrent
        // initializes (on any replica) cannot overshoot the cap.
        const sessionId = randomUUID()
        const slot = yield* Effect.either(slots.take(identity.login, sessionId))
        if (slot._tag === "Left") {
          yield* Effect.logDebug(`initialize refused: ${slot.left.message}`)
          return jsonRpcError(
            503,
            -32000,
            `Cannot open a session now: ${slot.left.message}; try again later`,
            { "retry-after": String(SHARED_STATE_RETRY_AFTER_SECONDS) }
          )
        }
        if (slot.right !== "taken") {
          return jsonRpcError(
            429,
            -32000,
            `caller ${identity.login} has ${slot.right.full} open sessions, the most one caller may hold; close some (DELETE) or wait`,
            { "retry-after": String(SESSION_CAP_RETRY_AFTER_SECONDS) }
          )
        }
        let session: LegacySession | undefined
        // The global cap is the last resort, for many callers together.
        if (sessions.size >= MAX_SESSIONS) {
          slots.release(identity.login, sessionId)
          return jsonRpcError(503, -32000, "Too many sessions; try again later")
        }
        const record = records.shared ? recordOf(identity, parsedBody) : undefined
        const response = yield* handshake(request, parsedBody, identity, sessionId, record, (created) => (session = created)).pipe(
          // The session owns the slot once created; a handshake that made none gives it back.
          Effect.onExit(() => Effect.sync(() => session === undefined && slots.release(identity.login, sessionId)))
        )
        if (session === undefined || record === undefined) return response
        // Other replicas serve the session once its record is stored: before the client hears its id.
        const saved = yield* Effect.either(records.save(sessionId, record))
        if (saved._tag === "Right") return response
        yield* closeSession(session)
        slots.release(identity.login, sessionId)
        yield* Effect.promise(() => response.body?.cancel() ?? Promise.resolve())
        return jsonRpcError(
          503,
          -32000,
          `Cannot open a session now: ${saved.left.message}; try again later`,
          { "retry-after": String(SHARED_STATE_RETRY_AFTER_SECONDS) }
        )
      })

    /** A new session's record: its caller, in everything grants read, and the client's `initialize`. */
    const recordOf = (identity: Identity, parsedBody: unknown): string => {
      const initialize = (Array.isArray(parsedBody) ? parsedBody.find(isInitializeRequest) : parsedBody) as { params?: unknown }
      return JSON.stringify({
        caller: { login: identity.login, via: identity.via, groups: identity.groups, tags: identity.tags },
        initialize: initialize.params ?? {}
      })
    }

    /**
     * A session's SDK transport and server, its event store and direct calls; registered once the
     * transport says it is initialized (by the client's `initialize`, or a replayed one).
     */
    const makeSession = (
      identity: Identity,
      sessionId: string,
      record: string | undefined,
      created: (session: LegacySession) => void
    ) => {
      let session: LegacySession | undefined
      const downstream = makeDownstreamServer(router, identity, "legacy", records.shared ? {
        onLogLevel: (level) => {
          records.setLogLevel(sessionId, level)
          bus.toOthers({ kind: "logLevel", session: sessionId, level })
        },
        // The GET stream's holder subscribes (see LegacySession.holdSubscriptions): a copy without
        // one gives its subscription up once it is recorded for the holder.
        onSubscribed: (uri) => {
          records.subscribed(sessionId, uri, true)
          bus.toOthers({ kind: "subscribed", session: sessionId, uri })
          if (session !== undefined && session.getStreams === 0) downstream.unsubscribe(uri).catch(() => {})
          else held.add(uri)
        },
        onUnsubscribed: (uri) => {
          records.subscribed(sessionId, uri, false)
          bus.toOthers({ kind: "unsubscribed", session: sessionId, uri })
          held.delete(uri)
        }
      } : undefined)
      const { logLevel, server, setLogLevel } = downstream
      /** The session's subscriptions this copy holds upstream (a cluster). */
      const held = new Set<string>()
      const heardSubscription = (uri: string, yes: boolean) => {
        if (yes && session !== undefined && session.getStreams > 0 && !held.has(uri)) {
          held.add(uri)
          downstream.subscribe(uri).catch(() => held.delete(uri))
        } else if (!yes && held.delete(uri)) {
          downstream.unsubscribe(uri).catch(() => {})
        }
      }
      const holdSubscriptions = (holding: boolean) => {
        if (!records.shared) return
        if (!holding) {
          for (const uri of held) downstream.unsubscribe(uri).catch(() => {})
          held.clear()
          eventLog.releaseGetStream(sessionId)
          return
        }
        runFork(holdGetStream(sessionId, transport))
        runFork(Effect.flatMap(Effect.orElseSucceed(records.subscriptions(sessionId), () => []), (uris) =>
          Effect.sync(() => {
            for (const uri of uris) heardSubscription(uri, true)
          })))
      }
      const events = boundedEventStore()
      // In a cluster the SDK path's request streams are kept for other replicas too (see sharedSdkStreams.ts).
      const sdkEvents: SharedSdkStreamEvents | undefined = eventLog.shared
        ? sharedSdkStreamEvents(events, eventLog, bus.replica, sessionId, (stream): ReadonlyArray<RequestId> => transportRequestsOf(transport, stream))
        : undefined
      const direct = new SessionCalls({
        capabilities: () => server.getClientCapabilities(),
        logLevel,
        callTool: (params, context) => router.callTool(identity, params, context),
        verifyRoundState: (state) => router.verifyRoundState(state, undefined as never),
        replica: bus.replica
      })
      const transport: WebStandardStreamableHTTPServerTransport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => sessionId,
        // Streams resume with Last-Event-ID; clients reconnect after this many ms.
        eventStore: sdkEvents ?? events,
        retryInterval: RETRY_INTERVAL_MS,
        onsessioninitialized: (id) => {
          session = {
            id,
            identity,
            server,
            transport,
            events,
            direct,
            setLogLevel,
            record,
            openedAt: Date.now(),
            lastSeen: Date.now(),
            openStreams: 0,
            getStreams: 0,
            holdSubscriptions,
            heardSubscription,
            seen: undefined
          }
          sessions.set(id, session)
          created(session)
        },
        onsessionclosed: (id) => {
          const closed = sessions.get(id)
          if (closed !== undefined) ended(closed)
        }
      })
      transport.onclose = () => {
        sdkEvents?.close()
        if (session === undefined) return
        forget(session)
        session.direct.close()
      }
      if (records.shared) {
        // Outside any request, a message goes to the session's GET stream: on whichever replica
        // holds it, or kept for the next one to open it. This copy's SDK server asks (roots) and
        // notifies (resource updates) here.
        const send = transport.send.bind(transport)
        transport.send = (message, options) => {
          if (options?.relatedRequestId !== undefined || session === undefined || session.getStreams > 0 || !goesToGetStream(message)) {
            return send(message, options)
          }
          runFork(eventLog.routeOutside(sessionId, JSON.stringify(message)).pipe(
            Effect.match({
              onSuccess: (holder) => holder !== undefined && bus.toReplica(holder, { kind: "heldOutside", session: sessionId, message }),
              // Redis away: whoever holds it now, if any.
              onFailure: () => bus.toOthers({ kind: "outside", session: sessionId, message })
            })
          ))
          return Promise.resolve()
        }
      }
      return { server, transport }
    }

    /**
     * Claims session `id`'s GET stream for this replica (messages outside any request come here
     * from now on), and sends it what was kept while no replica held one.
     */
    const holdGetStream = (id: string, transport: WebStandardStreamableHTTPServerTransport) =>
      eventLog.holdGetStream(id, idleMillis).pipe(
        Effect.flatMap((kept) =>
          Effect.promise(async () => {
            for (const data of kept) await transport.send(JSON.parse(data) as JSONRPCMessage).catch(() => {})
          })
        ),
        Effect.catchAll((error) => Effect.logDebug(`session ${id}: cannot claim its GET stream: ${error.message}`))
      )

    /** What the caller sees now, to tell it later when that changes. */
    const remember = (session: LegacySession) =>
      Effect.map(catalog.get, (snapshot) => {
        session.seen = callerView(snapshot, router.policyOf(session.identity)).fingerprints
      })

    const handshake = (
      request: Request,
      parsedBody: unknown,
      identity: Identity,
      sessionId: string,
      record: string | undefined,
      created: (session: LegacySession) => void
    ) =>
      Effect.gen(function*() {
        let session: LegacySession | undefined
        const { server, transport } = makeSession(identity, sessionId, record, (made) => {
          session = made
          created(made)
        })
        yield* Effect.promise(() => server.connect(transport))
        const response = yield* Effect.promise(() => transport.handleRequest(request, { parsedBody }))
        if (session === undefined) {
          // The handshake failed (e.g. an unsupported protocol version): nothing to keep.
          yield* Effect.promise(() => server.close().catch(() => {}))
        } else {
          yield* remember(session)
        }
        return response
      })

    /**
     * This replica's copy of a session another one opened, built from its record: the client's
     * `initialize` and `notifications/initialized` are replayed to a new transport and server, so
     * they hold what the handshake negotiated (version, client capabilities) as on the first one.
     */
    const buildFromRecord = (id: string, identity: Identity, { logLevel, record }: LoadedRecord, recordJson: string) =>
      Effect.gen(function*() {
        let session: LegacySession | undefined
        const { server, transport } = makeSession(identity, id, recordJson, (made) => (session = made))
        yield* Effect.promise(async () => {
          await server.connect(transport)
          const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" }
          const initialize = await transport.handleRequest(new Request(REPLAY_URL, { method: "POST", headers }), {
            parsedBody: { jsonrpc: "2.0", id: 0, method: "initialize", params: record.initialize }
          })
          await initialize.text().catch(() => "")
          if (session === undefined) return
          const initialized = await transport.handleRequest(
            new Request(REPLAY_URL, { method: "POST", headers: { ...headers, "mcp-session-id": id } }),
            { parsedBody: { jsonrpc: "2.0", method: "notifications/initialized" } }
          )
          await initialized.text().catch(() => "")
        })
        if (session === undefined) {
          yield* Effect.promise(() => server.close().catch(() => {}))
          return
        }
        if (logLevel !== undefined) session.setLogLevel(logLevel as LoggingLevel)
        yield* remember(session)
      })

    /**
     * Makes sure this replica holds session `id` when another one opened it (a cluster only):
     * `undefined` to go on (held, or unknown: the request then gets the usual 404), else the
     * answer: 404 for someone else's session, 503 while the records cannot be read.
     */
    const restore = (id: string, identity: Identity): Effect.Effect<Response | undefined> =>
      Effect.gen(function*() {
        // Each turn either finds the copy, waits for one being built, or builds it.
        for (let turn = 0; turn < 3; turn++) {
          if (sessions.has(id)) return undefined
          const building = restoring.get(id)
          if (building !== undefined) {
            yield* Deferred.await(building)
            continue
          }
          const loaded = yield* Effect.either(records.load(id))
          if (loaded._tag === "Left") {
            return jsonRpcError(503, -32000, `Cannot serve this session now: ${loaded.left.message}; try again later`, {
              "retry-after": String(SHARED_STATE_RETRY_AFTER_SECONDS)
            })
          }
          if (loaded.right === undefined) return undefined
          // Built by another request meanwhile?
          if (sessions.has(id) || restoring.has(id)) continue
          const { caller } = loaded.right.record
          if (!sameCaller(caller as Identity, identity)) return jsonRpcError(404, -32001, "Session not found")
          const built = yield* Deferred.make<void>()
          restoring.set(id, built)
          yield* buildFromRecord(id, identity, loaded.right, JSON.stringify(loaded.right.record)).pipe(
            Effect.ensuring(Effect.zipRight(Effect.sync(() => restoring.delete(id)), Deferred.succeed(built, undefined)))
          )
        }
        return undefined
      })

    /** Whether a request names a session this replica must first build from its record (a cluster only). */
    const needsRestore = (headers: Readonly<Record<string, string | undefined>>): string | undefined => {
      if (!records.shared) return undefined
      const id = headers["mcp-session-id"]
      return id !== undefined && !sessions.has(id) ? id : undefined
    }

    /** The open session `id`, if it is this caller's: anyone else is told it does not exist. */
    const callersSession = (id: string | undefined, identity: Identity): LegacySession | undefined => {
      const session = id === undefined ? undefined : sessions.get(id)
      return session !== undefined && sameCaller(session.identity, identity) ? session : undefined
    }

    /** Serves one 2025-era HTTP request (untraced: `McpEndpoint.handle`'s span covers it; a span costs ~16 µs). */
    const handle = Effect.fnUntraced(function*(request: Request, parsedBody: unknown, identity: Identity) {
      const id = request.headers.get("mcp-session-id")
      if (id === null) {
        const opens = Array.isArray(parsedBody) ? parsedBody.some(isInitializeRequest) : isInitializeRequest(parsedBody)
        if (request.method === "POST" && opens) return yield* open(request, parsedBody, identity)
        return jsonRpcError(400, -32000, "Bad Request: Mcp-Session-Id header is required")
      }
      const session = callersSession(id, identity)
      if (session === undefined) return jsonRpcError(404, -32001, "Session not found")
      session.lastSeen = yield* Clock.currentTimeMillis
      const response = yield* Effect.promise(() => session.transport.handleRequest(request, { parsedBody }))
      // The standalone GET stream keeps a session alive while idle, and so does a POST's event
      // stream while its request runs: a `prompts/get` longer than the idle timeout must not
      // lose its session mid-request (the direct path counts its calls the same way).
      return request.method === "GET" ? trackStream(response, session) : countWhileOpen(response, session)
    })

    /**
     * The answer to a list request on one of this caller's sessions, as one SSE event, when the
     * gateway can give it without the SDK (see {@link sessionList}); `undefined` sends the request
     * down the SDK path.
     */
    const answerDirectly = (headers: Readonly<Record<string, string | undefined>>, parsedBody: unknown, identity: Identity) =>
      Effect.suspend(() => {
        const list = sessionList(headers, parsedBody)
        const session = list === undefined ? undefined : callersSession(headers["mcp-session-id"], identity)
        if (list === undefined || session === undefined) return Effect.succeed(undefined)
        const { cursor, id: requestId } = list
        let chunks: ReadonlyArray<Uint8Array>
        if (cursor === undefined || typeof cursor === "string") {
          const result = router.listJson[list.method](identity, cursor, headers["traceparent"])
          if (result === undefined) return Effect.succeed(undefined)
          chunks = resultEvent(requestId, result)
        } else {
          chunks = invalidParamsEvent(requestId, "Invalid params: cursor must be a string")
        }
        return Effect.map(Clock.currentTimeMillis, (now) => {
          session.lastSeen = now
          return { sessionId: session.id, chunks }
        })
      })

    /**
     * What the gateway serves on one of this caller's sessions without the SDK (see
     * `sessionCalls.ts`): a plain `tools/call`, the caller's answer to a request of a direct call,
     * `notifications/cancelled` for one, and a resumption (`Last-Event-ID`) of a direct call's
     * stream while it runs. `undefined`: the SDK path serves it.
     */
    const serveDirectly = (
      request: HttpServerRequest.HttpServerRequest,
      headers: Readonly<Record<string, string | undefined>>,
      parsedBody: unknown,
      identity: Identity,
      /** Counts a call in flight; the function it returns ends the count. */
      countCall: () => () => void
    ): Effect.Effect<HttpServerResponse.HttpServerResponse | undefined> =>
      Effect.suspend(() => {
        const out = nodeResponseOf(request)
        if (out === undefined) return Effect.succeed(undefined)
        if (request.method === "GET") return resumeDirectly(out, headers, identity)
        if (!Predicate.isRecord(parsedBody)) return Effect.succeed(undefined)
        const session = callersSession(headers["mcp-session-id"], identity)
        if (session === undefined) return Effect.succeed(undefined)
        const call = sessionToolCall(headers, parsedBody)
        if (call === undefined) {
          // A message for a direct call (an answer, a cancellation); any other is the SDK's.
          if (!passesPostChecks(headers) || !takeDirectMessage(session, parsedBody)) return Effect.succeed(undefined)
          return Effect.map(Clock.currentTimeMillis, (now) => {
            session.lastSeen = now
            return HttpServerResponse.empty({ status: 202 })
          })
        }
        return Effect.flatMap(Clock.currentTimeMillis, (now) => {
          session.lastSeen = now
          // The stream id names this replica: a resumption elsewhere follows it in the shared log.
          const streamId = `${bus.replica}:${randomUUID()}`
          const stream = new CallEventStream(
            streamId,
            session.events,
            () => session.direct.ended(stream),
            eventLog.shared ? { log: eventLog, owner: { callId: call.id, replica: bus.replica, session: session.id } } : undefined
          )
          stream.open(out, eventStreamHeaders(session.id), call.priming ? { retryMs: RETRY_INTERVAL_MS } : undefined)
          // A call in flight keeps its session from idling out under it, as an open stream does.
          const uncount = countCall()
          session.openStreams++
          session.direct.run(call, stream, () => {
            session.openStreams--
            uncount()
          })
          return untilClosed(out)
        })
      })

    const resumeDirectly = (out: ServerResponse, headers: Readonly<Record<string, string | undefined>>, identity: Identity) =>
      Effect.suspend(() => {
        const lastEventId = headers["last-event-id"]
        const session = callersSession(headers["mcp-session-id"], identity)
        const version = headers["mcp-protocol-version"]
        if (
          lastEventId === undefined || session === undefined || !headers["accept"]?.includes("text/event-stream") ||
          (version !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(version))
        ) return Effect.succeed(undefined)
        const stream = session.direct.streamOf(lastEventId)
        if (stream === undefined) {
          const dot = lastEventId.lastIndexOf(".")
          const streamId = dot > 0 ? lastEventId.slice(0, dot) : ""
          const owner = replicaOfStream(streamId)
          return eventLog.shared && owner !== "" && owner !== bus.replica
            ? followElsewhere(out, session, streamId, lastEventId)
            : Effect.succeed(undefined)
        }
        if (stream.connected) {
          return Effect.succeed(HttpServerResponse.fromWeb(jsonRpcError(409, -32000, "Conflict: Stream already has an active connection")))
        }
        return Effect.flatMap(Clock.currentTimeMillis, (now) => {
          session.lastSeen = now
          // An open resumed stream keeps the session alive, as the SDK path's GET streams do.
          session.openStreams++
          out.once("close", () => session.openStreams--)
          stream.attach(out, eventStreamHeaders(session.id), lastEventId!)
          return untilClosed(out)
        })
      })

    /**
     * A resumption of a direct call's stream that another replica answers: replays what the
     * shared log holds after `lastEventId` and follows the rest until the call's answer. If that
     * replica is gone, the call's outcome is unknown: the caller gets an error for it, never a hang.
     */
    const followElsewhere = (out: ServerResponse, session: LegacySession, streamId: string, lastEventId: string) =>
      Effect.gen(function*() {
        session.lastSeen = yield* Clock.currentTimeMillis
        session.openStreams++
        out.once("close", () => session.openStreams--)
        out.writeHead(200, eventStreamHeaders(session.id))
        const write = (eventId: string, data: string) => {
          if (!out.destroyed) out.write(messageEvent(eventId, data))
        }
        const follow = eventLog.follow(streamId, session.id, lastEventId, write).pipe(
          Effect.tap((end) => {
            if (end._tag !== "OwnerGone") return Effect.void
            // One error per request still unanswered (several for a batch).
            end.unanswered.forEach((id, i) =>
              write(i === 0 ? `${streamId}.gone` : `${streamId}.gone${i}`, JSON.stringify({
                jsonrpc: "2.0",
                id,
                error: { code: -32603, message: "The gateway replica running this call stopped; its outcome is unknown" }
              }))
            )
            return Effect.logInfo(`session ${session.id}: request ${end.unanswered.map(String).join(", ")} was running on replica ${end.owner.replica}, which is gone`)
          }),
          // Redis away: the stream ends, and the client resumes again.
          Effect.catchAll((error) => Effect.logDebug(`resuming ${streamId}: ${error.message}`)),
          Effect.andThen(Effect.sync(() => out.end())),
          Effect.andThen(untilClosed(out))
        )
        // The client leaving ends the follow (and its Redis connection).
        return yield* Effect.raceFirst(follow, untilClosed(out))
      })

    /**
     * Takes a message for a direct call (an answer, a cancellation) on `session`; `false` if it is
     * not one. In a cluster an answer to another replica's request goes to that replica, and a
     * cancellation of no call here goes to all others (and on to this replica's SDK path: `false`).
     */
    const takeDirectMessage = (session: LegacySession, message: unknown): boolean => {
      if (session.direct.answer(message) || session.direct.cancel(message)) return true
      if (!records.shared) return false
      const asker = askedBy(message)
      if (asker !== undefined && asker !== bus.replica) {
        bus.toReplica(asker, { kind: "answer", session: session.id, message })
        return true
      }
      // Cancellations and answers to SDK-numbered requests go to this replica's SDK path and to
      // the others: the request may be any copy's (a copy that does not know the id ignores it).
      if (isCancellation(message)) bus.toOthers({ kind: "cancel", session: session.id, message })
      else if (isSdkResponse(message)) bus.toOthers({ kind: "response", session: session.id, message })
      return false
    }

    /**
     * A batch (2025-03-26) without the answers and cancellations meant for direct calls, which are
     * taken here: the SDK would drop them (it knows neither the calls nor the `aperture-<n>` ids).
     */
    const takeDirectMessages = (
      headers: Readonly<Record<string, string | undefined>>,
      batch: ReadonlyArray<unknown>,
      identity: Identity
    ): ReadonlyArray<unknown> => {
      const session = callersSession(headers["mcp-session-id"], identity)
      if (session === undefined || !passesPostChecks(headers)) return batch
      return batch.filter((message) => !takeDirectMessage(session, message))
    }

    /** Tells each session whose visible lists changed (the catalog, or a user connected a per-user connector). */
    const notifyListChanges = catalog.changes.pipe(
      Stream.changesWith((a, b) => a.index === b.index),
      Stream.merge(Stream.map(userAuth.changes, () => catalog.current())),
      Stream.runForEach((snapshot) =>
        Effect.forEach(sessions.values(), (session) =>
          Effect.promise(async () => {
            const now = callerView(snapshot, router.policyOf(session.identity)).fingerprints
            const before = session.seen
            session.seen = now
            if (before === undefined) return
            if (before.tools !== now.tools) await session.server.sendToolListChanged().catch(() => {})
            if (before.prompts !== now.prompts) await session.server.sendPromptListChanged().catch(() => {})
            if (before.resources !== now.resources) await session.server.sendResourceListChanged().catch(() => {})
          }), { discard: true })
      )
    )

    /** Closes idle sessions, and lets the others drop replay events past their age (a quiet session stores nothing new to evict them). */
    const reapIdle = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      for (const session of sessions.values()) session.events.prune()
      // A copy holding the session's subscriptions holds its GET stream too: never idle.
      const idle = [...sessions.values()].filter((s) => s.openStreams === 0 && now - s.lastSeen > idleMillis)
      yield* Effect.forEach(idle, closeSession, { discard: true })
      if (idle.length > 0) yield* Effect.logDebug(`closed ${idle.length} idle sessions`)
    }).pipe(Effect.repeat(Schedule.spaced(Duration.min(Duration.minutes(1), Duration.millis(Math.max(1000, idleMillis / 2))))))

    /**
     * Keeps the slots of sessions in use from lapsing (in a cluster): a timer touches those used
     * since its last tick or holding a stream, so requests themselves never wait on Redis.
     */
    const touchSlots = (every: Duration.Duration) => {
      let lastTick = 0
      let connection = records.connection()
      return Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        // Redis reconnected (perhaps empty, after a restart): every session held here is put back.
        if (records.connection() !== connection) {
          connection = records.connection()
          lastTick = 0
        }
        for (const session of sessions.values()) {
          if (session.openStreams > 0 || session.lastSeen >= lastTick) {
            slots.touch(session.identity.login, session.id)
            if (session.record !== undefined) records.touch(session.id, session.record)
          }
          // The claim on its GET stream lapses with the idle timeout unless renewed.
          if (session.getStreams > 0 && eventLog.shared) yield* Effect.forkDaemon(holdGetStream(session.id, session.transport))
        }
        lastTick = now
      }).pipe(Effect.repeat(Schedule.spaced(every)))
    }

    /** What other replicas say about the sessions held here. */
    const hear = (raw: unknown) => {
      const message = decodeBusMessage(raw)
      if (message._tag === "None") return
      const heard = message.value
      const session = sessions.get(heard.session)
      if (session === undefined) return
      switch (heard.kind) {
        case "answer":
          session.direct.answer(heard.message)
          return
        case "cancel":
          // A direct call here, else perhaps a request on this copy's SDK path.
          if (!session.direct.cancel(heard.message)) session.transport.onmessage?.(heard.message as JSONRPCMessage)
          return
        case "response":
          session.transport.onmessage?.(heard.message as JSONRPCMessage)
          return
        case "outside":
        case "heldOutside":
          if (session.getStreams > 0) {
            session.transport.send(heard.message as JSONRPCMessage).catch(() => {})
            return
          }
          // No GET stream here (any more): for the replica holding one now, or kept for the next.
          runFork(Effect.ignore(Effect.flatMap(eventLog.keepOutside(session.id, JSON.stringify(heard.message)), (holder) =>
            Effect.sync(() => {
              // A broadcast (`outside`) reached the holder too.
              if (holder !== undefined && heard.kind === "heldOutside") {
                bus.toReplica(holder, { kind: "heldOutside", session: heard.session, message: heard.message })
              }
            }))))
          return
        case "closed":
          runFork(closeSession(session))
          return
        case "subscribed":
        case "unsubscribed":
          session.heardSubscription(heard.uri, heard.kind === "subscribed")
          return
        case "logLevel":
          session.setLogLevel(heard.level as LoggingLevel)
      }
    }
    if (records.shared) yield* bus.listen(hear)

    const fibers = [yield* Effect.forkScoped(notifyListChanges), yield* Effect.forkScoped(reapIdle)]
    if (slots.touchEvery !== undefined) fibers.push(yield* Effect.forkScoped(touchSlots(slots.touchEvery)))
    yield* Effect.addFinalizer(() =>
      Effect.zipRight(
        Fiber.interruptAll(fibers),
        Effect.forEach([...sessions.values()], closeSession, { discard: true, concurrency: "unbounded" })
      )
    )

    return {
      needsRestore,
      restore,
      handle,
      answerDirectly,
      serveDirectly,
      takeDirectMessages,
      /** Number of open sessions. */
      size: () => sessions.size,
      /**
       * The sessions open here, for the admins' status page: an id prefix (never the whole id,
       * which is the session's only credential besides the caller's), caller, protocol version, times.
       */
      list: (): ReadonlyArray<OpenSession> =>
        Array.from(sessions.values(), (s) => ({
          idPrefix: s.id.slice(0, 8),
          login: s.identity.login,
          via: s.identity.via,
          protocolVersion: s.server.getNegotiatedProtocolVersion(),
          client: s.server.getClientVersion()?.name,
          openedAt: s.openedAt,
          lastSeen: s.lastSeen
        })),
      closeAll: Effect.suspend(() => Effect.forEach([...sessions.values()], closeSession, { discard: true, concurrency: "unbounded" }))
    } as const
  })
}) {}
