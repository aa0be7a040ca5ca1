/**
 * `GET /metrics`: Prometheus text. Counters and histograms come from the {@link Metrics}
 * registry; gauges (sessions, calls in flight, connector status, caller sessions) are read from
 * their owners at scrape time. It names every connector with its status and counters, so only
 * admins and callers a `readMetrics` grant names may read it; others get 403.
 * @module
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import type { Catalog } from "../catalog/Catalog.js"
import type { GrantPolicy } from "../grants/GrantPolicy.js"
import type { Gauge, Metrics } from "../metrics/Metrics.js"
import type { Upstreams } from "../upstream/Upstreams.js"
import type { AdminGate } from "./caller.js"
import type { ApiStatus } from "./connectorsApi.js"

const FORBIDDEN = "forbidden: /metrics needs a grant with role \"admin\" or readMetrics"

const STATUSES: ReadonlyArray<ApiStatus> = ["ready", "connecting", "needs_auth", "misconfigured", "down"]

/** What `/metrics` reads: the registry, and the owners of the gauges read at scrape time. */
export interface MetricsSources {
  readonly metrics: Metrics
  readonly catalog: Catalog
  readonly upstreams: Upstreams
  /** The endpoints' counts (their services, passed by the routes: admin imports neither side). */
  readonly proxy: { readonly inFlight: () => number }
  readonly endpoint: { readonly sessions: () => number; readonly inFlight: () => number }
}

export const metricsRoute = (sources: MetricsSources, grants: GrantPolicy, gate: AdminGate) => (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function*() {
    const caller = yield* gate.caller(request)
    if (caller._tag === "Left") return caller.left
    if (!grants.mayReadMetrics(caller.right)) {
      return HttpServerResponse.unsafeJson({ error: FORBIDDEN }, { status: 403 })
    }
    const { metrics, endpoint, proxy, upstreams } = sources
    const snapshot = sources.catalog.current()
    const gauges: ReadonlyArray<Gauge> = [
      {
        name: "aperture_active_sessions",
        help: "Open 2025-era MCP sessions at /v1/mcp.",
        samples: [{ value: endpoint.sessions() }]
      },
      {
        name: "aperture_in_flight_requests",
        help: "Requests being served: MCP calls at /v1/mcp, and proxied HTTP requests (until their body is sent).",
        samples: [
          { labels: { endpoint: "mcp" }, value: endpoint.inFlight() },
          { labels: { endpoint: "proxy" }, value: proxy.inFlight() }
        ]
      },
      {
        name: "aperture_connector_status",
        help: "1 for each connector's current status, 0 for the others.",
        samples: snapshot.states.flatMap((s) =>
          STATUSES.map((status) => ({ labels: { connector: s.connector.id, status }, value: s.status === status ? 1 : 0 }))
        )
      },
      {
        name: "aperture_connector_tools",
        help: "Tools each MCP connector currently offers.",
        samples: snapshot.states.filter((s) => s.connector.kind !== "http").map((s) => ({
          labels: { connector: s.connector.id },
          value: s.lists.tools.length
        }))
      },
      {
        name: "aperture_caller_sessions",
        help: "Upstream sessions of callers' own (isolation: \"caller\"), open or opening, per connector.",
        samples: [...upstreams.callerSessionCounts()].map(([connector, value]) => ({ labels: { connector }, value }))
      }
    ]
    return HttpServerResponse.text(metrics.render(gauges), { contentType: "text/plain; version=0.0.4; charset=utf-8" })
  })
