/**
 * The status page's JSON beyond `/api/connectors`:
 *
 * - `GET /api/connectors/<id>/detail`: one connector as the caller sees it: its status history,
 *   its requests per minute, and the tools (with descriptions and input schemas), prompts,
 *   resources and templates the caller's grants allow, decided as a call is
 *   ({@link decideEntry}). 403 without a grant on the connector, 404 for an unknown id.
 * - `GET /api/audit?login=&connector=&decision=&limit=`: the latest audit lines (admins only).
 * - `GET /api/sessions`: the open 2025-era sessions (admins only).
 *
 * Nothing here holds a secret: the auth type is named, never a value; a session shows an id prefix.
 * @module
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import type { Audit } from "../audit/AuditLog.js"
import type { Catalog } from "../catalog/Catalog.js"
import { allowed } from "../catalog/entryGrant.js"
import type { IndexEntry } from "../catalog/index.js"
import type { StatusHistory } from "../catalog/StatusHistory.js"
import type { GrantPolicy } from "../grants/GrantPolicy.js"
import type { UserAuthService } from "../auth/UserAuth.js"
import type { Metrics } from "../metrics/Metrics.js"
import type { Identity } from "../plugin/IdentityPlugin.js"
import type { AdminGate } from "./caller.js"

/** One open session as the endpoint reports it (admin/ does not import endpoint/: the routes pass it). */
export interface SessionSummary {
  readonly idPrefix: string
  readonly login: string
  readonly via: string
  readonly protocolVersion: string | undefined
  readonly client: string | undefined
  readonly openedAt: number
  readonly lastSeen: number
}

export interface DashboardSources {
  readonly catalog: Catalog
  readonly grants: GrantPolicy
  readonly userAuth: UserAuthService
  readonly history: StatusHistory
  readonly metrics: Metrics
  readonly audit: Audit
  readonly sessions: () => ReadonlyArray<SessionSummary>
}

const json = (body: unknown, status = 200) => HttpServerResponse.unsafeJson(body, { status, headers: { "cache-control": "no-store" } })

const ADMINS_ONLY = (what: string) => json({ error: `forbidden: ${what} is for callers with a grant with role "admin"` }, 403)

/** The fields of an upstream definition the page shows, as the upstream gave them (exposed name in place). */
const pick = (entry: IndexEntry, keys: ReadonlyArray<string>) => {
  const out: Record<string, unknown> = {}
  for (const key of keys) if (entry.exposed[key] !== undefined) out[key] = entry.exposed[key]
  return out
}

const TOOL_FIELDS = ["name", "title", "description", "inputSchema", "outputSchema", "annotations"]
const PROMPT_FIELDS = ["name", "title", "description", "arguments"]
const RESOURCE_FIELDS = ["uri", "name", "title", "description", "mimeType"]
const TEMPLATE_FIELDS = ["uriTemplate", "name", "title", "description", "mimeType"]

export const dashboardApi = (sources: DashboardSources, gate: AdminGate) => {
  const { catalog, grants, userAuth, history, metrics, audit } = sources

  const detail = (request: HttpServerRequest.HttpServerRequest) =>
    Effect.gen(function*() {
      const caller = yield* gate.caller(request)
      if (caller._tag === "Left") return caller.left
      const identity: Identity = caller.right
      const { id } = yield* HttpRouter.params
      const snapshot = catalog.current()
      const state = id === undefined ? undefined : snapshot.byId.get(id)
      if (id === undefined || state === undefined) return json({ error: `not_found: no connector ${JSON.stringify(id ?? "")}` }, 404)
      const c = state.connector
      const admin = grants.isAdmin(identity)
      const policy = grants.policyOf(identity)
      if (!admin && !policy.touches(c.id, c.labels)) {
        return json({ error: `forbidden: no grant of yours reaches connector ${c.id}` }, 403)
      }
      // A per-user connector is as the viewer stands with it: nothing to use before they connect.
      const userState = userAuth.connectors.has(c.id) ? yield* userAuth.stateOf(identity.login, c.id) : undefined
      const usable = userState === undefined || userState.status === "ready"
      const mine = (entries: ReadonlyArray<IndexEntry>, fields: ReadonlyArray<string>) =>
        usable ? entries.filter((e) => e.connector.id === c.id && (admin || allowed(policy, e))).map((e) => pick(e, fields)) : []
      const status = userState !== undefined && userState.status !== "ready" ? userState.status : state.status
      const error = userState === undefined || userState.status === "ready" ? state.error
        : userState.status === "needs_auth" ? "not connected: use Connect on the status page" : userState.reason
      return json({
        id: c.id,
        protocol: c.kind === "http" ? "http" : "mcp",
        description: c.description ?? "",
        status,
        since: new Date(state.since).toISOString(),
        ...(error !== undefined && { error }),
        ...(userState !== undefined && { per_user: true }),
        history: history.of(c.id).map((change) => ({
          at: new Date(change.at).toISOString(),
          status: change.status,
          ...(change.reason !== undefined && { reason: change.reason })
        })),
        minutes: metrics.recentMinutes(c.id).map((m) => ({
          minute: new Date(m.minute).toISOString(),
          requests: m.requests,
          errors: m.errors,
          mean_ms: m.meanMs
        })),
        tools: mine(snapshot.index.tools, TOOL_FIELDS),
        prompts: mine(snapshot.index.prompts, PROMPT_FIELDS),
        resources: mine(snapshot.index.resources, RESOURCE_FIELDS),
        templates: mine(snapshot.index.templates, TEMPLATE_FIELDS)
      })
    })

  const auditTrail = (request: HttpServerRequest.HttpServerRequest) =>
    Effect.gen(function*() {
      const caller = yield* gate.caller(request)
      if (caller._tag === "Left") return caller.left
      if (!grants.isAdmin(caller.right)) return ADMINS_ONLY("/api/audit")
      const query = new URL(request.url, "http://localhost").searchParams
      const text = (name: string) => {
        const value = query.get(name)?.trim()
        return value === undefined || value === "" ? undefined : value
      }
      const decision = text("decision")
      if (decision !== undefined && decision !== "allowed" && decision !== "denied") {
        return json({ error: "bad_request: decision is \"allowed\" or \"denied\"" }, 400)
      }
      const limit = text("limit")
      return json({
        enabled: audit.enabled,
        lines: audit.recent({
          login: text("login"),
          connector: text("connector"),
          decision,
          limit: limit === undefined || !/^\d+$/.test(limit) ? undefined : Number(limit)
        })
      })
    })

  const openSessions = (request: HttpServerRequest.HttpServerRequest) =>
    Effect.gen(function*() {
      const caller = yield* gate.caller(request)
      if (caller._tag === "Left") return caller.left
      if (!grants.isAdmin(caller.right)) return ADMINS_ONLY("/api/sessions")
      const now = Date.now()
      return json({
        sessions: sources.sessions().map((s) => ({
          id_prefix: s.idPrefix,
          login: s.login,
          via: s.via,
          protocol_version: s.protocolVersion ?? null,
          client: s.client ?? null,
          opened_at: new Date(s.openedAt).toISOString(),
          age_s: Math.round((now - s.openedAt) / 1000),
          idle_s: Math.round((now - s.lastSeen) / 1000)
        }))
      })
    })

  return { detail, auditTrail, openSessions } as const
}
