/**
 * Two real MCP clients (one per SDK line) with different identities on one running gateway:
 * each sees its own `tools/list`, is refused exactly what the other may call, cannot use the
 * other's session; and every decision is one audit line with the grant behind it, arguments
 * redacted. Behind Tailscale Serve, the caller is the login Serve names, and only Serve can name it.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { networkInterfaces, tmpdir } from "node:os"
import { join } from "node:path"
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { AuditLine } from "../src/audit/AuditLog.js"
import { Aperture, type RunningGateway } from "../src/Aperture.js"
import { apiKeys, grant, hashApiKey, http, loopback, mcp, trustedHeaders } from "../src/index.js"
import { errorOf, eventually, startGateway } from "./helpers/gateway.js"
import { type HttpUpstream, startHttpUpstream } from "./fixtures/httpUpstream.js"
import { startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"

const ALICE_KEY = `alice-${crypto.randomUUID()}`
const BOB_KEY = `bob-${crypto.randomUUID()}`
const PLANTED_PASSWORD = `pw-${crypto.randomUUID()}`
const PLANTED_TOKEN = `ghp_${crypto.randomUUID().replaceAll("-", "")}`
const auditDir = mkdtempSync(join(tmpdir(), "aperture-audit-"))
const auditFile = join(auditDir, "logs", "audit.jsonl")

let fx: V2Upstream
let api: HttpUpstream
let gateway: RunningGateway
let alice: Client
let bob: V1Client
let bobTransport: V1Transport

beforeAll(async () => {
  fx = await startV2Upstream({ name: "fx" })
  api = await startHttpUpstream()
  gateway = await startGateway({
    connectors: { fx: mcp({ url: fx.url }), api: http({ url: `${api.origin}/base`, allowPrivate: true }) },
    identity: [
      // Bob's key is configured by its hash only.
      apiKeys({ keys: { [ALICE_KEY]: { login: "alice", groups: ["eng"] }, [hashApiKey(BOB_KEY)]: { login: "bob", tags: ["ci"] } } }),
      loopback({ login: "local" })
    ],
    grants: [
      grant({ src: ["alice"], connectors: ["fx/tools/echo", "fx/tools/fails"] }),
      grant({ src: ["group:eng"], connectors: ["fx/prompts/*"] }),
      grant({ src: ["tag:ci"], connectors: ["fx/tools/whoami", "fx/resources/**"] }),
      grant({ src: ["alice"], connectors: ["api/proxy/public/**"] })
    ],
    audit: { to: { file: auditFile }, arguments: "redacted" }
  })
  alice = new Client({ name: "alice-v2", version: "1" }, { versionNegotiation: { mode: "auto" } })
  await alice.connect(new StreamableHTTPClientTransport(new URL(gateway.url), {
    requestInit: { headers: { authorization: `Bearer ${ALICE_KEY}` } }
  }))
  bob = new V1Client({ name: "bob-v1", version: "1" })
  bobTransport = new V1Transport(new URL(gateway.url), { requestInit: { headers: { "x-api-key": BOB_KEY } } })
  await bob.connect(bobTransport)
  await eventually(async () => (await alice.listTools()).tools.length > 0, 30_000, "fx ready")
})

afterAll(async () => {
  await alice?.close()
  await bob?.close()
  await gateway?.close()
  await fx?.close()
  await api?.close()
  rmSync(auditDir, { recursive: true, force: true })
})

/** The error with the tool name taken out, to compare a denied tool with an unknown one. */
const shapeOf = async (promise: Promise<unknown>, name: string) => {
  const error = await errorOf(promise)
  return { code: error.code, message: error.message.replace(name, "NAME") }
}

const auditLines = (): Array<AuditLine> =>
  readFileSync(auditFile, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as AuditLine)

describe("two callers on one gateway", () => {
  it("see different tools/list results", async () => {
    // Alice holds a proxy grant, so the gateway's own aperture_list_connectors is hers too.
    expect((await alice.listTools()).tools.map((t) => t.name).sort()).toEqual(["aperture_list_connectors", "fx_echo", "fx_fails"])
    expect((await bob.listTools()).tools.map((t) => t.name)).toEqual(["fx_whoami"])
    expect((await alice.listPrompts()).prompts.map((p) => p.name)).toEqual(["fx_greet"])
    expect((await bob.listPrompts()).prompts).toEqual([])
    expect((await alice.listResources()).resources).toEqual([])
    expect((await bob.listResources()).resources.map((r) => r.uri)).toEqual(["fx-fixture://readme"])
  })

  it("each is refused exactly what the other may call, as if it did not exist", async () => {
    expect(await alice.callTool({ name: "fx_echo", arguments: { message: "a" } })).toMatchObject({ content: [{ text: "echo: a" }] })
    expect(await bob.callTool({ name: "fx_whoami", arguments: {} })).toMatchObject({ content: [{ text: "fx" }] })

    const unknownForAlice = await shapeOf(alice.callTool({ name: "fx_nosuch", arguments: {} }), "fx_nosuch")
    expect(await shapeOf(alice.callTool({ name: "fx_whoami", arguments: {} }), "fx_whoami")).toEqual(unknownForAlice)
    const unknownForBob = await shapeOf(bob.callTool({ name: "fx_nosuch", arguments: {} }), "fx_nosuch")
    expect(await shapeOf(bob.callTool({ name: "fx_echo", arguments: { message: "b" } }), "fx_echo")).toEqual(unknownForBob)
    expect(unknownForBob.code).toBe(-32602)

    const missingForAlice = await errorOf(alice.readResource({ uri: "fx-fixture://nothing" }))
    expect((await errorOf(alice.readResource({ uri: "fx-fixture://readme" }))).code).toBe(missingForAlice.code)
    expect(await bob.readResource({ uri: "fx-fixture://readme" })).toMatchObject({ contents: [{ text: "readme of fx" }] })
    expect((await errorOf(bob.getPrompt({ name: "fx_greet", arguments: { name: "x" } }))).code)
      .toBe((await errorOf(bob.getPrompt({ name: "fx_nosuch" }))).code)
  })

  it("cannot use the other's session: another caller presenting its id gets 404", async () => {
    const sessionId = bobTransport.sessionId
    expect(sessionId).toBeDefined()
    const ping = (headers: Record<string, string>) =>
      fetch(gateway.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-session-id": sessionId!,
          "mcp-protocol-version": "2025-11-25",
          ...headers
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 99, method: "tools/list" })
      })
    const hijack = await ping({ authorization: `Bearer ${ALICE_KEY}` })
    expect(hijack.status).toBe(404)
    // Not even from this machine, where loopback would otherwise name the caller "local".
    expect((await ping({})).status).toBe(404)
    const own = await ping({ "x-api-key": BOB_KEY })
    expect(own.status).toBe(200)
    expect(await own.text()).toContain("fx_whoami")
  })

  it("answers a wrong key with 401, not with another identity", async () => {
    const response = await fetch(gateway.url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", "x-api-key": `${BOB_KEY}-revoked` },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" })
    })
    expect(response.status).toBe(401)
    expect(response.headers.get("www-authenticate")).toBe("Bearer realm=\"aperture\", error=\"invalid_token\"")
    expect(((await response.json()) as { error: { message: string } }).error.message).toBe("Unauthorized: apiKeys: unknown API key")
  })
})

describe("audit log", () => {
  it("writes one line per decision: who, what, allowed by which grant or denied, duration, outcome", async () => {
    const before = auditLines().length
    await alice.callTool({ name: "fx_echo", arguments: { message: "hello", password: PLANTED_PASSWORD, nested: { note: PLANTED_TOKEN } } })
    await alice.callTool({ name: "fx_fails", arguments: {} })
    await errorOf(alice.callTool({ name: "fx_whoami", arguments: { apiKey: PLANTED_PASSWORD } }))
    await alice.getPrompt({ name: "fx_greet", arguments: { name: "Ada" } })
    await bob.readResource({ uri: "fx-fixture://readme" })
    await errorOf(bob.callTool({ name: "fx_nosuch", arguments: {} }))

    const lines = await eventually(() => {
      const all = auditLines().slice(before)
      return all.length >= 6 ? all : undefined
    }, 10_000, "six audit lines")
    expect(lines).toHaveLength(6)
    for (const line of lines) {
      expect(Number.isNaN(Date.parse(line.time))).toBe(false)
      expect(line.durationMs).toBeGreaterThanOrEqual(0)
    }
    const [echo, fails, denied, prompt, read, unknown] = lines
    expect(echo).toMatchObject({
      login: "alice",
      via: "apiKeys",
      connector: "fx",
      category: "tools",
      exposed: "fx_echo",
      upstream: "echo",
      decision: "allowed",
      grant: { index: 0, pattern: "fx/tools/echo" },
      outcome: "ok",
      arguments: { message: "hello", password: "[redacted]", nested: { note: "[redacted]" } }
    })
    expect(fails).toMatchObject({ exposed: "fx_fails", decision: "allowed", grant: { index: 0, pattern: "fx/tools/fails" }, outcome: "tool_error" })
    expect(denied).toMatchObject({
      login: "alice",
      connector: "fx",
      exposed: "fx_whoami",
      upstream: "whoami",
      decision: "denied",
      grant: null,
      outcome: "denied"
    })
    expect(prompt).toMatchObject({ category: "prompts", exposed: "fx_greet", upstream: "greet", grant: { index: 1, pattern: "fx/prompts/*" }, outcome: "ok", arguments: { name: "Ada" } })
    expect(read).toMatchObject({
      login: "bob",
      category: "resources",
      exposed: "fx-fixture://readme",
      upstream: "fixture://readme",
      grant: { index: 2, pattern: "fx/resources/**" },
      outcome: "ok"
    })
    expect(unknown).toMatchObject({ login: "bob", connector: null, upstream: null, exposed: "fx_nosuch", decision: "denied", outcome: "denied" })

    const text = readFileSync(auditFile, "utf8")
    expect(text).not.toContain(PLANTED_PASSWORD)
    expect(text).not.toContain(PLANTED_TOKEN)
    expect(text).not.toContain(ALICE_KEY)
    expect(text).not.toContain(BOB_KEY)
  })

  it("logs nothing for lists: they are filtered views, not decisions on a call", async () => {
    const before = auditLines().length
    await alice.listTools()
    await bob.listResources()
    await alice.callTool({ name: "fx_echo", arguments: { message: "marker" } })
    const lines = await eventually(() => {
      const all = auditLines().slice(before)
      return all.length >= 1 ? all : undefined
    }, 10_000, "the marker line")
    expect(lines.map((l) => l.exposed)).toEqual(["fx_echo"])
  })
})

describe("audit log of the HTTP proxy", () => {
  it("writes a line per proxied request: allowed with its grant and status, denied with 403", async () => {
    const before = auditLines().length
    const get = (path: string, headers: Record<string, string>) => fetch(`${gateway.origin}/v1/connectors/api${path}?secret=${PLANTED_PASSWORD}`, { headers })
    expect((await get("/public/items/1", { authorization: `Bearer ${ALICE_KEY}` })).status).toBe(200)
    expect((await get("/private/x", { authorization: `Bearer ${ALICE_KEY}` })).status).toBe(403)
    expect((await get("/public/items/1", { "x-api-key": BOB_KEY })).status).toBe(403)
    const lines = await eventually(() => {
      const all = auditLines().slice(before)
      return all.length >= 3 ? all : undefined
    }, 10_000, "three proxy lines")
    expect(lines).toHaveLength(3)
    expect(lines[0]).toMatchObject({
      login: "alice",
      connector: "api",
      category: "proxy",
      exposed: "public/items/1",
      decision: "allowed",
      grant: { index: 3, pattern: "api/proxy/public/**" },
      method: "GET",
      status: 200,
      outcome: "ok"
    })
    expect(lines[1]).toMatchObject({ login: "alice", exposed: "private/x", decision: "denied", grant: null, status: 403, outcome: "denied" })
    expect(lines[2]).toMatchObject({ login: "bob", connector: "api", decision: "denied", status: 403, outcome: "denied" })
    // The query (which may hold a credential) is not part of the path logged.
    expect(readFileSync(auditFile, "utf8")).not.toContain(PLANTED_PASSWORD)
  })
})

describe("behind Tailscale Serve (trustedHeaders)", () => {
  const initialize = (url: string, headers: Record<string, string>) =>
    fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
      })
    })

  it("names the caller from Serve's headers on a loopback connection; without them it is nobody, even locally", async () => {
    const open = await Aperture.start({
      server: { host: "0.0.0.0", port: 0 },
      connectors: { fx: mcp({ url: fx.url }) },
      identity: [trustedHeaders(), loopback({ login: "local" })],
      grants: [grant({ src: ["alice@example.com"], connectors: ["fx/tools/echo"] }), grant({ src: ["local"], connectors: ["fx/tools/whoami"] })]
    })
    try {
      const port = new URL(open.url).port
      const local = `http://127.0.0.1:${port}/v1/mcp`
      const asAlice = new V1Client({ name: "served", version: "1" })
      // As Serve relays it: the login header, and X-Forwarded-For naming the tailnet peer.
      await asAlice.connect(new V1Transport(new URL(local), {
        requestInit: { headers: { "tailscale-user-login": "alice@example.com", "x-forwarded-for": "100.64.0.7" } }
      }))
      await eventually(async () => (await asAlice.listTools()).tools.length > 0, 30_000, "fx ready")
      expect((await asAlice.listTools()).tools.map((t) => t.name)).toEqual(["fx_echo"])
      await asAlice.close()
      // Relayed by Serve without a login (a tagged device, Funnel): not "local", nobody.
      expect((await initialize(local, { "x-forwarded-for": "100.64.0.9" })).status).toBe(401)

      const external = Object.values(networkInterfaces()).flat().find((i) => i?.family === "IPv4" && !i.internal)?.address
      if (external !== undefined) {
        // From another address the header is ignored: a remote caller cannot name itself.
        const forged = await initialize(`http://${external}:${port}/v1/mcp`, { "tailscale-user-login": "alice@example.com" })
        expect(forged.status).toBe(401)
      }
    } finally {
      await open.close()
    }
  })
})
