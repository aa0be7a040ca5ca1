/**
 * `/v1/mcp` at the HTTP level: status codes where the spec puts them, and the per-call timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { grant, mcp } from "../src/index.js"
import { connectV1, connectV2, eventually, startGateway, statusOf } from "./helpers/gateway.js"
import { startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"

let fx: V2Upstream
let gateway: RunningGateway

beforeAll(async () => {
  fx = await startV2Upstream({ name: "fx" })
  gateway = await startGateway({
    connectors: {
      fx: mcp({ url: fx.url }),
      quick: mcp({ url: fx.url, timeout: 400 })
    },
    grants: [grant({ src: ["local"], connectors: ["**"] })]
  })
  await eventually(async () => (await statusOf(gateway, "fx")) === "ready" && (await statusOf(gateway, "quick")) === "ready", 30_000)
})

afterAll(async () => {
  await gateway?.close()
  await fx?.close()
})

const initialize = (protocolVersion = "2025-11-25") => ({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion, capabilities: {}, clientInfo: { name: "raw", version: "1" } }
})
const post = (body: string, headers: Record<string, string> = {}) =>
  fetch(gateway.url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body
  })

describe("HTTP status codes", () => {
  it("answers 405 with Allow for methods the endpoint does not serve", async () => {
    for (const method of ["PUT", "PATCH"]) {
      const response = await fetch(gateway.url, { method })
      expect(response.status).toBe(405)
      expect(response.headers.get("allow")).toBe("GET, POST, DELETE")
    }
  })

  it("answers 415 for a body that is not JSON, 406 when the client cannot take both response types", async () => {
    expect((await post(JSON.stringify(initialize()), { "content-type": "text/plain" })).status).toBe(415)
    expect((await post(JSON.stringify(initialize()), { accept: "application/json" })).status).toBe(406)
  })

  it("answers 400 with -32700 for a body that does not parse", async () => {
    const response = await post("{not json")
    expect(response.status).toBe(400)
    expect(((await response.json()) as { error: { code: number } }).error.code).toBe(-32700)
  })

  it("needs a session id after initialize (400), knows unknown ones (404), and ends a session on DELETE", async () => {
    expect((await post(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }))).status).toBe(400)
    expect((await post(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }), { "mcp-session-id": "nope" })).status).toBe(404)
    const opened = await post(JSON.stringify(initialize()))
    expect(opened.status).toBe(200)
    const session = opened.headers.get("mcp-session-id")!
    await opened.body?.cancel()
    const headers = { "mcp-session-id": session, "mcp-protocol-version": "2025-11-25" }
    expect((await fetch(gateway.url, { method: "DELETE", headers })).status).toBe(200)
    expect((await post(JSON.stringify({ jsonrpc: "2.0", id: 3, method: "ping" }), headers)).status).toBe(404)
  })

  it("answers a wrong path with a JSON 404 that names /v1/mcp; the proxy's own 404 keeps its body", async () => {
    const wrong = await fetch(`${gateway.origin}/mcp?x=1`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(initialize()) })
    expect(wrong.status).toBe(404)
    expect(wrong.headers.get("content-type")).toContain("application/json")
    expect(await wrong.json()).toEqual({ error: "not_found", message: "no route for POST /mcp; the MCP endpoint is /v1/mcp" })
    expect(await (await fetch(`${gateway.origin}/sse`)).json()).toMatchObject({ message: "no route for GET /sse; the MCP endpoint is /v1/mcp" })
    const proxied = await fetch(`${gateway.origin}/v1/connectors/nosuch/x`)
    expect(proxied.status).toBe(404)
    expect(await proxied.json()).toMatchObject({ error: "unknown_connector" })
  })

  it("serves a 2025-03-26 client that sends its initialize as a batch", async () => {
    const response = await post(JSON.stringify([initialize("2025-03-26")]))
    expect(response.status).toBe(200)
    expect(response.headers.get("mcp-session-id")).toBeTruthy()
    expect(await response.text()).toContain("2025-03-26")
  })
})

describe("per-call timeout", () => {
  it("fails a call whose upstream is silent past the connector timeout, and cancels it upstream", async () => {
    const client = await connectV2(gateway.url)
    const before = { ...fx.slowCalls }
    const started = Date.now()
    await expect(client.callTool({ name: "quick_slow", arguments: { steps: 1, ms: 3000 } })).rejects.toThrow(/did not answer within/)
    expect(Date.now() - started).toBeLessThan(2500)
    await eventually(() => fx.slowCalls.cancelled > before.cancelled, 10_000, "the upstream to see the cancellation")
    await client.close()
  })

  it("keeps a call alive while the upstream reports progress", async () => {
    const { client } = await connectV1(gateway.url)
    // 8 steps of 200 ms: 1.6 s in all, never 400 ms without progress.
    const result = await client.callTool({ name: "quick_slow", arguments: { steps: 8, ms: 200 } }, undefined, { onprogress: () => {} })
    expect(result.content).toEqual([{ type: "text", text: "done after 8" }])
    await client.close()
  })
})
