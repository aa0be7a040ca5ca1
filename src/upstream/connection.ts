/**
 * One connection to one MCP upstream: open the connector's transport (from `transports/registry.ts`,
 * trying its fallback once when the first refuses), connect an SDK `Client` negotiating the
 * protocol era, and read its lists (every page). Scoped: closing the scope closes the client
 * and, for stdio, ends the child process.
 * @module
 */
import {
  Client,
  type ClientCapabilities,
  type JSONRPCMessage,
  type PriorDiscovery,
  SdkHttpError,
  type StreamableHTTPClientTransport,
  type Transport,
  UnauthorizedError
} from "@modelcontextprotocol/client"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import type { Credential } from "../plugin/AuthPlugin.js"
import type { McpSpeakingConnector } from "../config/model.js"
import type { UpstreamInfo, UpstreamItem, UpstreamLists } from "../catalog/index.js"
import { version } from "../version.js"
import type { SentCredentials } from "../auth/scrubSecrets.js"
import { CredentialUnavailable } from "./authorizedFetch.js"
import type { CallRegistry } from "./callChannel.js"
import { RELAYED_METHODS, type UpstreamRoute } from "./upstreamRoute.js"
import { handleInOrder } from "./inOrderDelivery.js"
import { followListChanges, type ListKind } from "./listChanges.js"
import { passthrough } from "./passthrough.js"
import { describeError, isCredentialProblem, UpstreamError } from "../catalog/UpstreamError.js"
import { fallbackFor, type TransportChoice, transportFor, type TransportName } from "./transports/registry.js"
import type { AttemptError } from "./transports/transport.js"
import { thisReplica, type UpstreamSessionRecord } from "../cluster/sharedUpstreamSessions.js"

export type TransportKind = TransportName

/** What a connector learned on earlier connections, so a reconnect skips probes. */
export interface ConnectionMemory {
  transport: TransportKind | undefined
  prior: PriorDiscovery | undefined
}

export interface Connection {
  readonly client: Client
  readonly info: UpstreamInfo
  /** Fails when the connection ends (process exit, socket close). */
  readonly closed: Effect.Effect<never, UpstreamError>
  /** `list_changed` notifications from the upstream, by list. */
  readonly changes: Queue.Dequeue<ListKind>
  /** Signals that the connection may be broken (a transport error, a failed call): check it now. */
  readonly suspicion: Queue.Queue<void>
  /** Streamable HTTP: what sending a call without the SDK client needs (see `upstreamCall.ts`). */
  readonly direct: UpstreamRoute | undefined
  /** The credential's recent values, to scrub from the upstream's JSON-RPC errors; none without a credential. */
  readonly sentCredentials: SentCredentials | undefined
  /** Called once the connector is ready: stops recording requests for {@link Readiness}. */
  readonly ready: () => void
  /** Closing will not end the upstream session (no DELETE): another replica still uses it. */
  readonly leaveSessionOpen: () => void
  /**
   * Opens the session's GET stream (streamable HTTP), for what the upstream sends outside any
   * request: a replica taking over a shared session's stream from one gone (see {@link openGetStream}).
   */
  readonly openGetStream: () => Promise<void>
}

/** How the gateway introduces itself to upstreams. */
const CLIENT_INFO = { name: "aperture", version }

/** The credential failure behind an error, however the SDK wrapped it. */
const credentialCause = (error: unknown): CredentialUnavailable | undefined => {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof CredentialUnavailable) return e
  }
  return undefined
}

/** Why a request to an upstream failed: a credential problem (`auth`, `unauthorized`) or another. */
export const classify = (connectorId: string, error: unknown, stderrTail: () => string = () => ""): UpstreamError => {
  if (error instanceof UpstreamError) return error
  const credential = credentialCause(error)
  if (credential !== undefined) return new UpstreamError({ connectorId, kind: "auth", message: credential.message })
  if (error instanceof UnauthorizedError || error instanceof SdkHttpError && error.status === 401) {
    return new UpstreamError({
      connectorId,
      kind: "unauthorized",
      message: "upstream refused the credential (HTTP 401), also after a refresh; check the connector's auth"
    })
  }
  if (error instanceof SdkHttpError && error.status === 403) {
    return new UpstreamError({ connectorId, kind: "auth", message: "upstream refused access (HTTP 403)" })
  }
  const tail = stderrTail()
  return new UpstreamError({
    connectorId,
    kind: "unreachable",
    message: describeError(error) + (tail ? ` (stderr: ${tail})` : "")
  })
}

/** What the gateway forwards to callers: routed by the connector's {@link CallRegistry}. */
export const CLIENT_CAPABILITIES: ClientCapabilities = {
  sampling: {},
  // Omitted form fields are filled with the schema's defaults before the answer goes back (SEP-1034).
  elicitation: { form: { applyDefaults: true }, url: {} },
  roots: { listChanged: true }
}

/**
 * What a shared connection (`isolation: "shared"`) declares: no roots. An upstream keeps the roots
 * it is given per session (server-everything does; a filesystem server may take them as the
 * directories it serves), and on a shared session those would be one caller's roots for everyone.
 */
const SHARED_CLIENT_CAPABILITIES: ClientCapabilities = {
  sampling: CLIENT_CAPABILITIES.sampling!,
  elicitation: CLIENT_CAPABILITIES.elicitation!
}

/** How long closing waits for an upstream to acknowledge the end of its session (DELETE). */
const SESSION_END_WAIT_MS = 2000

const capabilitiesOf = (connector: McpSpeakingConnector): ClientCapabilities =>
  connector.isolation === "shared" ? SHARED_CLIENT_CAPABILITIES : CLIENT_CAPABILITIES

/** Upstream notifications that concern every caller, not one call. */
export interface UpstreamEvents {
  readonly resourceUpdated: (connectorId: string, uri: string) => void
}

/**
 * A connection being opened against the connector's timeout: what it waits for (the last request
 * sent, whose answer is missing) and the deadline, for an error that says why it is not ready.
 */
export interface Readiness {
  waitingFor: string
  readonly deadline: AbortSignal
  readonly timeout: Duration.Duration
}

export const readinessWithin = (timeout: Duration.Duration): Readiness => ({
  waitingFor: "",
  // Not an Effect timeout around connect: the deadline fails the request in flight, so the
  // attempt fails at once as any failed request does (closing a stdio process takes seconds,
  // which an interrupted connect would wait for before the connector could say it is down).
  deadline: AbortSignal.timeout(Duration.toMillis(timeout)),
  timeout
})

const notReady = (connectorId: string, readiness: Readiness) =>
  new UpstreamError({
    connectorId,
    kind: "unreachable",
    message: `not ready within ${Duration.toMillis(readiness.timeout) / 1000}s: ${readiness.waitingFor}`
  })

/** Records in `readiness` each request sent through `transport`, until the returned function is called. */
const trackRequests = (transport: Transport, readiness: Readiness): () => void => {
  const send = transport.send
  transport.send = function(this: Transport, message, options) {
    if ("method" in message && "id" in message) readiness.waitingFor = `no answer to ${message.method}`
    return send.call(this, message, options)
  }
  return () => {
    transport.send = send
  }
}

const noStderr = () => ""

/** Connects over the connector's transport, falling back once (streamable HTTP ⇄ legacy SSE) as the upstream requires. */
export const connect = (
  connector: McpSpeakingConnector,
  credential: Credential | undefined,
  memory: ConnectionMemory,
  calls: CallRegistry,
  events: UpstreamEvents,
  /** The connector's own connection: fails when not ready within its timeout, saying why. */
  readiness?: Readiness,
  /** A streamable-HTTP session another replica opened (`cluster/sharedUpstreamSessions.ts`): joined, not initialized again. */
  join?: UpstreamSessionRecord
): Effect.Effect<Connection, UpstreamError, Scope.Scope> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const logStderr = (line: string) =>
      Runtime.runFork(runtime)(Effect.logDebug(line).pipe(Effect.annotateLogs({ connector: connector.id, stream: "stderr" })))
    const changes = yield* Queue.sliding<ListKind>(16)
    const suspicion = yield* Queue.dropping<void>(1)
    const timeoutMs = Duration.toMillis(connector.timeout)
    const changed = (list: ListKind) => () => void Queue.unsafeOffer(changes, list)
    const capabilities = capabilitiesOf(connector)
    let endsSession = true

    /** One try at one transport: the client and transport are closed with the scope, or at once when the try fails. */
    const attempt = (choice: TransportChoice) =>
      Effect.gen(function*() {
        const handle = choice.open({ credential, runtime, onStderr: logStderr })
        const stderrTail = handle.stderrTail ?? noStderr
        const probeTimeoutMs = choice.definition.probeTimeoutMs
        // This attempt's own: a failed attempt's close (streamable HTTP before the SSE fallback)
        // must not end the connection that succeeds after it.
        const closed = yield* Deferred.make<never, UpstreamError>()
        const client = new Client(CLIENT_INFO, {
          // The union of what callers may support; each request is checked against its own caller.
          capabilities,
          versionNegotiation: {
            mode: "auto",
            ...(probeTimeoutMs !== undefined && { probe: { timeoutMs: probeTimeoutMs(timeoutMs) } })
          }
          // No `listChanged` option: with it the SDK opens the 2026 listen stream inside
          // connect() and connect waits for its acknowledgement (for ever, in effect, when the
          // stream's framing is one it cannot read). See `listChanges.ts`.
        })
        let closing: Promise<void> | undefined
        const close = () =>
          closing ??= (async () => {
            // A session the gateway no longer needs is ended (the spec's DELETE), so a sessionful
            // upstream frees it now rather than at its own idle timeout; a silent one is not awaited.
            const session = handle.route?.transport
            if (session?.sessionId !== undefined && endsSession) {
              await Promise.race([
                session.terminateSession().catch(() => {}),
                new Promise((resolve) => setTimeout(resolve, SESSION_END_WAIT_MS).unref())
              ])
            }
            await client.close().catch(() => {})
            // Before the handshake the client holds no transport yet (a probe in progress).
            await handle.transport.close().catch(() => {})
          })()
        // Scope.addFinalizer, not Effect.addFinalizer: when its finalizer ends, the latter (effect
        // 3.22.4) can put back the fiber's interrupted-cause FiberRef as it was before, so a
        // connector interrupted while this waits for its process to exit forgot it, reconnected,
        // and the gateway's close hung.
        yield* Scope.addFinalizer(yield* Effect.scope, Effect.promise(close))
        client.onclose = () =>
          Deferred.unsafeDone(
            closed,
            Exit.fail(
              new UpstreamError({
                connectorId: connector.id,
                kind: "closed",
                message: handle.closedMessage?.() ?? "connection closed"
              })
            )
          )
        client.onerror = () => Queue.unsafeOffer(suspicion, undefined)
        // The SDK refuses a handler for a capability not declared (roots, on a shared connection).
        const relayed = RELAYED_METHODS.filter((method) => method !== "roots/list" || capabilities.roots !== undefined)
        for (const method of relayed) {
          client.setRequestHandler(method, ((request: { params?: Record<string, unknown> }, ctx: { mcpReq: { signal: AbortSignal } }) =>
            calls.forwardRequest(connector.id, method, request.params, ctx.mcpReq.signal)) as never)
        }
        client.setNotificationHandler("notifications/message", (notification) => {
          calls.forwardLog(connector.id, notification.params as Record<string, unknown>)
        })
        client.setNotificationHandler("notifications/resources/updated", (notification) => {
          events.resourceUpdated(connector.id, notification.params.uri)
        })
        // Unsolicited on the 2025 era; delivered on the listen stream on the 2026 era.
        client.setNotificationHandler("notifications/tools/list_changed", changed("tools"))
        client.setNotificationHandler("notifications/prompts/list_changed", changed("prompts"))
        client.setNotificationHandler("notifications/resources/list_changed", changed("resources"))
        if (join !== undefined) {
          if (handle.route === undefined) {
            return yield* Effect.fail<AttemptError>(
              new UpstreamError({ connectorId: connector.id, kind: "protocol", message: `cannot join a shared upstream session over ${choice.name}` })
            )
          }
          answerHandshakeWith(handle.route.transport, join)
        }
        if (readiness !== undefined) {
          const untrack = trackRequests(handle.transport, readiness)
          yield* Effect.addFinalizer(() => Effect.sync(untrack))
          stopTracking.push(untrack)
        }
        yield* Effect.tryPromise({
          try: async (signal) => {
            signal.addEventListener("abort", close, { once: true })
            const deadline = readiness?.deadline
            let onDeadline: (() => void) | undefined
            try {
              const connecting = client.connect(handle.transport, {
                timeout: timeoutMs,
                // A joined session is 2025-era (it has a session id): no probe, and the handshake answered from its record.
                ...(join !== undefined ? { prior: { kind: "legacy" } as const } : memory.prior !== undefined && { prior: memory.prior })
              })
              if (deadline === undefined) await connecting
              else {
                connecting.catch(() => {})
                // A client closed mid-handshake fails its connect only once the transport has
                // closed (a stdio process: seconds later); the deadline fails it now.
                await Promise.race([
                  connecting,
                  new Promise<never>((_, reject) => {
                    onDeadline = () => reject(deadline.reason)
                    if (deadline.aborted) onDeadline()
                    else deadline.addEventListener("abort", onDeadline, { once: true })
                  })
                ])
              }
            } catch (error) {
              if (deadline?.aborted) {
                void close() // awaited by the scope's finalizer
                throw notReady(connector.id, readiness!)
              }
              await close()
              throw Object.assign(classify(connector.id, error, stderrTail), { original: error })
            } finally {
              signal.removeEventListener("abort", close)
              if (onDeadline !== undefined) deadline?.removeEventListener("abort", onDeadline)
            }
          },
          catch: (error) => error as AttemptError
        })
        return { client, handle, closed, name: choice.name }
      })

    const first = transportFor(connector, memory.transport)
    const fallback = fallbackFor(first, connector)
    // Until a request goes out on the transport (a stdio probe runs on a sibling process).
    if (readiness !== undefined) readiness.waitingFor = "no answer to server/discover"
    const stopTracking: Array<() => void> = []
    const { client, closed, handle, name } = yield* attempt(first).pipe(
      Effect.catchIf(
        // Once, and not past the readiness deadline.
        (error) => fallback !== undefined && readiness?.deadline.aborted !== true && first.definition.fallback!.when(error),
        () => attempt(fallback!)
      ),
      Effect.mapError((e) => new UpstreamError({ connectorId: e.connectorId, kind: e.kind, message: e.message }))
    )

    // Every notification before its call's result reaches the caller (see inOrderDelivery.ts).
    handleInOrder(handle.transport)
    memory.transport = name
    const discover = client.getDiscoverResult()
    memory.prior = client.getProtocolEra() === "modern" && discover !== undefined
      ? { kind: "modern", discover }
      : { kind: "legacy" }
    yield* Effect.forkScoped(followListChanges(client, connector.id, connector.timeout, (list) => Queue.unsafeOffer(changes, list)))
    const server = client.getServerVersion()
    return {
      client,
      info: {
        name: server?.name,
        version: server?.version,
        protocolVersion: client.getNegotiatedProtocolVersion(),
        transport: name
      },
      closed: Deferred.await(closed),
      changes,
      suspicion,
      sentCredentials: handle.sentCredentials,
      ready: () => {
        for (const stop of stopTracking) stop()
      },
      leaveSessionOpen: () => {
        endsSession = false
      },
      openGetStream: () =>
        handle.route === undefined ? Promise.reject(new Error(`no GET stream over ${name}`)) : openGetStream(handle.route.transport),
      direct: handle.route === undefined ? undefined : {
        usable: true,
        ...handle.route,
        client,
        clientInfo: CLIENT_INFO,
        clientCapabilities: capabilities as Record<string, unknown>
      }
    }
  })

/**
 * What another replica needs to join this connection's upstream session: its id and the
 * upstream's `initialize` answer. None for a connection without a session id (a stateless
 * upstream, or a transport other than streamable HTTP: a process or socket is this replica's own).
 */
export const sessionRecordOf = (connection: Connection): UpstreamSessionRecord | undefined => {
  const direct = connection.direct
  const sessionId = direct?.transport.sessionId
  const protocolVersion = connection.client.getNegotiatedProtocolVersion()
  const serverInfo = connection.client.getServerVersion()
  if (direct === undefined || sessionId === undefined || protocolVersion === undefined || serverInfo === undefined) return undefined
  const instructions = connection.client.getInstructions()
  return {
    sessionId,
    url: direct.url.href,
    handshake: {
      protocolVersion,
      capabilities: (connection.client.getServerCapabilities() ?? {}) as Record<string, unknown>,
      serverInfo,
      ...(instructions !== undefined && { instructions })
    },
    openedBy: thisReplica
  }
}

/**
 * Makes the SDK client's handshake join `session` instead of opening one: its `initialize` is
 * answered here with what the upstream answered the replica that opened it (so the client knows
 * the version and capabilities as if it had asked), and its `initialized` is not sent (the upstream
 * has had it; sending it would also open a second GET stream, which stays with that replica).
 */
const answerHandshakeWith = (transport: StreamableHTTPClientTransport, session: UpstreamSessionRecord): void => {
  const send = transport.send
  transport.send = function(this: StreamableHTTPClientTransport, message, options) {
    if (!Array.isArray(message) && "method" in message) {
      if (message.method === "initialize" && "id" in message) {
        adoptSessionId(transport, session.sessionId)
        const answer: JSONRPCMessage = { jsonrpc: "2.0", id: message.id, result: { ...session.handshake } }
        queueMicrotask(() => transport.onmessage?.(answer))
        return Promise.resolve()
      }
      if (message.method === "notifications/initialized") {
        transport.send = send
        return Promise.resolve()
      }
    }
    return send.call(this, message, options)
  }
}

/**
 * Opens the GET stream of a session this client joined (its `initialized` was not sent, so the SDK
 * never opened it). A plain `GET` with the session id is how the 2025-06-18 and 2025-11-25
 * transports listen for messages outside a request, at any time; sending `notifications/initialized`
 * again (which makes the SDK open it) would repeat a lifecycle notification the spec sends once,
 * and the v1 TS SDK server runs its `oninitialized` for each. The SDK's public `resumeStream` is
 * that GET: with no event id (the former holder's last one went with it) it sends no
 * `Last-Event-ID`, and reconnects the stream as it does the one it opens itself. The v1 server
 * allows one such stream per session (409 while the former holder's is still open): the caller
 * gives the hold up and tries again later.
 */
const openGetStream = (transport: StreamableHTTPClientTransport): Promise<void> => transport.resumeStream("")

/**
 * The SDK's transport takes a session id only in its constructor (built by the transport
 * registry, which knows nothing of clusters) or from an `initialize` answer over HTTP: the one
 * write to a private field, kept here alone.
 */
const adoptSessionId = (transport: StreamableHTTPClientTransport, sessionId: string): void => {
  ;(transport as unknown as { _sessionId: string | undefined })._sessionId = sessionId
}

const MAX_PAGES = 1000

const LIST_METHODS = {
  tools: { method: "tools/list", key: "tools", id: "name" },
  prompts: { method: "prompts/list", key: "prompts", id: "name" },
  resources: { method: "resources/list", key: "resources", id: "uri" },
  templates: { method: "resources/templates/list", key: "resourceTemplates", id: "uriTemplate" }
} as const

/** Reads one list, following `nextCursor` to the end. Items without their identifying field are skipped. */
const listAll = (connection: Connection, connectorId: string, list: keyof typeof LIST_METHODS, timeout: Duration.Duration, readiness: Readiness | undefined) =>
  Effect.gen(function*() {
    const { id, key, method } = LIST_METHODS[list]
    const items: Array<UpstreamItem> = []
    const seen = new Set<string>()
    let cursor: string | undefined
    for (let page = 0; page < MAX_PAGES; page++) {
      const result = yield* Effect.tryPromise({
        try: (signal) =>
          connection.client.request(
            { method, params: cursor === undefined ? {} : { cursor } },
            passthrough,
            { timeout: Duration.toMillis(timeout), signal: readiness === undefined ? signal : AbortSignal.any([signal, readiness.deadline]) }
          ),
        catch: (error) => {
          if (readiness?.deadline.aborted) return notReady(connectorId, readiness)
          const classified = classify(connectorId, error)
          return isCredentialProblem(classified)
            ? classified
            : new UpstreamError({ connectorId, kind: "protocol", message: `${method} failed: ${describeError(error)}` })
        }
      })
      const pageItems = result[key]
      if (Array.isArray(pageItems)) {
        for (const item of pageItems) {
          if (typeof item === "object" && item !== null && typeof (item as UpstreamItem)[id] === "string") {
            items.push(item as UpstreamItem)
          }
        }
      }
      const next = result["nextCursor"]
      if (typeof next !== "string" || next === "" || seen.has(next)) break
      seen.add(next)
      cursor = next
    }
    return items
  })

/** Reads the lists the upstream advertises (every page). */
export const readLists = (
  connection: Connection,
  connectorId: string,
  timeout: Duration.Duration,
  which: ReadonlyArray<ListKind> = ["tools", "prompts", "resources"],
  previous: UpstreamLists = { tools: [], prompts: [], resources: [], templates: [] },
  /** Reading the lists of a connection not yet ready: fails at its deadline, saying why. */
  readiness?: Readiness
): Effect.Effect<UpstreamLists, UpstreamError> =>
  Effect.gen(function*() {
    const capabilities = connection.client.getServerCapabilities() ?? {}
    const advertised: Record<keyof typeof LIST_METHODS, unknown> = {
      tools: capabilities.tools,
      prompts: capabilities.prompts,
      resources: capabilities.resources,
      templates: capabilities.resources
    }
    const lists: Record<keyof UpstreamLists, ReadonlyArray<UpstreamItem>> = { ...previous }
    const toRead = (Object.keys(LIST_METHODS) as Array<keyof typeof LIST_METHODS>).filter((list) =>
      which.includes(list === "templates" ? "resources" : list)
    )
    for (const list of toRead) if (!advertised[list]) lists[list] = []
    const reading = toRead.filter((list) => advertised[list])
    const read = (list: keyof typeof LIST_METHODS) =>
      Effect.map(listAll(connection, connectorId, list, timeout, readiness), (items) => {
        lists[list] = items
      })
    // Most upstreams advertise one list: it is read in this fiber, not in a fork per list.
    yield* reading.length === 1 ? read(reading[0]!) : Effect.forEach(reading, read, { concurrency: 4, discard: true })
    return lists as UpstreamLists
  })
