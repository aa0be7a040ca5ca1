/**
 * 2025-era sessions past `server.sessionIdleTimeout` are closed (their id answers 404 after),
 * while a session in use stays open.
 */
import { afterAll, beforeAll, expect, it } from "vitest"
import { grant, mcp } from "../src/config/dsl.js"
import { startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"
import type { RunningGateway } from "../src/Aperture.js"
import { connectorsOf, eventually, startGateway } from "./helpers/gateway.js"

let fx: V2Upstream
let gateway: RunningGateway

const headers = { "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25" }

const openSession = async () => {
  const response = await fetch(gateway.url, {
    method: "POST",
    headers,
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "idle-test", version: "1" } }
    })
  })
  await response.text()
  const id = response.headers.get("mcp-session-id")
  expect(id).toBeTruthy()
  const session = { ...headers, "mcp-session-id": id! }
  await (await fetch(gateway.url, { method: "POST", headers: session, body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) })).text()
  return session
}

const ping = async (session: Record<string, string>) => {
  const response = await fetch(gateway.url, { method: "POST", headers: session, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }) })
  await response.text()
  return response.status
}

beforeAll(async () => {
  fx = await startV2Upstream({ name: "fx" })
  gateway = await startGateway({
    connectors: { fx: mcp({ url: fx.url }) },
    grants: [grant({ src: ["local"], connectors: ["**"] })],
    server: { sessionIdleTimeout: "1 second" }
  })
  await eventually(async () => (await connectorsOf(gateway)).connectors.find((c) => c.id === "fx")?.status === "ready", 30_000)
})

afterAll(async () => {
  await gateway?.close()
  await fx?.close()
})

it("closes a session left idle past sessionIdleTimeout, and keeps one in use", async () => {
  const idle = await openSession()
  const busy = await openSession()
  expect(await ping(idle)).toBe(200)
  const until = Date.now() + 3_500
  while (Date.now() < until) {
    expect(await ping(busy)).toBe(200)
    await new Promise((r) => setTimeout(r, 250))
  }
  expect(await ping(idle)).toBe(404)
  expect(await ping(busy)).toBe(200)
}, 30_000)
