/**
 * `GET /healthz`: 200 while serving. `?ready`: 503 until every connector has had its first
 * connection attempt (whatever its outcome; for an HTTP connector, its credential set up), for
 * orchestrators that wait before routing traffic. With `cluster`, a `cluster` field says whether
 * Redis is up; while it is down the status is `degraded`, still 200, `?ready` included: every
 * replica shares the one Redis, so a readiness probe failing on it would take every replica out
 * of rotation at once, while 2026-era traffic can still be served. No identity needed, but the same `Host`/`Origin`
 * check as every endpoint (bound to a non-loopback address without `allowedHosts`, any `Host`
 * passes, so orchestrators' probes do).
 * @module
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Catalog } from "../catalog/Catalog.js"
import type { ClusterRedis } from "../cluster/ClusterRedis.js"
import type { AdminGate } from "./caller.js"

export const health = (catalog: Catalog, cluster: ClusterRedis, gate: AdminGate) => (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function*() {
    const refused = gate.hostRefusal(request)
    if (refused !== undefined) return refused
    const wantsReady = new URL(request.url, "http://localhost").searchParams.has("ready")
    const snapshot = yield* catalog.get
    // HTTP connectors count as attempted once their credential is set up (proxy/HttpProxy.ts).
    const pending = snapshot.states.filter((s) => !s.attempted).map((s) => s.connector.id)
    const counts: Record<string, number> = {}
    for (const s of snapshot.states) counts[s.status] = (counts[s.status] ?? 0) + 1
    const clusterHealth = Option.getOrUndefined(cluster.health())
    const withCluster = clusterHealth === undefined ? {} : { cluster: clusterHealth }
    if (wantsReady && pending.length > 0) {
      return HttpServerResponse.unsafeJson({ status: "starting", pending, connectors: counts, ...withCluster }, { status: 503 })
    }
    const degraded = clusterHealth?.redis === "down"
    return HttpServerResponse.unsafeJson(
      { status: degraded ? "degraded" : "ok", connectors: counts, ...withCluster },
      { status: 200 }
    )
  })
