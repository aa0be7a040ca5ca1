/**
 * Deny by default, end to end: what a grant does not cover is absent from every list and
 * answers exactly as an unknown item; callers nobody recognises get 401; foreign Host/Origin 403.
 */
import { request } from "node:http"
import { connect } from "node:net"
import { networkInterfaces } from "node:os"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { Aperture } from "../src/Aperture.js"
import { grant, mcp } from "../src/config/dsl.js"
import { loopback } from "../src/index.js"
import { connectorsOf, connectV1, connectV2, errorOf, eventually, everythingStdio, startGateway } from "./helpers/gateway.js"
import { startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"

let fx: V2Upstream
let gateway: RunningGateway

beforeAll(async () => {
  fx = await startV2Upstream({ name: "fx" })
  gateway = await startGateway({
    connectors: { fx: mcp({ url: fx.url }), everything: everythingStdio() },
    identity: [loopback({ login: "local", groups: ["eng"] })],
    grants: [
      grant({ src: ["local"], connectors: ["fx/tools/echo", "fx/resources/fixture://readme"] }),
      grant({ src: ["group:eng"], connectors: ["fx/prompts/*"] }),
      // Names an admin, so the loopback caller is not one (it would see every connector in full).
      grant({ src: ["someone-else"], connectors: ["**"], role: "admin" })
    ]
  })
  await eventually(async () => (await connectorsOf(gateway)).connectors.find((c) => c.id === "fx")?.status === "ready", 30_000)
  await eventually(async () => (await connectorsOf(gateway)).connectors.find((c) => c.id === "everything")?.status === "no_access", 30_000)
})

afterAll(async () => {
  await gateway?.close()
  await fx?.close()
})

describe("grants at /v1/mcp", () => {
  it("shows only what the grants cover, to both client generations", async () => {
    for (const client of [await connectV2(gateway.url), (await connectV1(gateway.url)).client]) {
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["fx_echo"])
      expect((await client.listPrompts()).prompts.map((p) => p.name)).toEqual(["fx_greet"])
      expect((await client.listResources()).resources.map((r) => r.uri)).toEqual(["fx-fixture://readme"])
      expect((await client.listResourceTemplates()).resourceTemplates).toEqual([])
      await client.close()
    }
  })

  it("answers a denied tool exactly as a nonexistent one", async () => {
    for (const client of [await connectV2(gateway.url), (await connectV1(gateway.url)).client]) {
      const denied = await errorOf(client.callTool({ name: "fx_whoami", arguments: {} }))
      const missing = await errorOf(client.callTool({ name: "fx_nosuchtool", arguments: {} }))
      const otherConnector = await errorOf(client.callTool({ name: "everything_echo", arguments: { message: "x" } }))
      expect(denied.code).toBe(missing.code)
      expect(otherConnector.code).toBe(missing.code)
      expect(denied.message.replace("fx_whoami", "NAME")).toBe(missing.message.replace("fx_nosuchtool", "NAME"))
      expect(await client.callTool({ name: "fx_echo", arguments: { message: "ok" } })).toMatchObject({ content: [{ text: "echo: ok" }] })
      await client.close()
    }
  })

  it("answers denied resources, templates and prompts as unknown ones", async () => {
    const client = await connectV2(gateway.url)
    const viaTemplate = await errorOf(client.readResource({ uri: "fx-fixture://items/1" }))
    const missing = await errorOf(client.readResource({ uri: "fx-fixture://nothing" }))
    expect(viaTemplate.code).toBe(missing.code)
    expect(await client.readResource({ uri: "fx-fixture://readme" })).toMatchObject({ contents: [{ text: "readme of fx" }] })
    const deniedPrompt = await errorOf(client.getPrompt({ name: "everything_simple-prompt" }))
    const missingPrompt = await errorOf(client.getPrompt({ name: "fx_nosuchprompt" }))
    expect(deniedPrompt.code).toBe(missingPrompt.code)
    await client.close()
  })

  it("lists connectors without a grant as no_access, without their tools", async () => {
    const { connectors } = await connectorsOf(gateway)
    expect(connectors.find((c) => c.id === "everything")).toMatchObject({ status: "no_access", tools: [] })
    expect(connectors.find((c) => c.id === "fx")).toMatchObject({ status: "ready", tools: ["fx_echo"] })
  })
})

describe("who may connect", () => {
  it("refuses foreign Host and Origin headers (DNS rebinding)", async () => {
    const init = (headers: Record<string, string>) => ({
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "x", version: "1" } } })
    })
    const port = new URL(gateway.url).port
    // fetch() will not send a custom Host header; node:http will.
    const evilHost = await new Promise<number>((resolve, reject) => {
      const { body, headers } = init({ host: `evil.example.com:${port}` })
      const req = request(gateway.url, { method: "POST", headers }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on("error", reject)
      req.end(body)
    })
    expect(evilHost).toBe(403)
    const evilOrigin = await fetch(gateway.url, init({ origin: "http://evil.example.com" }))
    expect(evilOrigin.status).toBe(403)
    const localOrigin = await fetch(gateway.url, init({ origin: `http://localhost:${port}` }))
    expect(localOrigin.status).toBe(200)
  })

  it("answers a request with no Host at all (an HTTP/1.0 health check): no browser sends one, so no page can rebind with it", async () => {
    const { hostname, port } = new URL(gateway.url)
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => socket.end("GET /healthz HTTP/1.0\r\n\r\n"))
      let text = ""
      socket.on("data", (chunk) => (text += chunk.toString()))
      socket.on("end", () => resolve(text))
      socket.on("error", reject)
    })
    expect(raw).toMatch(/^HTTP\/1\.[01] 200/)
    expect(raw).toContain("\"status\":\"ok\"")
  })

  const external = Object.values(networkInterfaces()).flat().find((i) => i?.family === "IPv4" && !i.internal)?.address
  it.runIf(external !== undefined)("answers 401 with WWW-Authenticate to a caller from another host when only loopback identity is configured", async () => {
    const open = await Aperture.start({
      server: { host: "0.0.0.0", port: 0 },
      connectors: { fx: mcp({ url: fx.url }) },
      grants: [grant({ src: ["*"], connectors: ["**"] })]
    })
    try {
      const port = new URL(open.url).port
      const remote = await fetch(`http://${external}:${port}/v1/mcp`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "x", version: "1" } } })
      })
      expect(remote.status).toBe(401)
      expect(remote.headers.get("www-authenticate")).toMatch(/^Bearer/)
      expect(((await remote.json()) as { error: { message: string } }).error.message).toMatch(/Unauthorized/)
      expect((await fetch(`http://${external}:${port}/api/connectors`)).status).toBe(401)
      // The same gateway from loopback is fine.
      const local = await connectV2(`http://127.0.0.1:${port}/v1/mcp`)
      await local.close()
    } finally {
      await open.close()
    }
  })
})

describe("prefix: false", () => {
  it("exposes unprefixed names; a collision keeps the first connector's and reports both", async () => {
    const other = await startV2Upstream({ name: "other" })
    const flat = await startGateway({
      connectors: { first: mcp({ url: fx.url, prefix: false }), second: mcp({ url: other.url, prefix: false }) },
      grants: [grant({ src: ["local"], connectors: ["**"] })]
    })
    try {
      await eventually(async () => (await connectorsOf(flat)).connectors.every((c) => c.status === "ready"), 30_000)
      const client = await connectV2(flat.url)
      const names = (await client.listTools()).tools.map((t) => t.name)
      expect(names.filter((n) => n === "whoami")).toHaveLength(1)
      expect(await client.callTool({ name: "whoami", arguments: {} })).toMatchObject({ content: [{ text: "fx" }] })
      const second = (await connectorsOf(flat)).connectors.find((c) => c.id === "second")!
      expect(second.warnings?.join("\n")).toMatch(/tool "whoami" of connector "second" collides with connector "first"/)
      await client.close()
    } finally {
      await flat.close()
      await other.close()
    }
  })
})
