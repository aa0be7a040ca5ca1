/**
 * The gateway in front of a Python FastMCP server over streamable HTTP, open and behind a static
 * bearer token, driven by both SDK clients.
 */
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../../src/Aperture.js"
import { bearer, mcp } from "../../src/index.js"
import { connectorsOf, eventually, startGateway } from "../helpers/gateway.js"
import { fixtureFeatureTests, spokenTo2026 } from "./fixtureFeatures.js"
import { startFastMcp, type FastMcpServer } from "./servers/fastmcp.js"
import { callersConfig, connectAs, ERAS, KEYS, textOf } from "./upstreamCallers.js"

const TOKEN = `fastmcp-token-${crypto.randomUUID()}`
const WRONG = `wrong-token-${crypto.randomUUID()}`

let open: FastMcpServer
let guarded: FastMcpServer
let gateway: RunningGateway
const directClients: Array<V1Client> = []

const direct = (server: () => FastMcpServer, headers: Record<string, string> = {}) => async (name: string, args: Record<string, unknown>) => {
  const client = new V1Client({ name: "direct", version: "1" })
  directClients.push(client)
  await client.connect(new V1Transport(new URL(server().url), { requestInit: { headers } }))
  return client.callTool({ name, arguments: args })
}

beforeAll(async () => {
  ;[open, guarded] = await Promise.all([startFastMcp({ transport: "http" }), startFastMcp({ transport: "http", token: TOKEN })])
  gateway = await startGateway({
    connectors: {
      fm: mcp({ url: open.url }),
      fmbear: mcp({ url: guarded.url, auth: bearer({ secret: TOKEN }) }),
      fmwrong: mcp({ url: guarded.url, auth: bearer({ secret: WRONG }) }),
      fmnone: mcp({ url: guarded.url })
    },
    ...callersConfig
  })
  await eventually(async () => {
    const { connectors } = await connectorsOf(gateway)
    const status = Object.fromEntries(connectors.map((c) => [c.id, c.status]))
    return status["fm"] === "ready" && status["fmbear"] === "ready" && status["fmwrong"] !== "connecting" && status["fmnone"] !== "connecting"
  }, 30_000, "the FastMCP connectors to settle")
}, 180_000)

afterAll(async () => {
  for (const client of directClients) await client.close().catch(() => {})
  await gateway?.close()
  await open?.close()
  await guarded?.close()
})

const slowCounts = (server: () => FastMcpServer) => async () => (await server().seen()).slow

/** FastMCP speaks 2026-07-28, and the gateway picks it: an era without sessions. */
const SESSIONLESS = "the gateway speaks 2026-07-28 to FastMCP, an era without sessions"

describe("fastmcp http", () => {
  const peer = () => ({ url: gateway.url, id: "fm", direct: direct(() => open), slowCounts: slowCounts(() => open) })
  fixtureFeatureTests(peer, {
    notApplicable: {
      "session state (two callers)": { reason: SESSIONLESS, check: spokenTo2026(peer) }
    }
  })
})

describe("fastmcp http bearer", () => {
  const peer = () => ({
    url: gateway.url,
    id: "fmbear",
    direct: direct(() => guarded, { authorization: `Bearer ${TOKEN}` }),
    slowCounts: slowCounts(() => guarded)
  })
  fixtureFeatureTests(peer, {
    notApplicable: {
      "session state (two callers)": { reason: SESSIONLESS, check: spokenTo2026(peer) }
    }
  })

  it("bearer token (wrong, missing, right)", async () => {
    const { connectors } = await connectorsOf(gateway)
    const byId = Object.fromEntries(connectors.map((c) => [c.id, c]))
    expect(byId["fmbear"]?.status).toBe("ready")
    expect(byId["fmwrong"]?.status).toBe("misconfigured")
    expect(byId["fmnone"]?.status).toBe("needs_auth")
    expect(byId["fmwrong"]?.tools).toEqual([])
    expect(byId["fmnone"]?.tools).toEqual([])
    // Nothing about the token itself in what the gateway reports.
    expect(JSON.stringify(connectors)).not.toContain(WRONG)
    expect(JSON.stringify(connectors)).not.toContain(TOKEN)
    for (const era of ERAS) {
      const alice = await connectAs(era, gateway.url, "alice")
      try {
        const names = (await alice.client.listTools()).tools.map((t) => t.name)
        expect(names).toContain("fmbear_add")
        expect(names.filter((n) => n.startsWith("fmwrong_") || n.startsWith("fmnone_"))).toEqual([])
        expect(textOf(await alice.call("fmbear_add", { a: 20, b: 22 }))).toBe("42")
      } finally {
        await alice.close()
      }
    }
  })

  it("Authorization not forwarded", async () => {
    for (const era of ERAS) {
      const alice = await connectAs(era, gateway.url, "alice")
      try {
        // The upstream sees the connector's token on the call, not the caller's API key.
        expect(textOf(await alice.call("fmbear_authorization_seen"))).toBe(`Bearer ${TOKEN}`)
        expect(textOf(await alice.call("fm_authorization_seen"))).toBe("<none>")
      } finally {
        await alice.close()
      }
    }
    const seen = [...(await guarded.seen()).authorizations, ...(await open.seen()).authorizations]
    expect(seen.length).toBeGreaterThan(0)
    for (const value of seen) expect([`Bearer ${TOKEN}`, `Bearer ${WRONG}`]).toContain(value)
    expect(JSON.stringify(seen)).not.toContain(KEYS.alice)
    expect(JSON.stringify(seen)).not.toContain(KEYS.bob)
  })
})
