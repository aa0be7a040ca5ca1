/**
 * `GET /api/connectors`: the connectors as the calling user sees them. A connector the caller
 * has no grant for is listed as `no_access`, without its tools or errors.
 * @module
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import { authType } from "../auth/AuthPlugin.js"
import { Catalog } from "../catalog/Catalog.js"
import { McpRouter } from "../mcp/McpRouter.js"
import { allowed } from "../mcp/views.js"
import { adminCaller } from "./caller.js"

export type ApiStatus = "ready" | "connecting" | "needs_auth" | "misconfigured" | "down" | "no_access"

export interface ApiConnector {
  readonly id: string
  readonly protocol: "mcp" | "http"
  readonly transport: string
  readonly description: string
  readonly labels: ReadonlyArray<string>
  readonly status: ApiStatus
  readonly auth_type: string | null
  readonly tools: ReadonlyArray<string>
  readonly error?: string
  /** Exposed-name collisions with other connectors (`prefix: false`). */
  readonly warnings?: ReadonlyArray<string>
  readonly since: string
}

export const connectorsApi = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function*() {
    const catalog = yield* Catalog
    const router = yield* McpRouter
    const caller = yield* adminCaller(request)
    if (caller._tag === "Left") return caller.left
    const policy = router.policyOf(caller.right)
    const snapshot = yield* catalog.get
    const connectors: Array<ApiConnector> = snapshot.states.map((state) => {
      const c = state.connector
      const base = {
        id: c.id,
        protocol: c.kind === "http" ? "http" as const : "mcp" as const,
        transport: c.kind === "stdio" ? "stdio" : c.kind === "http" ? "http" : state.upstream?.transport ?? "streamable-http",
        description: c.description ?? "",
        labels: c.labels,
        auth_type: c.kind === "stdio" ? null : authType(c.auth) ?? null,
        since: new Date(state.since).toISOString()
      }
      if (!policy.touches(c.id, c.labels)) return { ...base, status: "no_access", tools: [] }
      const tools = snapshot.index.tools.filter((e) => e.connector.id === c.id && allowed(policy, e)).map((e) =>
        e.exposed["name"] as string
      )
      const collisions = snapshot.index.collisions.get(c.id)
      // An HTTP connector's status is its last request's outcome (see proxy/HttpProxy.ts).
      return {
        ...base,
        status: state.status,
        tools,
        ...(state.error !== undefined && { error: state.error }),
        ...(collisions !== undefined && { warnings: collisions })
      }
    })
    return yield* HttpServerResponse.json({ connectors })
  })
