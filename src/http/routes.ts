/**
 * The gateway's HTTP surface, as `HttpLayerRouter` routes.
 * @module
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { connectorsApi } from "../admin/connectorsApi.js"
import { health } from "../admin/health.js"
import { metricsRoute } from "../admin/metrics.js"
import { statusPage } from "../admin/statusPage.js"
import { McpEndpoint } from "../mcp/McpEndpoint.js"
import { HttpProxy } from "../proxy/HttpProxy.js"
import { CONNECTORS_PREFIX, MCP_PATH, PROTECTED_RESOURCE_PATH } from "./paths.js"
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

const Endpoints = HttpLayerRouter.addAll([
  HttpLayerRouter.route("*", MCP_PATH, (request) => Effect.flatMap(McpEndpoint, (endpoint) => endpoint.handle(request))),
  HttpLayerRouter.route("*", `${CONNECTORS_PREFIX}*`, (request) => Effect.flatMap(HttpProxy, (proxy) => proxy.handle(request))),
  HttpLayerRouter.route("GET", "/healthz", health),
  HttpLayerRouter.route("GET", "/api/connectors", connectorsApi),
  HttpLayerRouter.route("GET", "/metrics", metricsRoute),
  HttpLayerRouter.route("GET", "/", statusPage),
  HttpLayerRouter.route("GET", "/ui", statusPage),
  HttpLayerRouter.route("GET", PROTECTED_RESOURCE_PATH, protectedResource),
  HttpLayerRouter.route("GET", `${PROTECTED_RESOURCE_PATH}${MCP_PATH}`, protectedResource)
])

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
