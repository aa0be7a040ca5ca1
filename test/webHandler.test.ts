/**
 * Aperture behind a web handler: `Aperture.layer(config)` on the router
 * `HttpLayerRouter.toWebHandler` provides, driven as `(Request) => Promise<Response>` by real
 * v1 and v2 SDK clients whose `fetch` is the handler. Nothing here is a Node `IncomingMessage`,
 * so every off-Node branch of the endpoint (`nodeBridge.ts`) serves these calls.
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js"
import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { Effect, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Aperture } from "../src/Aperture.js"
import { McpEndpoint } from "../src/endpoint/McpEndpoint.js"
import { apiKeys, grant, http, mcp } from "../src/index.js"
import { type HttpUpstream, startHttpUpstream } from "./fixtures/httpUpstream.js"
import { startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"
import { eventually } from "./helpers/gateway.js"

const KEY = "web-handler-key-0123456789abcdef"
/** Where the host would serve: only the Host header a real server passes on matters. */
const ORIGIN = "http://127.0.0.1:8080"

interface Seen {
  readonly method: string
  readonly status: number
  readonly contentType: string | null
  readonly protocolVersion: string | null
}

let fx: V2Upstream
let api: HttpUpstream
let web: ReturnType<typeof makeHandler>
/** Every exchange the handler answered, in order. */
const seen: Array<Seen> = []

const makeHandler = (config: Parameters<typeof Aperture.layer>[0]) =>
  HttpLayerRouter.toWebHandler(Aperture.layer(config), { disableLogger: true })

/**
 * A `fetch` that hands the request to the web handler, as a host's server would: with the Host
 * header it received (a web `Request` built by a client has none) and, unless `key` is `null`,
 * the caller's API key.
 */
const viaHandler = (key: string | null = KEY) => async (input: string | URL | Request, init?: RequestInit) => {
  const request = new Request(input, init)
  const headers = new Headers(request.headers)
  headers.set("host", new URL(request.url).host)
  if (key !== null) headers.set("x-api-key", key)
  const response = await web.handler(new Request(request, { headers }))
  seen.push({
    method: request.method,
    status: response.status,
    contentType: response.headers.get("content-type"),
    protocolVersion: headers.get("mcp-protocol-version")
  })
  return response
}

beforeAll(async () => {
  fx = await startV2Upstream({ name: "fx" })
  api = await startHttpUpstream()
  web = makeHandler({
    connectors: { fx: mcp({ url: fx.url }), api: http({ url: `${api.origin}/api`, allowPrivate: true }) },
    identity: [apiKeys({ keys: { [KEY]: { login: "web" } } })],
    grants: [grant({ src: ["web"], connectors: ["**"], role: "admin" })]
  })
  const fetchHandler = viaHandler()
  await eventually(async () => {
    const listing = await (await fetchHandler(`${ORIGIN}/api/connectors`)).json() as { connectors: Array<{ id: string; status: string }> }
    return listing.connectors.find((c) => c.id === "fx")?.status === "ready"
  }, 30_000, "fx ready")
})

afterAll(async () => {
  await web?.dispose()
  await fx?.close()
  await api?.close()
})

describe("Aperture.layer behind HttpLayerRouter.toWebHandler", () => {
  it("serves a 2025-era session to a v1 SDK client: initialize, tools/list, tools/call with progress, the GET stream, DELETE", async () => {
    const client = new V1Client({ name: "web-v1", version: "1.0.0" })
    const transport = new V1Transport(new URL(`${ORIGIN}/v1/mcp`), { fetch: viaHandler() })
    const from = seen.length
    await client.connect(transport)
    expect(transport.sessionId).toBeDefined()
    let toolsChanged = 0
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      toolsChanged++
    })

    const tools = (await client.listTools()).tools.map((t) => t.name)
    expect(tools).toContain("fx_echo")
    expect(tools).toContain("aperture_list_connectors")

    const echoed = await client.callTool({ name: "fx_echo", arguments: { message: "off node" } })
    expect(echoed.content).toEqual([{ type: "text", text: "echo: off node" }])

    const progress: Array<number> = []
    const slow = await client.callTool({ name: "fx_slow", arguments: { steps: 3, ms: 20 } }, undefined, {
      onprogress: (p) => progress.push(p.progress)
    })
    expect(slow.content).toEqual([{ type: "text", text: "done after 3" }])
    expect(progress).toEqual([1, 2, 3])

    // The standalone GET stream is open and carries the session's notifications.
    const get = await eventually(() => seen.slice(from).find((s) => s.method === "GET"), 10_000, "GET stream")
    expect(get).toMatchObject({ status: 200, contentType: "text/event-stream" })
    fx.addTool("late_tool")
    await eventually(() => toolsChanged > 0, 20_000, "tools/list_changed on the GET stream")
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("fx_late_tool")

    const sessionId = transport.sessionId!
    await transport.terminateSession()
    expect(seen.slice(from).find((s) => s.method === "DELETE")?.status).toBe(200)
    await client.close()

    // The session is gone: its id is not found any more.
    const after = await viaHandler()(`${ORIGIN}/v1/mcp`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": sessionId,
        "mcp-protocol-version": "2025-11-25"
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" })
    })
    expect(after.status).toBe(404)
    expect(await after.json()).toMatchObject({ error: { code: -32001, message: "Session not found" } })
  })

  it("serves a 2026-07-28 stateless call to a v2 SDK client, with progress", async () => {
    const client = new Client({ name: "web-v2", version: "1.0.0" }, { versionNegotiation: { mode: "auto" } })
    const from = seen.length
    await client.connect(new StreamableHTTPClientTransport(new URL(`${ORIGIN}/v1/mcp`), { fetch: viaHandler() }))
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toContain("fx_echo")
      const echoed = await client.callTool({ name: "fx_echo", arguments: { message: "stateless" } })
      expect(echoed.content).toEqual([{ type: "text", text: "echo: stateless" }])
      const progress: Array<number> = []
      const slow = await client.callTool({ name: "fx_slow", arguments: { steps: 2, ms: 20 } }, {
        onprogress: (p) => progress.push(p.progress)
      })
      expect(slow.content).toEqual([{ type: "text", text: "done after 2" }])
      expect(progress).toEqual([1, 2])
      const posts = seen.slice(from).filter((s) => s.method === "POST")
      expect(posts.length).toBeGreaterThan(0)
      expect(posts.every((s) => s.protocolVersion === "2026-07-28" && s.status === 200)).toBe(true)
    } finally {
      await client.close()
    }
  })

  it("answers the HTTP connector proxy with 501 and a JSON reason: it needs a Node server", async () => {
    const response = await viaHandler()(`${ORIGIN}/v1/connectors/api/anything`)
    expect(response.status).toBe(501)
    expect(await response.json()).toEqual({
      error: "unsupported_server",
      message: "the HTTP connector proxy runs on a Node.js HTTP server (@effect/platform-node)"
    })
    expect(api.seen).toEqual([])
  })

  it("serves /healthz and /api/connectors", async () => {
    const health = await viaHandler()(`${ORIGIN}/healthz`)
    expect(health.status).toBe(200)
    await health.body?.cancel()
    const ready = await viaHandler()(`${ORIGIN}/healthz?ready`)
    expect(ready.status).toBe(200)
    await ready.body?.cancel()
    const listing = await (await viaHandler()(`${ORIGIN}/api/connectors`)).json() as { connectors: Array<{ id: string }> }
    expect(listing.connectors.map((c) => c.id)).toEqual(["fx", "api"])
  })

  it("identifies no caller by address: without a credential, 401", async () => {
    const response = await viaHandler(null)(`${ORIGIN}/v1/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" })
    })
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ error: { code: -32001 } })
  })
})

describe("shutdown behind a web handler", () => {
  it("a drain whose calls never end stops at its timeout, though shutdown runs it uninterruptibly", async () => {
    // A host route that drains the endpoint as shutdown does (in an uninterruptible region).
    const drainProbe = HttpLayerRouter.add("GET", "/drain-probe", Effect.gen(function*() {
      const endpoint = yield* McpEndpoint
      const started = Date.now()
      yield* Effect.uninterruptible(endpoint.drain(200))
      return HttpServerResponse.text(String(Date.now() - started))
    }))
    const app = HttpLayerRouter.toWebHandler(
      Layer.mergeAll(drainProbe, Aperture.layer({
        identity: [apiKeys({ keys: { [KEY]: { login: "web" } } })],
        grants: [grant({ src: ["web"], connectors: ["**"] })]
      })),
      { disableLogger: true }
    )
    try {
      // Off Node a call counts until the host has read its response body; this one is not read.
      const unread = await app.handler(new Request(`${ORIGIN}/v1/mcp`, {
        method: "POST",
        headers: {
          host: "127.0.0.1:8080",
          "x-api-key": KEY,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-session-id": "no-such-session",
          "mcp-protocol-version": "2025-11-25"
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" })
      }))
      expect(unread.status).toBe(404)
      const drained = Number(await (await app.handler(new Request(`${ORIGIN}/drain-probe`))).text())
      expect(drained).toBeGreaterThanOrEqual(200)
      expect(drained).toBeLessThan(5_000)
      await unread.body!.cancel()
    } finally {
      await app.dispose()
    }
  })
})
