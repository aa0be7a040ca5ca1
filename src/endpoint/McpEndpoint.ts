/**
 * `/v1/mcp`: checks `Host`/`Origin` (DNS-rebinding protection), identifies the caller, then
 * routes by protocol era — 2025-era traffic (`initialize`, sessions) to {@link Sessions2025},
 * 2026-07-28 traffic to the SDK's stateless handler — both backed by the same router. On a
 * 2025-era session, lists and plain `tools/call`s are answered without the SDK (see
 * `sessionLists.ts`, `sessionCalls.ts`).
 * @module
 */
import { createMcpHandler, isLegacyRequest, type McpHttpHandler, type ServerEvent } from "@modelcontextprotocol/server"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { UserAuth } from "../auth/UserAuth.js"
import { Catalog } from "../catalog/Catalog.js"
import { GatewayConfig } from "../config/GatewayConfig.js"
import { Identities } from "../identity/Identities.js"
import type { Identity } from "../plugin/IdentityPlugin.js"
import { CallerEventBus } from "./era2026/callerEventBus.js"
import { makeDownstreamServer } from "./downstreamServer.js"
import { jsonRpcError } from "./httpErrors.js"
import { Sessions2025 } from "./era2025/Sessions2025.js"
import { McpRouter } from "../router/McpRouter.js"
import { clientGoneSignal, onExchangeDone, readBody, sendChunks, sendResponse } from "../http/nodeBridge.js"
import { waitUntilIdle } from "../http/drainWait.js"
import { withRequestSpan } from "../http/tracing.js"
import { onBodyDone } from "../http/responseBody.js"
import { callerView } from "../router/views.js"

/** Largest JSON-RPC body accepted (as the MCP SDK's default). */
export const MAX_BODY_BYTES = 4 * 1024 * 1024

/** How long a client may take to send a JSON-RPC body (at most 4 MiB; a trickle is refused). */
export const BODY_TIMEOUT = Duration.seconds(30)

const bodyTooLarge = () => jsonRpcError(413, -32000, `Request body larger than ${MAX_BODY_BYTES} bytes`)

const identityKey = "aperture.identity"

/** Whether the SDK's handler may open a listen stream for this body (a batch is left to it). */
const opensListenStream = (body: unknown) =>
  Array.isArray(body) || (body as { method?: unknown } | undefined)?.method === "subscriptions/listen"

/** The resource URIs a `subscriptions/listen` request asks to hear about. */
const listenedResources = (body: unknown): ReadonlyArray<string> => {
  const request = body as { method?: unknown; params?: { notifications?: { resourceSubscriptions?: unknown } } } | undefined
  if (request?.method !== "subscriptions/listen") return []
  const uris = request.params?.notifications?.resourceSubscriptions
  return Array.isArray(uris) ? uris.filter((u): u is string => typeof u === "string") : []
}

export class McpEndpoint extends Effect.Service<McpEndpoint>()("aperture/McpEndpoint", {
  scoped: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const identities = yield* Identities
    const router = yield* McpRouter
    const legacy = yield* Sessions2025
    const catalog = yield* Catalog


    // 2026-era callers hear about changes on their `subscriptions/listen` streams, each only
    // about what it can see.
    const viewOf = (identity: Identity) => callerView(catalog.current(), router.policyOf(identity)).fingerprints
    const bus = new CallerEventBus(viewOf)
    // Runs after the SDK handler closes: no listener outlives the endpoint.
    yield* Effect.addFinalizer(() => Effect.sync(() => bus.close()))
    const modern: McpHttpHandler = yield* Effect.acquireRelease(
      Effect.sync(() =>
        createMcpHandler(({ authInfo }) => {
          const identity = authInfo?.extra?.[identityKey] as Identity
          return makeDownstreamServer(router, identity, "modern").server
        }, { legacy: "reject", bus })
      ),
      (handler) => Effect.promise(() => handler.close().catch(() => {}))
    )
    const userAuth = yield* UserAuth
    yield* catalog.changes.pipe(
      Stream.changesWith((a, b) => a.index === b.index),
      Stream.drop(1),
      // A user connecting a per-user connector changes what they see.
      Stream.merge(Stream.map(userAuth.changes, () => catalog.current())),
      Stream.runForEach(() =>
        Effect.sync(() =>
          bus.publishPer((identity, before) => {
            const now = viewOf(identity)
            const events: Array<ServerEvent> = []
            if (before?.tools !== now.tools) events.push({ kind: "tools_list_changed" })
            if (before?.prompts !== now.prompts) events.push({ kind: "prompts_list_changed" })
            if (before?.resources !== now.resources) events.push({ kind: "resources_list_changed" })
            return { events, state: now }
          })
        )
      ),
      Effect.forkScoped
    )

    let inFlight = 0
    let draining = false
    /** Counts a call the gateway answers itself until it settles (its stream may outlive it). */
    const countCall = () => {
      inFlight++
      let counted = true
      return () => {
        if (counted) inFlight--
        counted = false
      }
    }

    // Not `Effect.fn`: it captures a stack trace (an `Error`) on every call (it shows in
    // `npm run bench -- --profile`), and makes its span with tracing off too.
    const handle = Effect.fnUntraced(function*(request: HttpServerRequest.HttpServerRequest) {
      // `Connection: close`, so a client does not park a keep-alive socket on a server going away.
      if (draining) return HttpServerResponse.fromWeb(jsonRpcError(503, -32000, "Server is shutting down", { connection: "close" }))
      if (request.method !== "POST" && request.method !== "GET" && request.method !== "DELETE") {
        return HttpServerResponse.fromWeb(jsonRpcError(405, -32000, "Method not allowed", { allow: "GET, POST, DELETE" }))
      }
      const headers = request.headers as Readonly<Record<string, string | undefined>>
      const url = new URL(request.url, `http://${headers["host"] ?? "localhost"}`)
      const caller = yield* identities.admit({
        remoteAddress: Option.getOrUndefined(request.remoteAddress),
        headers,
        url
      }).pipe(Effect.either)
      if (caller._tag === "Left") {
        const refused = caller.left
        return HttpServerResponse.fromWeb(
          refused.status === 403
            ? jsonRpcError(403, -32000, refused.reason)
            : jsonRpcError(401, -32001, `Unauthorized: ${refused.reason}`, refused.headers)
        )
      }
      const identity = caller.right

      let parsedBody: unknown
      if (request.method === "POST") {
        const length = Number(headers["content-length"] ?? 0)
        if (length > MAX_BODY_BYTES) return HttpServerResponse.fromWeb(bodyTooLarge())
        const read = yield* Effect.either(readBody(request, MAX_BODY_BYTES, BODY_TIMEOUT))
        if (read._tag === "Left") {
          return HttpServerResponse.fromWeb(
            read.left._tag === "BodyTimedOut"
              ? jsonRpcError(408, -32000, `Request body not received within ${Duration.format(BODY_TIMEOUT)}`, { connection: "close" })
              : bodyTooLarge()
          )
        }
        try {
          parsedBody = JSON.parse(read.right)
        } catch {
          return HttpServerResponse.fromWeb(jsonRpcError(400, -32700, "Parse error: the body is not valid JSON"))
        }
      }
      // A cluster: a session another replica opened is built here from its record first.
      const restoreId = legacy.needsRestore(headers)
      if (restoreId !== undefined) {
        const refused = yield* legacy.restore(restoreId, identity)
        if (refused !== undefined) return HttpServerResponse.fromWeb(refused)
      }
      if (Array.isArray(parsedBody)) {
        const rest = legacy.takeDirectMessages(headers, parsedBody, identity)
        if (rest.length === 0 && parsedBody.length > 0) return HttpServerResponse.empty({ status: 202 })
        parsedBody = rest
      }
      if (parsedBody !== undefined) {
        const direct = yield* legacy.answerDirectly(headers, parsedBody, identity)
        if (direct !== undefined) {
          return sendChunks(request, 200, {
            "content-type": "text/event-stream",
            "cache-control": "no-cache, no-transform",
            "mcp-session-id": direct.sessionId
          }, direct.chunks)
        }
      }
      const served = yield* legacy.serveDirectly(request, headers, parsedBody, identity, countCall)
      if (served !== undefined) return served

      // Calls in flight, for draining on shutdown; a GET stream is not a call.
      const counted = request.method !== "GET"
      if (counted) inFlight++
      const tracked = counted && onExchangeDone(request, () => inFlight--)

      const webHeaders = new Headers()
      for (const [name, value] of Object.entries(headers)) if (value !== undefined) webHeaders.set(name, value)
      const signal = clientGoneSignal(request)
      // No body: both SDK paths are handed `parsedBody` and never read it (a body would cost a
      // ReadableStream per request).
      const webRequest = new Request(url, {
        method: request.method,
        headers: webHeaders,
        ...(signal !== undefined && { signal })
      })
      const response = yield* Effect.gen(function*() {
        const isLegacy = yield* Effect.promise(() => isLegacyRequest(webRequest, parsedBody))
        if (isLegacy) return yield* legacy.handle(webRequest, parsedBody, identity)
        // A listen stream asking for resource updates: subscribe upstream while it is open.
        const stream = {}
        const uris = listenedResources(parsedBody)
        const release = uris.length === 0 ? undefined : router.subscribeListen(identity, uris, {
          sendResourceUpdated: (uri) => Promise.resolve(bus.deliverTo(stream, { kind: "resource_updated", uri }))
        })
        const serve = () =>
          modern.fetch(webRequest, {
            parsedBody,
            authInfo: { token: "", clientId: identity.login, scopes: [], extra: { [identityKey]: identity } }
          })
        // Only a listen stream subscribes to the event bus, which needs to know its caller; the
        // async context that tells it costs every promise of the process a hook while in use.
        const answered = yield* Effect.promise(() =>
          opensListenStream(parsedBody) ? bus.asCaller(identity, serve, stream) : serve()
        )
        return release === undefined ? answered : onBodyDone(answered, release)
      }).pipe(Effect.onExit((exit) => Effect.sync(() => {
        if (counted && !tracked && exit._tag === "Failure") inFlight--
      })))
      return yield* sendResponse(request, counted && !tracked ? onBodyDone(response, () => inFlight--) : response)
    }, withRequestSpan("McpEndpoint.handle"))

    /** Stop taking calls, wait (at most `timeoutMs`) for the ones in flight, then close every session. */
    const drain = (timeoutMs: number) =>
      Effect.gen(function*() {
        draining = true
        yield* waitUntilIdle(() => inFlight, timeoutMs, "calls")
        yield* legacy.closeAll
      })

    return { handle, drain, inFlight: () => inFlight, sessions: () => legacy.size(), listenStreams: () => bus.size } as const
  })
}) {}
