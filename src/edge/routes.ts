/**
 * The gateway's HTTP surface, as `HttpLayerRouter` routes.
 * @module
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { makeAdminGate } from "../admin/caller.js"
import { configApi, configFileIfAny } from "../admin/configApi.js"
import { connectorsApi } from "../admin/connectorsApi.js"
import { dashboardApi } from "../admin/dashboardApi.js"
import { health } from "../admin/health.js"
import { metricsRoute } from "../admin/metrics.js"
import { statusPage } from "../admin/statusPage.js"
import { userConnectRoutes } from "../admin/userConnect.js"
import { UserAuth } from "../auth/UserAuth.js"
import { AuditLog } from "../audit/AuditLog.js"
import { StatusHistory } from "../catalog/StatusHistory.js"
import { Sessions2025 } from "../endpoint/era2025/Sessions2025.js"
import { Catalog } from "../catalog/Catalog.js"
import { ClusterRedis } from "../cluster/ClusterRedis.js"
import { LiveConfig } from "../config/LiveConfig.js"
import { GrantPolicy } from "../grants/GrantPolicy.js"
import { Identities } from "../identity/Identities.js"
import { McpEndpoint } from "../endpoint/McpEndpoint.js"
import { Metrics } from "../metrics/Metrics.js"
import { HttpProxy } from "../proxy/HttpProxy.js"
import { Upstreams } from "../upstream/Upstreams.js"
import { CALLBACK_PREFIX, CONNECTORS_PREFIX, MCP_PATH, PROTECTED_RESOURCE_PATH } from "../http/paths.js"
import { protectedResource } from "./protectedResource.js"

/**
 * The router finds no route for a path it cannot percent-decode (`/v1/connectors/api/a%zz`) and
 * would answer an empty 404; under the proxy's prefix the proxy answers instead, with its 400
 * naming what is wrong with the path.
 */
const MalformedProxyPaths = HttpLayerRouter.middleware(
  Effect.map(HttpProxy, (proxy) => (effect) =>
    Effect.catchAll(effect, (error) => {
      // The router's errors are opaque to middleware; only its RouteNotFound is taken here.
      const notFound: unknown = error
      return notFound instanceof HttpServerError.RouteNotFound && notFound.request.url.startsWith(CONNECTORS_PREFIX)
        ? proxy.handle(notFound.request)
        : Effect.fail(error)
    })),
  { global: true }
)

/**
 * The routes, built once with the services they use: a handler closes over its services rather
 * than looking them up per request, so this layer's requirements are those services.
 */
const Endpoints = HttpLayerRouter.addAll(Effect.gen(function*() {
  const identities = yield* Identities
  const catalog = yield* Catalog
  const grants = yield* GrantPolicy
  const endpoint = yield* McpEndpoint
  const proxy = yield* HttpProxy
  const metrics = yield* Metrics
  const upstreams = yield* Upstreams
  const cluster = yield* ClusterRedis
  const userAuth = yield* UserAuth
  const gate = makeAdminGate(identities)
  const userConnect = userConnectRoutes(userAuth, grants, gate)
  const connectors = connectorsApi(catalog, grants, cluster, userAuth, gate)
  const legacySessions = yield* Sessions2025
  const dashboard = dashboardApi({
    catalog,
    grants,
    userAuth,
    metrics,
    history: yield* StatusHistory,
    audit: yield* AuditLog,
    sessions: legacySessions.list
  }, gate)
  const page = statusPage(gate, connectors)
  const metadata = protectedResource(identities)
  const config = configApi(yield* configFileIfAny, yield* LiveConfig, grants, gate)
  return [
    HttpLayerRouter.route("*", MCP_PATH, endpoint.handle),
    HttpLayerRouter.route("*", `${CONNECTORS_PREFIX}*`, proxy.handle),
    HttpLayerRouter.route("GET", "/healthz", health(catalog, cluster, gate)),
    HttpLayerRouter.route("GET", "/api/connectors", connectors),
    HttpLayerRouter.route("GET", "/api/connectors/:id/detail", dashboard.detail),
    HttpLayerRouter.route("GET", "/api/audit", dashboard.auditTrail),
    HttpLayerRouter.route("GET", "/api/sessions", dashboard.openSessions),
    HttpLayerRouter.route("POST", "/api/connectors/:id/connect", userConnect.connect),
    HttpLayerRouter.route("POST", "/api/connectors/:id/disconnect", userConnect.disconnect),
    HttpLayerRouter.route("GET", `${CALLBACK_PREFIX}:id/callback`, userConnect.callback),
    HttpLayerRouter.route("GET", "/api/config", config.get),
    HttpLayerRouter.route("PUT", "/api/config", config.put),
    HttpLayerRouter.route("GET", "/metrics", metricsRoute({ metrics, catalog, upstreams, proxy, endpoint }, grants, gate)),
    HttpLayerRouter.route("GET", "/", page),
    HttpLayerRouter.route("GET", "/ui", page),
    HttpLayerRouter.route("GET", PROTECTED_RESOURCE_PATH, metadata),
    HttpLayerRouter.route("GET", `${PROTECTED_RESOURCE_PATH}${MCP_PATH}`, metadata)
  ] as const
}))

export const Routes = Layer.mergeAll(Endpoints, MalformedProxyPaths)

/**
 * Where the gateway owns the server, a request no route serves answers a JSON 404 that names the
 * MCP endpoint (the router's own has an empty body): clients get pointed at `/mcp` or `/sse`. On a
 * host's router the host's 404s stay the host's. Paths under the proxy's prefix are left to
 * MalformedProxyPaths, whichever of the two wraps the other.
 */
export const NotFoundBody = HttpLayerRouter.middleware(
  Effect.succeed((effect) =>
    Effect.catchAll(effect, (error) => {
      const notFound: unknown = error
      if (!(notFound instanceof HttpServerError.RouteNotFound) || notFound.request.url.startsWith(CONNECTORS_PREFIX)) {
        return Effect.fail(error)
      }
      const { method, url } = notFound.request
      return Effect.succeed(HttpServerResponse.unsafeJson({
        error: "not_found",
        message: `no route for ${method} ${url.split("?")[0]}; the MCP endpoint is ${MCP_PATH}`
      }, { status: 404 }))
    })),
  { global: true }
)
