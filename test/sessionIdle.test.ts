/**
 * 2025-era sessions past `server.sessionIdleTimeout` are closed (their id answers 404 after),
 * while a session in use stays open, a call running longer than the timeout included.
 */
import { afterAll, beforeAll, expect, it } from "vitest"
import { grant, mcp } from "../src/config/dsl.js"
import { startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"
import type { RunningGateway } from "../src/Aperture.js"
import { connectorsOf, eventually, openRawSession, startGateway } from "./helpers/gateway.js"

let fx: V2Upstream
let gateway: RunningGateway

const openSession = () => openRawSession(gateway.url, "idle-test")

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

it("keeps a session whose direct call runs longer than sessionIdleTimeout: the call is answered", async () => {
  const session = await openSession()
  // 2.5 s of progress on a session whose idle timeout is 1 s, with nothing else sent meanwhile.
  const response = await fetch(gateway.url, {
    method: "POST",
    headers: session,
    body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/call", params: { name: "fx_slow", arguments: { steps: 25, ms: 100 } } })
  })
  expect(response.status).toBe(200)
  const text = await response.text()
  expect(text).toContain('"id":9,"result"')
  expect(text).toContain("done after 25")
  expect(await ping(session)).toBe(200)
}, 30_000)

it("keeps a session whose SDK-path request runs longer than sessionIdleTimeout: the request is answered", async () => {
  const session = await openSession()
  // An extra field the direct path does not take: the SDK transport answers this call, on its
  // own POST stream, 2.5 s long on a session whose idle timeout is 1 s.
  const response = await fetch(gateway.url, {
    method: "POST",
    headers: session,
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 10,
      method: "tools/call",
      params: { name: "fx_slow", arguments: { steps: 25, ms: 100 }, extra: true }
    })
  })
  expect(response.status).toBe(200)
  const text = await response.text()
  // The SDK writes the answer as `{"result":…,"jsonrpc":"2.0","id":10}`.
  expect(text).toMatch(/"result":\{"content":\[\{"type":"text","text":"done after 25"\}\]\},"jsonrpc":"2.0","id":10\}/)
  expect(await ping(session)).toBe(200)
}, 30_000)
