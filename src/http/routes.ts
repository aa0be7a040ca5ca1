/**
 * The gateway's HTTP surface, as `HttpLayerRouter` routes.
 * @module
 */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as Effect from "effect/Effect"
import { connectorsApi } from "../admin/connectorsApi.js"
import { health } from "../admin/health.js"
import { metricsRoute } from "../admin/metrics.js"
import { statusPage } from "../admin/statusPage.js"
import { PROTECTED_RESOURCE_PATH } from "../identity/Identities.js"
import { McpEndpoint } from "../mcp/McpEndpoint.js"
import { HttpProxy } from "../proxy/HttpProxy.js"
import { protectedResource } from "./protectedResource.js"

export const MCP_PATH = "/v1/mcp"

export const Routes = HttpLayerRouter.addAll([
  HttpLayerRouter.route("*", MCP_PATH, (request) => Effect.flatMap(McpEndpoint, (endpoint) => endpoint.handle(request))),
  HttpLayerRouter.route("*", "/v1/connectors/*", (request) => Effect.flatMap(HttpProxy, (proxy) => proxy.handle(request))),
  HttpLayerRouter.route("GET", "/healthz", health),
  HttpLayerRouter.route("GET", "/api/connectors", connectorsApi),
  HttpLayerRouter.route("GET", "/metrics", metricsRoute),
  HttpLayerRouter.route("GET", "/", statusPage),
  HttpLayerRouter.route("GET", "/ui", statusPage),
  HttpLayerRouter.route("GET", PROTECTED_RESOURCE_PATH, protectedResource),
  HttpLayerRouter.route("GET", `${PROTECTED_RESOURCE_PATH}${MCP_PATH}`, protectedResource)
])
