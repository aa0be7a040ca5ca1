import { describe, expect, it } from "vitest"
import { makeRegistry } from "./Metrics.js"

describe("metrics registry", () => {
  it("renders counters, a cumulative histogram and gauges in Prometheus text", () => {
    const registry = makeRegistry()
    registry.startRequest("github", "GET")(false)
    registry.startRequest("github", "GET")(true)
    registry.upstreamResponse("github", 200)
    registry.upstreamResponse("github", 200)
    registry.tokenRefreshed("analytics")
    const text = registry.render([{ name: "aperture_active_sessions", help: "Sessions.", samples: [{ value: 3 }] }])
    expect(text).toContain("# TYPE aperture_requests_total counter")
    expect(text).toContain("aperture_requests_total{connector=\"github\",method=\"GET\"} 2")
    expect(text).toContain("aperture_request_errors_total{connector=\"github\",method=\"GET\"} 1")
    expect(text).toContain("# TYPE aperture_request_duration_seconds histogram")
    expect(text).toContain("aperture_request_duration_seconds_bucket{connector=\"github\",method=\"GET\",le=\"+Inf\"} 2")
    expect(text).toContain("aperture_request_duration_seconds_count{connector=\"github\",method=\"GET\"} 2")
    expect(text).toContain("aperture_upstream_responses_total{connector=\"github\",code=\"200\"} 2")
    expect(text).toContain("aperture_token_refreshes_total{connector=\"analytics\"} 1")
    expect(text).toContain("# TYPE aperture_active_sessions gauge\naperture_active_sessions 3\n")
    // Buckets are cumulative and never decrease.
    const buckets = [...text.matchAll(/aperture_request_duration_seconds_bucket\{[^}]*\} (\d+)/g)].map((m) => Number(m[1]))
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b))
  })

  it("escapes label values", () => {
    const registry = makeRegistry()
    registry.startRequest("a", "x\"y\\z\nw")(false)
    expect(registry.render()).toContain("method=\"x\\\"y\\\\z\\nw\"")
  })
})
