/**
 * `GET /api/connectors`: the connectors as the calling user sees them. A connector the caller
 * has no grant for is listed as `no_access`, without its tools or errors.
 * @module
 */
import { HttpServerResponse } from "@effect/platform"
import type { HttpServerRequest } from "@effect/platform"
import { Effect, Option } from "effect"
import { authType } from "../auth/AuthPlugin.js"
import { Catalog } from "../catalog/Catalog.js"
import { Identities } from "../identity/Identities.js"
import { McpRouter } from "../mcp/McpRouter.js"
import { allowed } from "../mcp/views.js"

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
    const identities = yield* Identities
    const catalog = yield* Catalog
    const router = yield* McpRouter
    const headers = request.headers as Readonly<Record<string, string | undefined>>
    const caller = yield* identities.identify({
      remoteAddress: Option.getOrUndefined(request.remoteAddress),
      headers,
      url: new URL(request.url, "http://localhost")
    }).pipe(Effect.either)
    if (caller._tag === "Left") {
      return yield* HttpServerResponse.json({ error: `unauthorized: ${caller.left.reason}` }, {
        status: 401,
        headers: { "www-authenticate": identities.challenge }
      })
    }
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
      // HTTP connectors have no connection of their own: ready once they have a URL.
      const status: ApiStatus = c.kind === "http" ? (c.url === undefined ? "misconfigured" : "ready") : state.status
      const error = c.kind === "http" ? (c.url === undefined ? "no url configured" : undefined) : state.error
      return {
        ...base,
        status,
        tools,
        ...(error !== undefined && { error }),
        ...(collisions !== undefined && { warnings: collisions })
      }
    })
    return yield* HttpServerResponse.json({ connectors })
  })
