/**
 * `/v1/connectors/<id>/<path>`: HTTP connectors. Each request is checked (Host/Origin, caller,
 * grant `<id>/proxy/<path>`, method, path), sent to `<connector url>/<path>?<query>` with the
 * connector's credential and clean headers, and answered with the upstream's response.
 *
 * Bodies are streamed both ways through Node streams (`IncomingMessage` → `ClientRequest`,
 * upstream `IncomingMessage` → the caller's response): nothing is buffered, so a 1 GiB
 * transfer keeps memory flat, and per-request work stays a few object allocations, as on the
 * `/v1/mcp` hot path. Redirects are returned, never followed.
 *
 * An HTTP connector's status is the outcome of its last request: `down` after an unreachable
 * or timed-out upstream, `misconfigured` for a refused address or an unavailable credential,
 * `ready` again with the next answer.
 * @module
 */
import * as http from "node:http"
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from "node:http"
import * as https from "node:https"
import type { TLSSocket } from "node:tls"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { AuditLog } from "../audit/AuditLog.js"
import { type Credential, makeCredential, type UpstreamRequest } from "../plugin/AuthPlugin.js"
import { SharedTokensStore, withSharedTokens } from "../plugin/sharedTokens.js"
import { authorizationSecrets } from "../auth/scrubSecrets.js"
import { Catalog } from "../catalog/Catalog.js"
import type { ConnectorStatus } from "../catalog/index.js"
import { liveConfigOrStatic } from "../config/LiveConfig.js"
import type { Connector, HttpConnector } from "../config/model.js"
import { GrantPolicy } from "../grants/GrantPolicy.js"
import type { Decision } from "../grants/policy.js"
import { waitUntilIdle } from "../http/drainWait.js"
import { CONNECTORS_PREFIX, MCP_PATH } from "../http/paths.js"
import { Identities } from "../identity/Identities.js"
import { consumedHeaders, type Identity } from "../plugin/IdentityPlugin.js"
import { countRefreshes } from "../metrics/credentialRefreshes.js"
import { Metrics } from "../metrics/Metrics.js"
import { connectHostname, guardedLookup, PrivateAddressRefused, refuseLiteral } from "./addressGuard.js"
import { callerResponseHeaders, upstreamRequestHeaders } from "./headers.js"
import { CallerBodyStalled, errorResponse, type ProxyError, ProxyRequestRefused, UpstreamFailed } from "./ProxyError.js"
import { scrubbedErrorBody } from "./scrubbedErrorBody.js"
import { proxyExchangeTracing } from "./proxyTracing.js"
import { Telemetry } from "../telemetry/Telemetry.js"
import { decodePath, methodOverrideParam, normalizeBase, splitTarget, upstreamUrl, withQueryParams } from "./upstreamPath.js"

/** One HTTP connector, ready to proxy. */
interface Route {
  readonly connector: HttpConnector
  /** The base URL with one trailing slash; undefined when the connector has no `url`. */
  readonly base: URL | undefined
  readonly credential: Credential | undefined
  readonly agent: http.Agent | undefined
  /** Set when the base URL is an IP literal the SSRF guard refuses. */
  readonly refusedAddress: PrivateAddressRefused | undefined
  readonly timeoutMs: number
  /** The `Allow` header for 405 answers. */
  readonly allow: string
}

/** Raised inside the socket when the upstream was silent for the connector's timeout. */
class UpstreamSilent extends Error {}

/** Raised inside the socket when the exchange went quiet because the caller stopped sending its body. */
class CallerSilent extends Error {}

const isIncomingMessage = (u: unknown): u is IncomingMessage =>
  typeof u === "object" && u !== null && typeof (u as IncomingMessage).pipe === "function" &&
  typeof (u as IncomingMessage).headers === "object"

const webHeaders = (headers: IncomingHttpHeaders | OutgoingHttpHeaders): Headers => {
  const result = new Headers()
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined) continue
    result.set(name, Array.isArray(value) ? value.join(", ") : String(value))
  }
  return result
}

const hasBody = (headers: IncomingHttpHeaders) =>
  headers["transfer-encoding"] !== undefined || (headers["content-length"] !== undefined && headers["content-length"] !== "0")

/**
 * The largest request body kept in memory so that a 401 can be answered as the contract says,
 * with one credential refresh and one retry: only on a connector whose credential can refresh,
 * and only a body whose `Content-Length` is known and at most this. A larger or chunked body
 * streams through and cannot be sent twice (its 401 goes back to the caller; the next request
 * carries the fresh credential).
 */
const REPLAYABLE_BODY_BYTES = 1024 * 1024

/** What is sent upstream: nothing, the caller's body as it streams, or a body read whole. */
type OutgoingBody = IncomingMessage | Buffer | undefined

/** A caller's whole body, if it stops arriving for `timeoutMs` the exchange fails as the caller's. */
const readWhole = (route: Route, body: IncomingMessage) =>
  Effect.async<Buffer, CallerBodyStalled>((resume) => {
    const chunks: Array<Buffer> = []
    const stop = () => {
      clearTimeout(timer)
      body.off("data", onData)
      body.off("end", onEnd)
      body.off("error", onError)
      body.off("close", onClose)
    }
    const settle = (outcome: Effect.Effect<Buffer, CallerBodyStalled>) => {
      stop()
      resume(outcome)
    }
    const stalled = () =>
      settle(Effect.fail(new CallerBodyStalled({
        connectorId: route.connector.id,
        message: `the request body stopped arriving for ${route.timeoutMs} ms (the connector's timeout)`
      })))
    let timer = setTimeout(stalled, route.timeoutMs)
    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      clearTimeout(timer)
      timer = setTimeout(stalled, route.timeoutMs)
    }
    const onEnd = () => settle(Effect.succeed(Buffer.concat(chunks)))
    const onError = () => stalled()
    const onClose = () => {
      if (!body.complete) stalled()
    }
    body.on("data", onData)
    body.on("end", onEnd)
    body.on("error", onError)
    body.on("close", onClose)
    return Effect.sync(stop)
  })

/** The failure, described without the upstream path or query (the query may hold a credential). */
const describeFailure = (route: Route, url: URL, error: unknown): UpstreamFailed | CallerBodyStalled => {
  const connectorId = route.connector.id
  if (error instanceof CallerSilent) {
    return new CallerBodyStalled({
      connectorId,
      message: `the request body stopped arriving for ${route.timeoutMs} ms (the connector's timeout)`
    })
  }
  if (error instanceof UpstreamSilent) {
    return new UpstreamFailed({
      connectorId,
      kind: "timeout",
      message: `connector ${connectorId}: ${url.host} sent nothing for ${route.timeoutMs} ms (the connector's timeout)`
    })
  }
  if (error instanceof PrivateAddressRefused) {
    return new UpstreamFailed({ connectorId, kind: "private_address", message: `connector ${connectorId}: ${error.message}` })
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  const reason = code === "ECONNREFUSED"
    ? `${url.host} refused the connection`
    : code === "ENOTFOUND" || code === "EAI_AGAIN"
    ? `cannot resolve ${url.hostname}`
    : code === "ECONNRESET"
    ? `${url.host} closed the connection`
    : `${url.host}: ${error instanceof Error ? error.message : String(error)}`
  return new UpstreamFailed({ connectorId, kind: "unreachable", message: `connector ${connectorId}: ${reason}` })
}

/**
 * Pipes the upstream's response into the caller's Node response and completes when it has been
 * sent. Written here rather than returned as a streamed `HttpServerResponse`: the platform's
 * `stream.pipeline` costs an AbortController and a DOMException per response (S6 in
 * bench/README.md). When the exchange breaks (the caller leaves, the upstream
 * dies mid-body) the caller's socket closes unfinished and the platform interrupts this fiber,
 * which destroys the upstream response.
 */
const streamToCaller = (request: HttpServerRequest.HttpServerRequest, response: IncomingMessage, status: number) =>
  Effect.async<HttpServerResponse.HttpServerResponse>((resume) => {
    const out = NodeHttpServerRequest.toServerResponse(request)
    out.writeHead(status, callerResponseHeaders(response.headers))
    const broken = () => out.destroy()
    response.once("error", broken)
    response.once("aborted", broken)
    out.once("close", () => {
      // Already sent: the platform sees the response ended and writes nothing more.
      if (out.writableFinished) resume(Effect.succeed(HttpServerResponse.empty({ status })))
    })
    response.pipe(out)
    return Effect.sync(() => response.destroy())
  })

export class HttpProxy extends Effect.Service<HttpProxy>()("aperture/HttpProxy", {
  scoped: Effect.gen(function*() {
    const liveConfig = yield* liveConfigOrStatic
    const catalog = yield* Catalog
    const identities = yield* Identities
    const { policyOf } = yield* GrantPolicy
    const metrics = yield* Metrics
    // With telemetry on (only then): a client span per upstream exchange and its traceparent sent on.
    const telemetry = Option.getOrUndefined(yield* Effect.serviceOption(Telemetry))
    const tracedExchange = telemetry === undefined ? undefined : proxyExchangeTracing(telemetry)
    const audit = yield* AuditLog
    // In a cluster, credentials share their tokens across replicas (else forConnector is undefined).
    const sharedTokens = yield* SharedTokensStore
    // The caller's gateway credential (X-API-Key, Tailscale-User-Login, …) is not the upstream's.
    // Replaced when a reload changes the identity plugins.
    let consumed: ReadonlySet<string> = new Set(liveConfig.current().identity.flatMap(consumedHeaders))

    /** One audit line for a grant decision on a proxied request (callers check `audit.enabled`). */
    const auditProxy = (
      identity: Identity,
      connectorId: string,
      path: string,
      method: string,
      grant: Decision | undefined,
      startedAt: number,
      status: number | undefined,
      outcome: "ok" | "error" | "cancelled" | "denied"
    ) =>
      audit.record({
        identity,
        connector: connectorId,
        category: "proxy",
        exposed: path,
        upstream: path,
        grant,
        startedAt,
        outcome,
        method,
        status
      })

    /** Records a connector's status when it changed (the catalog is not touched per request). */
    const report = (id: string, status: ConnectorStatus, error: string | undefined) => {
      const current = catalog.current().byId.get(id)
      if (current !== undefined && current.status === status && current.error === error && current.attempted) return Effect.void
      return catalog.update(id, (s) => ({ ...s, status, error, attempted: true }))
    }

    const setUp = (connector: HttpConnector) =>
      Effect.gen(function*() {
        const timeoutMs = Duration.toMillis(connector.timeout)
        const allow = connector.methods.join(", ")
        if (connector.url === undefined) {
          yield* report(connector.id, "down", "no url configured")
          const route: Route = { connector, base: undefined, credential: undefined, agent: undefined, refusedAddress: undefined, timeoutMs, allow }
          return route
        }
        const base = normalizeBase(connector.url)
        const refusedAddress = connector.allowPrivate ? undefined : refuseLiteral(connectHostname(base))
        const credential = connector.auth === undefined
          ? Either.right(undefined)
          : yield* makeCredential(connector.auth, {
            connectorId: connector.id,
            upstreamUrl: base,
            ...withSharedTokens(sharedTokens.forConnector(connector.id))
          }).pipe(
            Effect.map((c) => countRefreshes(c, () => metrics.tokenRefreshed(connector.id))),
            Effect.either
          )
        // Keep-alive per connector; the SSRF guard runs in the lookup of every new socket.
        const agentOptions: http.AgentOptions = { keepAlive: true, ...(!connector.allowPrivate && { lookup: guardedLookup }) }
        const agent = yield* Effect.acquireRelease(
          Effect.sync(() => base.protocol === "https:" ? new https.Agent(agentOptions) : new http.Agent(agentOptions)),
          (a) => Effect.sync(() => a.destroy())
        )
        if (refusedAddress !== undefined) yield* report(connector.id, "misconfigured", refusedAddress.message)
        else if (Either.isLeft(credential)) yield* report(connector.id, "misconfigured", `credential: ${credential.left.message}`)
        else yield* report(connector.id, "ready", undefined)
        const route: Route = {
          connector,
          base,
          credential: Either.getOrUndefined(credential),
          agent,
          refusedAddress,
          timeoutMs,
          allow
        }
        return route
      }).pipe(Effect.annotateLogs("connector", connector.id))

    const routes = new Map<string, Route>()
    // Each route's keep-alive pool lives in a scope of its own, closed when a reload removes or changes it.
    const routeScopes = new Map<string, Scope.CloseableScope>()
    const httpConnectorsOf = (connectors: ReadonlyArray<Connector>) => connectors.filter((c): c is HttpConnector => c.kind === "http")
    let httpConnectors = httpConnectorsOf(liveConfig.current().connectors)
    const layerScope = yield* Effect.scope
    const open = (connector: HttpConnector) =>
      Effect.gen(function*() {
        const scope = yield* Scope.fork(layerScope, ExecutionStrategy.sequential)
        const route = yield* Scope.extend(setUp(connector), scope)
        routes.set(connector.id, route)
        routeScopes.set(connector.id, scope)
      })
    const close = (connectorId: string) =>
      Effect.suspend(() => {
        const scope = routeScopes.get(connectorId)
        routes.delete(connectorId)
        routeScopes.delete(connectorId)
        return scope === undefined ? Effect.void : Scope.close(scope, Exit.void)
      })
    yield* Effect.forEach(httpConnectors, open, { concurrency: "unbounded", discard: true })
    // The identity plugins swap in the "policies" stage: from then on a new plugin's header may
    // identify a caller, so it is stripped from that stage on (with the old plugins' too, until
    // the "connections" stage below keeps only the new ones).
    yield* liveConfig.onChange("policies", (change) =>
      Effect.sync(() => {
        if (change.identityChanged) consumed = new Set([...consumed, ...change.next.identity.flatMap(consumedHeaders)])
      }))
    yield* liveConfig.onChange("connections", (change) =>
      Effect.gen(function*() {
        const { added, changed, removed } = change.connectors
        if (change.identityChanged) consumed = new Set(change.next.identity.flatMap(consumedHeaders))
        httpConnectors = httpConnectorsOf(change.next.connectors)
        yield* Effect.forEach([...removed, ...changed], (c) => close(c.id), { discard: true })
        yield* Effect.forEach(httpConnectorsOf([...added, ...changed]), open, { concurrency: "unbounded", discard: true })
      }))

    /** One upstream exchange: resolves with the response head; the body is left to stream. */
    const send = (route: Route, url: URL, method: string, headers: OutgoingHttpHeaders, body: OutgoingBody) =>
      Effect.async<IncomingMessage, UpstreamFailed | CallerBodyStalled>((resume) => {
        const request = (url.protocol === "https:" ? https.request : http.request)({
          protocol: url.protocol,
          hostname: connectHostname(url),
          ...(url.port !== "" && { port: Number(url.port) }),
          path: `${url.pathname}${url.search}`,
          method,
          headers,
          ...(route.agent !== undefined && { agent: route.agent })
        })
        let settled = false
        // Idle timeout: before the answer it fails the call (504); while the body streams it cuts
        // it. Quiet while the upload is unfinished and the upstream is taking it (no backpressure):
        // the caller stopped sending, its fault (408), not the upstream's.
        request.setTimeout(route.timeoutMs, () =>
          request.destroy(
            body !== undefined && !Buffer.isBuffer(body) && !body.complete && !request.writableNeedDrain ? new CallerSilent() : new UpstreamSilent()
          )
        )
        request.once("response", (response) => {
          if (settled) return response.destroy()
          settled = true
          resume(Effect.succeed(response))
        })
        // Kept for the request's life: errors after the answer surface on the response stream.
        request.on("error", (error) => {
          if (settled) return
          settled = true
          resume(Effect.fail(describeFailure(route, url, error)))
        })
        if (body === undefined) request.end()
        else if (Buffer.isBuffer(body)) request.end(body)
        else body.pipe(request)
        return Effect.sync(() => {
          if (!settled) {
            settled = true
            request.destroy()
          }
        })
      })

    /**
     * Authorizes and sends; a 401 gets one credential refresh and one retry (a 401 means the
     * request was not applied, RFC 9110 §15.5.2), when the body can be sent again (see
     * {@link REPLAYABLE_BODY_BYTES}).
     */
    const exchange = (route: Route, url: URL, method: string, headers: OutgoingHttpHeaders, callerBody: IncomingMessage | undefined) =>
      Effect.gen(function*() {
        const credential = route.credential
        if (credential === undefined) return { response: yield* send(route, url, method, headers, callerBody), authorization: undefined }
        const length = Number(callerBody?.headers["content-length"])
        const body: OutgoingBody = callerBody !== undefined && credential.onUnauthorized !== undefined &&
            Number.isSafeInteger(length) && length <= REPLAYABLE_BODY_BYTES
          ? yield* readWhole(route, callerBody)
          : callerBody
        const connectorId = route.connector.id
        const credentialFailed = (e: { readonly message: string }) =>
          new UpstreamFailed({ connectorId, kind: "credential", message: `connector ${connectorId}: ${e.message}` })
        const credentialLate = new UpstreamFailed({
          connectorId,
          kind: "credential",
          message: `connector ${connectorId}: its credential was not ready within ${route.timeoutMs} ms (the connector's timeout); the request was not sent`
        })
        const attempt = Effect.gen(function*() {
          let webRequestHeaders: Headers | undefined
          const upstreamRequest: UpstreamRequest = {
            url,
            method,
            // Built only for plugins that read the request's headers (a signature, say).
            get headers() {
              return webRequestHeaders ??= webHeaders(headers)
            },
            // The contract: a body read whole is the plugin's to read; one that streams is
            // marked so, never passed as "no body" (a signature over it would be over nothing).
            body: Buffer.isBuffer(body) ? body : undefined,
            bodyStreams: body !== undefined && !Buffer.isBuffer(body)
          }
          // The wait for the credential (a token request, say) is part of the request: bounded by
          // the connector's timeout. Giving up ends this request's wait only; a token request
          // other requests wait on goes on.
          const authorization = yield* credential.authorize(upstreamRequest).pipe(
            Effect.mapError(credentialFailed),
            Effect.timeoutFail({ duration: route.timeoutMs, onTimeout: () => credentialLate })
          )
          const withCredential: OutgoingHttpHeaders = { ...headers }
          for (const name in authorization.headers) withCredential[name.toLowerCase()] = authorization.headers[name]
          const target = authorization.query === undefined ? url : withQueryParams(url, authorization.query)
          const response = yield* send(route, target, method, withCredential, body)
          return { upstreamRequest, response, authorization }
        })
        const first = yield* attempt
        if (first.response.statusCode !== 401 || credential.onUnauthorized === undefined) return first
        const refused = new Response(null, { status: 401, headers: webHeaders(first.response.headers) })
        if (body !== undefined && !Buffer.isBuffer(body)) {
          // A streamed body cannot be sent twice: refresh for the next request, return this 401.
          yield* Effect.ignore(credential.onUnauthorized(first.upstreamRequest, refused))
          return first
        }
        const retry = yield* Effect.mapError(credential.onUnauthorized(first.upstreamRequest, refused), credentialFailed)
        if (!retry) return first
        first.response.resume()
        return yield* attempt
      })

    let inFlight = 0
    let draining = false

    const proxy = Effect.fnUntraced(function*(request: HttpServerRequest.HttpServerRequest) {
      const source = request.source
      if (!isIncomingMessage(source)) {
        return yield* new ProxyRequestRefused({
          status: 501,
          code: "unsupported_server",
          message: "the HTTP connector proxy runs on a Node.js HTTP server (@effect/platform-node)"
        })
      }
      if (draining) {
        return yield* new ProxyRequestRefused({ status: 503, code: "shutting_down", message: "the gateway is shutting down" })
      }
      // The one check every surface makes (Host/Origin, then the identity plugins), first.
      const identity = yield* identities.admit({
        remoteAddress: source.socket.remoteAddress,
        headers: source.headers as Readonly<Record<string, string | undefined>>,
        url: new URL(source.url ?? "/", "http://localhost")
      }).pipe(Effect.mapError((refused) =>
        refused.status === 403
          ? new ProxyRequestRefused({ status: 403, code: "forbidden_host", message: refused.reason })
          : new ProxyRequestRefused({
            status: 401,
            code: "unauthorized",
            message: `unauthorized: ${refused.reason}`,
            ...(refused.headers !== undefined && { headers: refused.headers })
          })
      ))
      const target = splitTarget(source.url ?? "")
      if (target === undefined) {
        return yield* new ProxyRequestRefused({ status: 404, code: "unknown_connector", message: `expected ${CONNECTORS_PREFIX}<connector>/<path>` })
      }
      const connectorId = target.connectorId
      const route = routes.get(connectorId)
      if (route === undefined) {
        return yield* new ProxyRequestRefused({
          status: 404,
          code: "unknown_connector",
          message: `no HTTP connector "${connectorId}" (MCP connectors are served at ${MCP_PATH})`
        })
      }
      const connector = route.connector
      const policy = policyOf(identity)
      if (!policy.touches(connectorId, connector.labels, "proxy")) {
        if (audit.enabled) auditProxy(identity, connectorId, target.rawPath, source.method ?? "GET", undefined, performance.now(), 403, "denied")
        return yield* new ProxyRequestRefused({
          status: 403,
          code: "forbidden",
          message: `no grant allows ${identity.login} to use connector ${connectorId} (grant "${connectorId}/proxy/**" or a narrower path)`,
          connectorId
        })
      }
      const method = source.method ?? "GET"
      if (!(connector.methods as ReadonlyArray<string>).includes(method)) {
        return yield* new ProxyRequestRefused({
          status: 405,
          code: "method_not_allowed",
          message: `connector ${connectorId} allows ${route.allow}`,
          connectorId,
          headers: { allow: route.allow }
        })
      }
      const name = decodePath(target.rawPath)
      if (Either.isLeft(name)) {
        return yield* new ProxyRequestRefused({ status: 400, code: "invalid_path", message: name.left, connectorId })
      }
      const override = methodOverrideParam(target.rawQuery)
      if (override !== undefined) {
        return yield* new ProxyRequestRefused({
          status: 400,
          code: "method_override",
          message: `query parameter ${override} asks the upstream for another method than ${method}; send that method instead`,
          connectorId
        })
      }
      const grant = policy.decide({ connectorId, labels: connector.labels, category: "proxy", name: name.right })
      if (grant === undefined) {
        if (audit.enabled) auditProxy(identity, connectorId, name.right, method, undefined, performance.now(), 403, "denied")
        return yield* new ProxyRequestRefused({
          status: 403,
          code: "forbidden",
          message: `no grant allows ${identity.login} to use ${connectorId}/proxy/${name.right}`,
          connectorId
        })
      }
      const forwarded = forwardGranted(request, source, route, target, name.right, method, identity)
      if (!audit.enabled) return yield* forwarded
      // One line when the exchange is over: the caller's status, or how it broke off.
      const startedAt = performance.now()
      return yield* forwarded.pipe(Effect.onExit((exit) =>
        Effect.sync(() => {
          if (exit._tag === "Success") {
            const status = exit.value.status
            auditProxy(identity, connectorId, name.right, method, grant, startedAt, status, status >= 400 ? "error" : "ok")
          } else {
            const failure = Cause.failureOption(exit.cause)
            if (failure._tag === "Some") {
              auditProxy(identity, connectorId, name.right, method, grant, startedAt, failure.value.httpAnswer.status, "error")
            } else {
              auditProxy(identity, connectorId, name.right, method, grant, startedAt, undefined, "cancelled")
            }
          }
        })
      ))
    })

    /** A request the grants allow: to the upstream and back. */
    const forwardGranted = Effect.fnUntraced(function*(
      request: HttpServerRequest.HttpServerRequest,
      source: IncomingMessage,
      route: Route,
      target: NonNullable<ReturnType<typeof splitTarget>>,
      path: string,
      method: string,
      identity: Identity
    ) {
      const connectorId = route.connector.id
      if (route.base === undefined) {
        return yield* new ProxyRequestRefused({
          status: 503,
          code: "connector_misconfigured",
          message: `connector ${connectorId} has no url configured`,
          connectorId
        })
      }
      if (route.refusedAddress !== undefined) {
        return yield* new UpstreamFailed({ connectorId, kind: "private_address", message: `connector ${connectorId}: ${route.refusedAddress.message}` })
      }
      const url = upstreamUrl(route.base, target.rawPath, target.rawQuery)
      if (Either.isLeft(url)) {
        return yield* new ProxyRequestRefused({ status: 400, code: "invalid_path", message: url.left, connectorId })
      }
      const headers = upstreamRequestHeaders(source.headers, route.base.host, {
        remoteAddress: source.socket.remoteAddress,
        proto: (source.socket as TLSSocket).encrypted === true ? "https" : "http",
        host: source.headers.host,
        prefix: `${CONNECTORS_PREFIX}${connectorId}`
      }, consumed)

      inFlight++
      NodeHttpServerRequest.toServerResponse(request).once("close", () => inFlight--)
      const finish = metrics.startRequest(connectorId, method)
      const sent = exchange(route, url.right, method, headers, hasBody(source.headers) ? source : undefined)
      const { response, authorization } = yield* (tracedExchange === undefined ? sent : tracedExchange(connectorId, method, headers, sent)).pipe(
        Effect.tapError((failure) =>
          failure._tag === "CallerBodyStalled"
            ? Effect.sync(() => finish(false)) // the caller's failure: not the gateway's, not the upstream's
            : Effect.zipRight(
              Effect.sync(() => finish(true)),
              report(connectorId, failure.kind === "unreachable" || failure.kind === "timeout" ? "down" : "misconfigured", failure.message)
            )
        )
      )
      const status = response.statusCode ?? 502
      finish(false)
      metrics.upstreamResponse(connectorId, status)
      yield* report(connectorId, "ready", undefined)
      yield* Effect.logDebug(`proxy ${identity.login} ${method} ${connectorId}/${path} → ${status}`)
      // Only an error answer is checked for the credential, so its forms are worked out only then.
      const secrets = status >= 400 && authorization !== undefined && method !== "HEAD" ? authorizationSecrets(authorization) : []
      if (secrets.length > 0) {
        const scrubbed = yield* scrubbedErrorBody(response, secrets)
        if (scrubbed._tag === "Unreadable") {
          return yield* new UpstreamFailed({
            connectorId,
            kind: "unchecked_error",
            message: `connector ${connectorId} answered HTTP ${status}, not passed on: ${scrubbed.reason}, so it could not be checked for the credential`
          })
        }
        const { "content-encoding": _, "content-length": __, ...rest } = callerResponseHeaders(response.headers)
        return HttpServerResponse.uint8Array(scrubbed.body, { status, headers: { ...rest, "content-length": String(scrubbed.body.length) } })
      }
      return yield* streamToCaller(request, response, status)
    })

    const handle = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
      proxy(request).pipe(Effect.catchAll((error: ProxyError) => Effect.succeed(errorResponse(error))))

    /** Stop taking requests, and wait (at most `timeoutMs`) for those in flight, streams included. */
    const drain = (timeoutMs: number) =>
      Effect.suspend(() => {
        draining = true
        return waitUntilIdle(() => inFlight, timeoutMs, "proxied requests")
      })

    return {
      handle,
      drain,
      inFlight: () => inFlight,
      /** The HTTP connectors, in config order. */
      connectors: (): ReadonlyArray<HttpConnector> => httpConnectors
    } as const
  })
}) {}
