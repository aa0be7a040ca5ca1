/**
 * The admin endpoints: `/healthz` (and `?ready` waiting for every connector's first attempt),
 * `/api/connectors` with HTTP connectors, and `/metrics` in Prometheus text after real MCP and
 * proxy traffic.
 */
import { createServer, type Server, type Socket } from "node:net"
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { grant, http, mcp } from "../src/index.js"
import { type HttpUpstream, startHttpUpstream } from "./fixtures/httpUpstream.js"
import { startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"
import { connectorsOf, connectV1, connectV2, eventually, startGateway } from "./helpers/gateway.js"
import { freePort } from "./helpers/processes.js"

let fx: V2Upstream
let api: HttpUpstream
let gateway: RunningGateway

beforeAll(async () => {
  fx = await startV2Upstream({ name: "fx" })
  api = await startHttpUpstream()
  gateway = await startGateway({
    connectors: {
      fx: mcp({ url: fx.url }),
      api: http({ url: `${api.origin}/api`, allowPrivate: true, description: "REST" }),
      dead: http({ url: `http://127.0.0.1:${await freePort()}`, allowPrivate: true })
    },
    grants: [grant({ src: ["local"], connectors: ["**"] })]
  })
  await eventually(async () => (await connectorsOf(gateway)).connectors.find((c) => c.id === "fx")?.status === "ready", 30_000)
})

afterAll(async () => {
  await gateway?.close()
  await fx?.close()
  await api?.close()
})

const metricsText = async () => {
  const response = await fetch(`${gateway.origin}/metrics`)
  expect(response.status).toBe(200)
  expect(response.headers.get("content-type")).toContain("text/plain; version=0.0.4")
  return response.text()
}

/** The value of one sample line, e.g. `aperture_requests_total{connector="fx",method="tools/call"}`. */
const sample = (text: string, series: string): number | undefined => {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe("/healthz", () => {
  it("answers 200 while serving, and ?ready 503 until every connector has had its first attempt", async () => {
    // An upstream that accepts connections and never answers keeps the first attempt pending.
    const sockets = new Set<Socket>()
    const silent: Server = createServer((socket) => void sockets.add(socket))
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve))
    const port = (silent.address() as { port: number }).port
    const slow = await startGateway({
      connectors: { silent: mcp({ url: `http://127.0.0.1:${port}/mcp`, timeout: 3000 }), api: http({ url: "https://api.example.com" }) },
      grants: []
    })
    try {
      expect((await fetch(`${slow.origin}/healthz`)).status).toBe(200)
      const starting = await fetch(`${slow.origin}/healthz?ready`)
      expect(starting.status).toBe(503)
      expect(await starting.json()).toMatchObject({ status: "starting", pending: ["silent"] })
      await eventually(async () => (await fetch(`${slow.origin}/healthz?ready`)).status === 200, 30_000, "ready")
    } finally {
      await slow.close()
      for (const socket of sockets) socket.destroy()
      silent.close()
    }
  })
})

describe("/api/connectors", () => {
  it("lists HTTP connectors with their status, which follows their last request", async () => {
    const before = (await connectorsOf(gateway)).connectors
    expect(before.find((c) => c.id === "api")).toMatchObject({ id: "api", protocol: "http", status: "ready", tools: [] })
    expect(before.find((c) => c.id === "dead")?.status).toBe("ready")
    expect((await fetch(`${gateway.origin}/v1/connectors/dead/x`)).status).toBe(502)
    const dead = (await connectorsOf(gateway)).connectors.find((c) => c.id === "dead")
    expect(dead).toMatchObject({ status: "down" })
    expect(dead?.error).toContain("refused the connection")
  })

  it("refuses a foreign Host", async () => {
    const { request } = await import("node:http")
    const status = await new Promise<number>((resolve, reject) => {
      request(`${gateway.origin}/api/connectors`, { headers: { host: "evil.example" } }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      }).on("error", reject).end()
    })
    expect(status).toBe(403)
  })
})

describe("/metrics", () => {
  it("counts requests, errors and latency per connector and method, upstream statuses, sessions and connector status", async () => {
    const v1 = await connectV1(gateway.url)
    const v2 = await connectV2(gateway.url)
    onTestFinished(async () => {
      await v1.client.close()
      await v2.close()
    })
    await v2.callTool({ name: "fx_echo", arguments: { message: "one" } })
    await v2.callTool({ name: "fx_echo", arguments: { message: "two" } })
    await v1.client.callTool({ name: "fx_fails", arguments: {} })
    expect((await fetch(`${gateway.origin}/v1/connectors/api/things`)).status).toBe(200)
    expect((await fetch(`${gateway.origin}/v1/connectors/api/things`, { method: "POST", body: "{}" })).status).toBe(200)
    expect((await fetch(`${gateway.origin}/v1/connectors/dead/x`)).status).toBe(502)

    const text = await metricsText()
    expect(text).toContain("# TYPE aperture_requests_total counter")
    expect(text).toContain("# TYPE aperture_request_duration_seconds histogram")
    expect(sample(text, "aperture_requests_total{connector=\"fx\",method=\"tools/call\"}")).toBeGreaterThanOrEqual(3)
    expect(sample(text, "aperture_requests_total{connector=\"api\",method=\"GET\"}")).toBe(1)
    expect(sample(text, "aperture_requests_total{connector=\"api\",method=\"POST\"}")).toBe(1)
    expect(sample(text, "aperture_request_errors_total{connector=\"api\",method=\"GET\"}")).toBe(0)
    expect(sample(text, "aperture_request_errors_total{connector=\"dead\",method=\"GET\"}")).toBeGreaterThanOrEqual(1)
    expect(sample(text, "aperture_request_duration_seconds_count{connector=\"api\",method=\"GET\"}")).toBe(1)
    expect(sample(text, "aperture_request_duration_seconds_bucket{connector=\"api\",method=\"GET\",le=\"+Inf\"}")).toBe(1)
    expect(sample(text, "aperture_upstream_responses_total{connector=\"api\",code=\"200\"}")).toBe(2)
    expect(sample(text, "aperture_active_sessions")).toBeGreaterThanOrEqual(1)
    expect(sample(text, "aperture_connector_status{connector=\"fx\",status=\"ready\"}")).toBe(1)
    expect(sample(text, "aperture_connector_status{connector=\"dead\",status=\"down\"}")).toBe(1)
    expect(sample(text, "aperture_connector_status{connector=\"dead\",status=\"ready\"}")).toBe(0)
    expect(sample(text, "aperture_in_flight_requests{endpoint=\"proxy\"}")).toBe(0)
    // fx speaks the 2026 era, stateless: its callers need no sessions of their own.
    expect(sample(text, "aperture_caller_sessions{connector=\"fx\"}")).toBe(0)
    expect(text).toContain("# TYPE aperture_token_refreshes_total counter")
  })
})
