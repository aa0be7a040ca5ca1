/**
 * OpenTelemetry export (`telemetry: otlp({ … })`): spans and metrics reach a real OTLP/HTTP
 * receiver (test/helpers/otlpReceiver.ts, decoding with the official protobuf definitions), the
 * caller's `traceparent` is continued, and the trace context goes on to the upstreams: an MCP
 * upstream over streamable HTTP (header and `_meta`, SEP-414) and an HTTP connector's API.
 * Without `telemetry` nothing is exported and no trace context is added upstream.
 */
import { randomBytes } from "node:crypto"
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { decodeConfig, type RunningGateway } from "../src/Aperture.js"
import { checkReport } from "../src/cli/checkReport.js"
import { defineConfig, grant, http, mcp, otlp } from "../src/config/dsl.js"
import { env } from "../src/config/secret.js"
import { startFront, type Front } from "./fixtures/front.js"
import { type HttpUpstream, startHttpUpstream } from "./fixtures/httpUpstream.js"
import { startV1Upstream, type V1Upstream } from "./fixtures/v1Upstream.js"
import { connectV2, startGateway, untilReady } from "./helpers/gateway.js"
import { type OtlpReceiver, startOtlpReceiver } from "./helpers/otlpReceiver.js"

const SECRET_ARGUMENT = `arg-${randomBytes(8).toString("hex")}`
const EXPORT_TOKEN = `otlp-${randomBytes(8).toString("hex")}`
const PROXY_CREDENTIAL = `proxy-${randomBytes(8).toString("hex")}`
const SERVER = 2
const CLIENT = 3

const newTraceparent = () => {
  const traceId = randomBytes(16).toString("hex")
  const spanId = randomBytes(8).toString("hex")
  return { traceId, spanId, header: `00-${traceId}-${spanId}-01` }
}

/** What the MCP upstream was sent: each tools/call's trace headers and `_meta`. */
interface SeenCall {
  readonly traceparent: string | undefined
  readonly meta: Record<string, unknown> | undefined
}

/** The v1 upstream behind a front that notes each tools/call it passes on. */
const recordingUpstream = async (upstream: V1Upstream, seen: Array<SeenCall>): Promise<Front> =>
  startFront((path) => `${new URL(upstream.url).origin}${path}`, (req, body) => {
    if (body.includes("\"tools/call\"")) {
      const message = JSON.parse(body) as { params?: { _meta?: Record<string, unknown> } }
      seen.push({ traceparent: req.headers["traceparent"] as string | undefined, meta: message.params?._meta })
    }
    return false
  })

const connectWith = async (url: string, headers: Record<string, string>) => {
  const client = new V1Client({ name: "telemetry-test", version: "1.0.0" })
  await client.connect(new V1Transport(new URL(url), { requestInit: { headers } }))
  return client
}

const configFor = (front: Front, api: HttpUpstream) => ({
  connectors: {
    up: mcp({ url: front.url }),
    api: http({ url: `${api.origin}/base`, allowPrivate: true })
  },
  grants: [grant({ src: ["local"], connectors: ["up/**", "api/proxy/**"] })]
})

describe("with telemetry: otlp({ endpoint })", () => {
  let receiver: OtlpReceiver
  let upstream: V1Upstream
  let front: Front
  let api: HttpUpstream
  let gateway: RunningGateway | undefined
  const seen: Array<SeenCall> = []
  const caller = newTraceparent()
  const proxyCaller = newTraceparent()
  const modernCaller = newTraceparent()

  beforeAll(async () => {
    receiver = await startOtlpReceiver()
    upstream = await startV1Upstream("traced")
    front = await recordingUpstream(upstream, seen)
    api = await startHttpUpstream()
    gateway = await startGateway({
      ...configFor(front, api),
      telemetry: otlp({ endpoint: receiver.url, headers: { "x-export-token": EXPORT_TOKEN }, serviceName: "aperture-under-test" })
    })
    await untilReady(gateway, 2)
    const client = await connectWith(gateway.url, { traceparent: caller.header })
    try {
      await client.listTools()
      const result = await client.callTool({ name: "up_hello", arguments: { who: SECRET_ARGUMENT } })
      expect(JSON.stringify(result)).toContain(`hello ${SECRET_ARGUMENT}`)
      await expect(client.callTool({ name: "up_nope", arguments: {} })).rejects.toThrow(/not found/)
    } finally {
      await client.close()
    }
    // A 2026-07-28 client (the SDK's stateless handler, not the 2025 direct path).
    const modern = await connectV2(gateway.url, { traceparent: modernCaller.header })
    try {
      await modern.listTools()
      await modern.callTool({ name: "up_hello", arguments: { who: "modern" } })
    } finally {
      await modern.close()
    }
    const proxied = await fetch(`${gateway.origin}/v1/connectors/api/things`, {
      headers: { traceparent: proxyCaller.header, "proxy-authorization": `Basic ${PROXY_CREDENTIAL}`, "x-session-token": PROXY_CREDENTIAL }
    })
    expect(proxied.status).toBe(200)
    await proxied.arrayBuffer()
    // Closing flushes the batched spans and the last metrics.
    await gateway.close()
    gateway = undefined
  }, 60_000)

  afterAll(async () => {
    await gateway?.close()
    await Promise.all([front?.close(), upstream?.close(), api?.close(), receiver?.close()])
  })

  const requestSpan = () => {
    const span = receiver.spans.find((s) => s.kind === SERVER && s.attributes["mcp.method.name"] === "tools/call")
    expect(span, `spans received: ${receiver.spans.map((s) => s.name).join(", ")}`).toBeDefined()
    return span!
  }

  it("exports one server span per MCP request, a child of the caller's traceparent, with what it did and not what it carried", () => {
    const span = requestSpan()
    expect(span.traceId).toBe(caller.traceId)
    expect(span.parentSpanId).toBe(caller.spanId)
    expect(span.name).toBe("tools/call up_hello")
    expect(span.attributes).toMatchObject({
      "mcp.method.name": "tools/call",
      "gen_ai.tool.name": "up_hello",
      "aperture.connector": "up",
      "user.id": "local",
      "aperture.outcome": "ok"
    })
    expect(span.resource["service.name"]).toBe("aperture-under-test")
    // No span anywhere carries the call's arguments or its result.
    expect(JSON.stringify(receiver.spans)).not.toContain(SECRET_ARGUMENT)
  })

  it("exports a server span for a list too, in the caller's trace, whichever era asked", () => {
    for (const trace of [caller, modernCaller]) {
      const span = receiver.spans.find((s) => s.kind === SERVER && s.traceId === trace.traceId && s.attributes["mcp.method.name"] === "tools/list")
      expect(span, `spans received: ${receiver.spans.map((s) => s.name).join(", ")}`).toMatchObject({ parentSpanId: trace.spanId })
      expect(span!.attributes).toMatchObject({ "user.id": "local", "aperture.outcome": "ok" })
    }
  })

  it("records no credential or session handle from request headers in any span", () => {
    const exported = JSON.stringify(receiver.spans)
    expect(exported).toContain("http.request.header.traceparent")
    expect(exported).not.toContain(PROXY_CREDENTIAL)
    for (const span of receiver.spans) {
      const session = span.attributes["http.request.header.mcp-session-id"]
      if (session !== undefined) expect(session).toBe("<redacted>")
    }
  })

  it("continues a 2026-era caller's traceparent too", () => {
    const span = receiver.spans.find((s) => s.kind === SERVER && s.traceId === modernCaller.traceId && s.attributes["mcp.method.name"] === "tools/call")
    expect(span).toMatchObject({ parentSpanId: modernCaller.spanId })
    expect(span!.attributes).toMatchObject({ "aperture.connector": "up", "aperture.outcome": "ok" })
  })

  it("marks a request the gateway refused (unknown or not granted) as rejected, with no connector and no upstream span", () => {
    const span = receiver.spans.find((s) => s.attributes["gen_ai.tool.name"] === "up_nope")
    expect(span).toMatchObject({ kind: SERVER, traceId: caller.traceId })
    expect(span!.attributes).toMatchObject({ "aperture.outcome": "rejected", "rpc.jsonrpc.error_code": -32602 })
    expect(span!.attributes["aperture.connector"]).toBeUndefined()
    expect(receiver.spans.filter((s) => s.parentSpanId === span!.spanId)).toHaveLength(0)
  })

  it("exports a client span per upstream exchange and sends its context to the MCP upstream (header and _meta)", () => {
    const request = requestSpan()
    const exchange = receiver.spans.find((s) => s.kind === CLIENT && s.parentSpanId === request.spanId)
    expect(exchange).toBeDefined()
    expect(exchange!.attributes).toMatchObject({ "mcp.method.name": "tools/call", "gen_ai.tool.name": "hello", "aperture.connector": "up" })
    const sent = `00-${caller.traceId}-${exchange!.spanId}-01`
    const call = seen.find((c) => c.traceparent?.includes(caller.traceId))
    expect(call?.traceparent).toBe(sent)
    expect(call?.meta?.["traceparent"]).toBe(sent)
  })

  it("continues the caller's trace to an HTTP connector's upstream with the gateway's span as parent", () => {
    const received = api.seen.find((r) => r.url.startsWith("/base/things"))
    expect(received).toBeDefined()
    const traceparent = received!.headers["traceparent"] as string
    const [, traceId, parentId] = traceparent.split("-")
    expect(traceId).toBe(proxyCaller.traceId)
    expect(parentId).not.toBe(proxyCaller.spanId)
    // That parent is the proxy's client span, exported in the same trace.
    const proxySpan = receiver.spans.find((s) => s.spanId === parentId)
    expect(proxySpan).toMatchObject({ kind: CLIENT, traceId: proxyCaller.traceId })
    expect(proxySpan!.attributes).toMatchObject({ "http.request.method": "GET", "aperture.connector": "api" })
    // The platform's http.server span continued the caller's context (it is the proxy span's parent).
    const serverSpan = receiver.spans.find((s) => s.spanId === proxySpan!.parentSpanId)
    expect(serverSpan).toMatchObject({ kind: SERVER, traceId: proxyCaller.traceId, parentSpanId: proxyCaller.spanId })
  })

  it("exports request metrics per method and connector, and sends the configured headers with every export", () => {
    const calls = receiver.metrics.filter((p) =>
      p.metric === "aperture.requests" && p.attributes["mcp.method.name"] === "tools/call" && p.attributes["aperture.connector"] === "up"
    )
    // The 2025-era and the 2026-era call, both answered.
    // (Cumulative counts: every export repeats the total so far.)
    expect(Math.max(...calls.filter((p) => p.attributes["aperture.outcome"] === "ok").map((p) => p.value))).toBe(2)
    expect(receiver.metrics.some((p) => p.metric === "aperture.request.duration" && p.attributes["aperture.connector"] === "api")).toBe(true)
    expect(receiver.requests.length).toBeGreaterThan(0)
    expect(receiver.requests.every((r) => r.headers["x-export-token"] === EXPORT_TOKEN)).toBe(true)
    expect(receiver.requests.every((r) => r.headers["content-type"] === "application/x-protobuf")).toBe(true)
  })
})

describe("without telemetry", () => {
  it("exports nothing and adds no trace context upstream", async () => {
    const receiver = await startOtlpReceiver()
    const upstream = await startV1Upstream("untraced")
    const seen: Array<SeenCall> = []
    const front = await recordingUpstream(upstream, seen)
    const api = await startHttpUpstream()
    const saved = { ...process.env }
    // Even with the standard variables' neighbours set, no endpoint variable: nothing is on.
    process.env["OTEL_SERVICE_NAME"] = "ignored"
    const gateway = await startGateway(configFor(front, api))
    try {
      await untilReady(gateway, 2)
      const caller = newTraceparent()
      const client = await connectWith(gateway.url, { traceparent: caller.header })
      await client.callTool({ name: "up_hello", arguments: { who: "x" } })
      // A caller's own `_meta` trace context passes in `_meta`; as a header only in the W3C form.
      const own = newTraceparent()
      await client.callTool({ name: "up_hello", arguments: { who: "y" }, _meta: { traceparent: own.header, tracestate: "k=v" } })
      await client.callTool({ name: "up_hello", arguments: { who: "z" }, _meta: { traceparent: "not-a-traceparent" } })
      await client.close()
      expect(seen).toHaveLength(3)
      expect(seen[0]!.traceparent).toBeUndefined()
      expect(seen[0]!.meta?.["traceparent"]).toBeUndefined()
      expect(seen[1]!.traceparent).toBe(own.header)
      expect(seen[1]!.meta?.["traceparent"]).toBe(own.header)
      expect(seen[2]!.traceparent).toBeUndefined()
      expect(seen[2]!.meta?.["traceparent"]).toBe("not-a-traceparent")
      // The proxy passes the caller's own header through untouched, and adds none of its own.
      await (await fetch(`${gateway.origin}/v1/connectors/api/a`, { headers: { traceparent: caller.header } })).arrayBuffer()
      await (await fetch(`${gateway.origin}/v1/connectors/api/b`)).arrayBuffer()
      expect(api.seen.find((r) => r.url.startsWith("/base/a"))!.headers["traceparent"]).toBe(caller.header)
      expect(api.seen.find((r) => r.url.startsWith("/base/b"))!.headers["traceparent"]).toBeUndefined()
    } finally {
      await gateway.close()
      process.env = saved
      await Promise.all([front.close(), upstream.close(), api.close()])
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(receiver.requests).toHaveLength(0)
    await receiver.close()
  }, 60_000)
})

describe("telemetry config", () => {
  const decode = (input: unknown) => Effect.runPromise(Effect.either(decodeConfig(input)))

  it("decodes otlp({ … }) with secret headers that aperture check never shows", async () => {
    process.env["APERTURE_TEST_OTLP_TOKEN"] = EXPORT_TOKEN
    try {
      const decoded = await decode(defineConfig({
        telemetry: otlp({ endpoint: "https://collector:4318/", headers: { authorization: env("APERTURE_TEST_OTLP_TOKEN") }, serviceName: "gw" })
      }))
      expect(decoded._tag).toBe("Right")
      if (decoded._tag !== "Right") return
      const telemetry = decoded.right.telemetry!
      expect(telemetry.tracesUrl?.href).toBe("https://collector:4318/v1/traces")
      expect(telemetry.metricsUrl?.href).toBe("https://collector:4318/v1/metrics")
      expect(Redacted.value(telemetry.headers["authorization"]!)).toBe(EXPORT_TOKEN)
      const report = checkReport(decoded.right)
      expect(report).toContain("telemetry: otlp, service gw: traces https://collector:4318/v1/traces, metrics https://collector:4318/v1/metrics")
      expect(report).toContain("authorization (values hidden)")
      expect(report).not.toContain(EXPORT_TOKEN)
      expect(String(telemetry.headers["authorization"])).not.toContain(EXPORT_TOKEN)
    } finally {
      delete process.env["APERTURE_TEST_OTLP_TOKEN"]
    }
  })

  it("refuses unknown fields and bad endpoints with their paths", async () => {
    const decoded = await decode({
      telemetry: { ...otlp({ endpoint: "ftp://collector" }), sampler: "always" }
    })
    expect(decoded._tag).toBe("Left")
    if (decoded._tag !== "Left") return
    const issues = decoded.left.issues.map((i) => `${i.path}: ${i.message}`)
    expect(issues.some((i) => i.startsWith("telemetry.sampler: unexpected field"))).toBe(true)
    expect(issues.some((i) => i.startsWith("telemetry.endpoint: unsupported scheme"))).toBe(true)
    // Export headers are credentials: plain http only to this machine, as for any credential.
    const plain = await decode({ telemetry: otlp({ endpoint: "http://collector:4318", headers: { authorization: "Bearer x" } }) })
    expect(plain._tag === "Left" && plain.left.issues.map((i) => `${i.path}: ${i.message}`)).toContain(
      "telemetry.endpoint: export headers are credentials: plain http is allowed only to localhost; use https"
    )
    const local = await decode({ telemetry: otlp({ endpoint: "http://127.0.0.1:4318", headers: { authorization: "Bearer x" } }) })
    expect(local._tag).toBe("Right")
    const notOtlp = await decode({ telemetry: { endpoint: "http://x" } })
    expect(notOtlp._tag === "Left" && notOtlp.left.issues[0]).toMatchObject({ path: "telemetry", message: "expected telemetry made with otlp({ endpoint })" })
  })

  it("reads the OTEL_EXPORTER_OTLP_* variables when the config has no telemetry, and the config wins over them", async () => {
    const saved = { ...process.env }
    try {
      process.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "https://from-env:4318"
      process.env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = "https://traces-only:4318/custom/path"
      process.env["OTEL_EXPORTER_OTLP_HEADERS"] = `api-key=${encodeURIComponent(EXPORT_TOKEN + " x")},other=1`
      process.env["OTEL_SERVICE_NAME"] = "from-env"
      const fromEnv = await decode({})
      expect(fromEnv._tag).toBe("Right")
      if (fromEnv._tag !== "Right") return
      expect(fromEnv.right.telemetry).toMatchObject({ from: "environment", serviceName: "from-env" })
      expect(fromEnv.right.telemetry!.tracesUrl!.href).toBe("https://traces-only:4318/custom/path")
      expect(fromEnv.right.telemetry!.metricsUrl!.href).toBe("https://from-env:4318/v1/metrics")
      expect(Redacted.value(fromEnv.right.telemetry!.headers["api-key"]!)).toBe(`${EXPORT_TOKEN} x`)
      expect(checkReport(fromEnv.right)).not.toContain(EXPORT_TOKEN)

      const fromConfig = await decode({ telemetry: otlp({ endpoint: "http://from-config:4318" }) })
      expect(fromConfig._tag === "Right" && fromConfig.right.telemetry).toMatchObject({ from: "config", serviceName: "from-env", headers: {} })
      expect(fromConfig._tag === "Right" && fromConfig.right.telemetry!.tracesUrl!.href).toBe("http://from-config:4318/v1/traces")

      process.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://from-env:4318"
      const plainFromEnv = await decode({})
      expect(plainFromEnv._tag === "Left" && plainFromEnv.left.issues.map((i) => i.path)).toEqual(["OTEL_EXPORTER_OTLP_ENDPOINT"])

      process.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "not a url"
      const broken = await decode({})
      expect(broken._tag === "Left" && broken.left.issues.map((i) => i.path)).toContain("OTEL_EXPORTER_OTLP_ENDPOINT")

      process.env["OTEL_SDK_DISABLED"] = "true"
      const disabled = await decode({})
      expect(disabled._tag === "Right" && disabled.right.telemetry).toBeUndefined()
    } finally {
      process.env = saved
    }
  })
})
