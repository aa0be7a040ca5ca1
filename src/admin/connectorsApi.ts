/**
 * `GET /api/connectors`: the connectors as the calling user sees them. An admin sees every
 * connector in full (with `"admin": true` in the answer); anyone else sees in full the connectors
 * a grant of theirs reaches, and the others only as `no_access`: id, protocol and labels, nothing
 * an upstream or the config says about them (description, auth type, transport, errors). With
 * `cluster`, while Redis is down, `degraded` says so to every identified caller.
 * @module
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import { authType } from "../plugin/AuthPlugin.js"
import * as Option from "effect/Option"
import type { Catalog } from "../catalog/Catalog.js"
import type { ClusterRedis } from "../cluster/ClusterRedis.js"
import { allowed } from "../catalog/entryGrant.js"
import type { GrantPolicy } from "../grants/GrantPolicy.js"
import type { UserAuthService, UserConnectorState } from "../auth/UserAuth.js"
import type { Connector } from "../config/model.js"
import type { AdminGate } from "./caller.js"

export type ApiStatus = "ready" | "connecting" | "needs_auth" | "expired" | "misconfigured" | "down" | "no_access"

/** A connector the caller may use (or any connector, to an admin). */
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

/** A connector the caller has no grant on: that it exists, and no more. */
export interface ApiNoAccessConnector {
  readonly id: string
  readonly protocol: "mcp" | "http"
  readonly labels: ReadonlyArray<string>
  readonly status: "no_access"
  readonly tools: readonly []
}

/** What is degraded right now, in words (no password: the Redis address is host and port). */
const degradedParts = (cluster: ClusterRedis): ReadonlyArray<string> | undefined =>
  Option.match(cluster.redis, {
    onNone: () => undefined,
    onSome: (redis) => {
      const health = redis.health()
      return health.redis === "down" ? [`redis at ${redis.address} unreachable since ${health.since}: ${health.reason}`] : undefined
    }
  })

/** The wire name of a connector's credential (Aperture's `auth_type`). */
const authTypeOf = (c: Connector): string | null =>
  c.kind === "stdio" ? null
  : c.kind === "mcp" && c.userAuth !== undefined ? (c.userAuth.kind === "dynamic" ? "oauth2_dcr" : "oauth2_authorization_code")
  : authType(c.auth) ?? null

/** What a user who is not (or no longer) connected to a per-user connector is told. */
const userStateError = (id: string, state: Exclude<UserConnectorState, { readonly status: "ready" }>) =>
  state.status === "needs_auth" ? `not connected: POST /api/connectors/${id}/connect (or Connect on the status page)` : state.reason

export const connectorsApi = (
  catalog: Catalog,
  grants: GrantPolicy,
  cluster: ClusterRedis,
  userAuth: UserAuthService,
  gate: AdminGate
) => (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function*() {
    const caller = yield* gate.caller(request)
    if (caller._tag === "Left") return caller.left
    const admin = grants.isAdmin(caller.right)
    const policy = grants.policyOf(caller.right)
    const snapshot = yield* catalog.get
    // Per-user connectors are as the calling user stands with them.
    const userStates = new Map<string, UserConnectorState>()
    for (const id of userAuth.connectors.keys()) userStates.set(id, yield* userAuth.stateOf(caller.right.login, id))
    const connectors: Array<ApiConnector | ApiNoAccessConnector> = snapshot.states.map((state) => {
      const c = state.connector
      const protocol = c.kind === "http" ? "http" as const : "mcp" as const
      if (!admin && !policy.touches(c.id, c.labels)) {
        return { id: c.id, protocol, labels: c.labels, status: "no_access", tools: [] }
      }
      // An admin sees the tools as the catalog has them; a user, those their grants allow.
      const userState = userStates.get(c.id)
      const tools = userState !== undefined && userState.status !== "ready" ? [] : snapshot.index.tools.filter((e) =>
        e.connector.id === c.id && (admin || allowed(policy, e))
      ).map((e) => e.exposed["name"] as string)
      const error = userState !== undefined && userState.status !== "ready" ? userStateError(c.id, userState) : state.error
      const collisions = snapshot.index.collisions.get(c.id)
      // An HTTP connector's status is its last request's outcome (see proxy/HttpProxy.ts).
      return {
        id: c.id,
        protocol,
        transport: c.kind === "stdio" ? "stdio" : c.kind === "http" ? "http" : state.upstream?.transport ?? "streamable-http",
        description: c.description ?? "",
        labels: c.labels,
        status: userState !== undefined && userState.status !== "ready" ? userState.status : state.status,
        auth_type: authTypeOf(c),
        tools,
        ...(error !== undefined && { error }),
        ...(collisions !== undefined && { warnings: collisions }),
        since: new Date(state.since).toISOString()
      }
    })
    const degraded = degradedParts(cluster)
    const withDegraded = degraded === undefined ? {} : { degraded }
    return HttpServerResponse.unsafeJson(admin ? { admin: true, connectors, ...withDegraded } : { connectors, ...withDegraded })
  })
