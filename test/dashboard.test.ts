/**
 * The status page's JSON routes over HTTP: a connector's detail (tools, prompts and resources as
 * the caller's grants allow, status history, requests per minute), the audit trail and the open
 * sessions (admins only, 403 to anyone else), and the page itself served with its table filled
 * in (no JavaScript needed for the state view) and no secret in it.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { apiKeys, bearer, grant, http, loopback, mcp } from "../src/index.js"
import { startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"
import { connectV1, eventually, startGateway } from "./helpers/gateway.js"
import { freePort } from "./helpers/processes.js"

const OPS_KEY = "ops-key-0123456789abcdef"
const ALICE_KEY = "alice-key-0123456789abcdef"
const BOB_KEY = "bob-key-0123456789abcdef"
const API_SECRET = "upstream-token-that-must-never-show-1234"

let fx: V2Upstream
let late: V2Upstream | undefined
let latePort: number
let gateway: RunningGateway
let auditDir: string

const get = (path: string, key?: string) =>
  fetch(`${gateway.origin}${path}`, key === undefined ? {} : { headers: { "x-api-key": key } })

const getJson = async (path: string, key?: string) => {
  const response = await get(path, key)
  return { status: response.status, body: await response.json() as Record<string, any> }
}

/** The request the page's "Try it" form sends: one stateless 2026-07-28 `tools/call`. */
const pageCall = async (name: string, args: Record<string, unknown>, key: string) => {
  const response = await fetch(`${gateway.origin}/v1/mcp`, {
    method: "POST",
    headers: {
      "x-api-key": key,
      origin: gateway.origin,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2026-07-28",
      "mcp-method": "tools/call",
      "mcp-name": name
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: {
        name,
        arguments: args,
        _meta: {
          "io.modelcontextprotocol/protocolVersion": "2026-07-28",
          "io.modelcontextprotocol/clientCapabilities": {}
        }
      }
    })
  })
  const text = await response.text()
  const json = response.headers.get("content-type")?.includes("text/event-stream")
    ? text.split("\n").filter((l) => l.startsWith("data:")).map((l) => JSON.parse(l.slice(5))).find((m) => m.id === 1)
    : JSON.parse(text)
  return { status: response.status, message: json as Record<string, any> }
}

beforeAll(async () => {
  fx = await startV2Upstream({ name: "fx" })
  latePort = await freePort()
  auditDir = mkdtempSync(join(tmpdir(), "aperture-dashboard-"))
  gateway = await startGateway({
    connectors: {
      fx: mcp({ url: fx.url, description: "fixture server" }),
      // Nothing listens there yet: down until the test starts it.
      late: mcp({ url: `http://127.0.0.1:${latePort}/mcp`, description: "starts later" }),
      api: http({ url: "https://api.example.com", auth: bearer({ secret: API_SECRET }), description: "REST API" })
    },
    identity: [
      apiKeys({ keys: { [OPS_KEY]: { login: "ops" }, [ALICE_KEY]: { login: "alice" }, [BOB_KEY]: { login: "bob" } } }),
      loopback({ login: "local" })
    ],
    grants: [
      grant({ src: ["ops"], role: "admin" }),
      grant({ src: ["alice", "local"], connectors: ["fx/tools/echo", "fx/tools/structured", "late/**"] }),
      grant({ src: ["bob"], connectors: ["api/proxy/**"] })
    ],
    audit: { to: { file: join(auditDir, "audit.jsonl") } }
  })
  await eventually(async () => (await getJson("/api/connectors/fx/detail", OPS_KEY)).body["status"] === "ready", 30_000, "fx ready")
})

afterAll(async () => {
  await gateway?.close()
  await fx?.close()
  await late?.close()
  if (auditDir !== undefined) rmSync(auditDir, { recursive: true, force: true })
})

describe("GET /api/connectors/<id>/detail", () => {
  it("lists only the tools, prompts and resources the caller's grants allow, with descriptions and input schemas", async () => {
    const alice = await getJson("/api/connectors/fx/detail", ALICE_KEY)
    expect(alice.status).toBe(200)
    expect(alice.body["tools"].map((t: { name: string }) => t.name).sort()).toEqual(["fx_echo", "fx_structured"])
    const echo = alice.body["tools"].find((t: { name: string }) => t.name === "fx_echo")
    expect(echo.inputSchema).toMatchObject({ type: "object", properties: { message: { type: "string" } }, required: ["message"] })
    expect(typeof echo.description).toBe("string")
    expect(alice.body["prompts"]).toEqual([])
    expect(alice.body["resources"]).toEqual([])

    // An admin sees everything the connector offers.
    const ops = await getJson("/api/connectors/fx/detail", OPS_KEY)
    expect(ops.body["tools"].length).toBeGreaterThan(2)
    expect(ops.body["tools"].map((t: { name: string }) => t.name)).toContain("fx_whoami")
    expect(ops.body["prompts"].length + ops.body["resources"].length + ops.body["templates"].length).toBeGreaterThan(0)
  })

  it("answers 403 without a grant on the connector and 404 for an unknown one", async () => {
    const bob = await getJson("/api/connectors/fx/detail", BOB_KEY)
    expect(bob.status).toBe(403)
    expect(bob.body["tools"]).toBeUndefined()
    expect((await getJson("/api/connectors/nope/detail", OPS_KEY)).status).toBe(404)
    // An HTTP connector has no tools; its secret is nowhere in the answer.
    const api = await get("/api/connectors/api/detail", BOB_KEY)
    expect(api.status).toBe(200)
    const text = await api.text()
    expect(text).not.toContain(API_SECRET)
    expect(JSON.parse(text)).toMatchObject({ id: "api", protocol: "http", tools: [] })
  })

  it("records a down → ready change with its reason in the history", async () => {
    const before = await getJson("/api/connectors/late/detail", ALICE_KEY)
    expect(before.body["status"]).toBe("down")
    late = await startV2Upstream({ port: latePort, name: "late" })
    const after = await eventually(async () => {
      const detail = await getJson("/api/connectors/late/detail", ALICE_KEY)
      return detail.body["status"] === "ready" ? detail.body : undefined
    }, 45_000, "late ready")
    const history = after["history"] as Array<{ at: string; status: string; reason?: string }>
    const down = history.findIndex((h) => h.status === "down")
    expect(down).toBeGreaterThanOrEqual(0)
    expect(history[down]!.reason).toMatch(/\S/)
    expect(history.at(-1)).toMatchObject({ status: "ready" })
    expect(history.at(-1)!.reason).toBeUndefined()
    expect(Date.parse(history.at(-1)!.at)).toBeGreaterThanOrEqual(Date.parse(history[down]!.at))
    expect(history.length).toBeLessThanOrEqual(20)
  }, 60_000)

  it("counts calls per minute from the call a page makes through /v1/mcp, as the caller", async () => {
    const answer = await pageCall("fx_echo", { message: "from the page" }, ALICE_KEY)
    expect(answer.status).toBe(200)
    expect(answer.message["result"]["content"][0]).toMatchObject({ type: "text" })
    expect(JSON.stringify(answer.message["result"])).toContain("from the page")
    const detail = await getJson("/api/connectors/fx/detail", ALICE_KEY)
    const minutes = detail.body["minutes"] as Array<{ requests: number; errors: number; mean_ms: number }>
    expect(minutes).toHaveLength(15)
    expect(minutes.at(-1)!.requests + minutes.at(-2)!.requests).toBeGreaterThanOrEqual(1)
  })
})

describe("GET /api/audit and /api/sessions", () => {
  it("are for admins only: 403 to anyone else", async () => {
    for (const path of ["/api/audit", "/api/sessions"]) {
      expect((await get(path, ALICE_KEY)).status).toBe(403)
      expect((await get(path, BOB_KEY)).status).toBe(403)
      // Loopback is no admin once a grant names one.
      expect((await get(path)).status).toBe(403)
      expect((await get(path, OPS_KEY)).status).toBe(200)
    }
  })

  it("gives admins the audit trail, filtered by user, connector and decision", async () => {
    await pageCall("fx_echo", { message: "audited" }, ALICE_KEY)
    const denied = await pageCall("fx_whoami", {}, ALICE_KEY)
    expect(JSON.stringify(denied.message)).not.toContain("\"isError\":false")
    const all = await getJson("/api/audit", OPS_KEY)
    expect(all.body["enabled"]).toBe(true)
    const lines = all.body["lines"] as Array<Record<string, any>>
    // Newest first.
    expect(lines[0]).toMatchObject({ login: "alice", connector: "fx", exposed: "fx_whoami", decision: "denied" })
    expect(lines[1]).toMatchObject({ login: "alice", connector: "fx", exposed: "fx_echo", decision: "allowed", outcome: "ok" })

    const deniedOnly = (await getJson("/api/audit?decision=denied", OPS_KEY)).body["lines"] as Array<Record<string, any>>
    expect(deniedOnly.length).toBeGreaterThan(0)
    expect(deniedOnly.every((l) => l["decision"] === "denied")).toBe(true)
    expect((await getJson("/api/audit?login=bob", OPS_KEY)).body["lines"]).toEqual([])
    const byConnector = (await getJson("/api/audit?connector=fx&login=alice&decision=allowed", OPS_KEY)).body["lines"] as Array<Record<string, any>>
    expect(byConnector.length).toBeGreaterThanOrEqual(2)
    expect(byConnector.every((l) => l["connector"] === "fx" && l["login"] === "alice" && l["decision"] === "allowed")).toBe(true)
    expect((await getJson("/api/audit?decision=maybe", OPS_KEY)).status).toBe(400)
  })

  it("lists open 2025-era sessions with an id prefix, caller, protocol version and age", async () => {
    const { client, transport } = await connectV1(gateway.url)
    try {
      const sessions = (await getJson("/api/sessions", OPS_KEY)).body["sessions"] as Array<Record<string, any>>
      const mine = sessions.find((s) => s["client"] === "test-v1")
      expect(mine).toMatchObject({ login: "local", via: "loopback", protocol_version: "2025-11-25" })
      expect(mine!["id_prefix"]).toHaveLength(8)
      expect(mine!["age_s"]).toBeGreaterThanOrEqual(0)
      // Ended (DELETE), it is gone from the list.
      await transport.terminateSession()
      const after = (await getJson("/api/sessions", OPS_KEY)).body["sessions"] as Array<Record<string, any>>
      expect(after.find((s) => s["client"] === "test-v1")).toBeUndefined()
    } finally {
      await client.close()
    }
  })
})

describe("the status page without JavaScript", () => {
  it("is served with the viewer's connectors and their states in the table, and no secret", async () => {
    const response = await get("/", ALICE_KEY)
    expect(response.status).toBe(200)
    const html = await response.text()
    expect(html).toMatch(/<tr data-connector="fx">.*<td class="status" data-status="ready">ready<\/td>/)
    expect(html).toMatch(/<tr data-connector="api">.*data-status="no_access"/)
    expect(html).toContain("fx_echo")
    expect(html).not.toContain("fx_whoami")
    expect(html).not.toContain(API_SECRET)
    expect(response.headers.get("content-security-policy")).toContain("default-src 'none'")
  })
})
