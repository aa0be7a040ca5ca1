/**
 * The gateway in front of a Python FastMCP server that speaks only the legacy HTTP+SSE transport
 * (`transport="sse"`), driven by both SDK clients.
 */
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js"
import { afterAll, beforeAll, describe } from "vitest"
import type { RunningGateway } from "../../src/Aperture.js"
import { mcp } from "../../src/index.js"
import { startGateway, untilReady } from "../helpers/gateway.js"
import { fixtureFeatureTests, spokenTo2026, type FixturePeer } from "./fixtureFeatures.js"
import { startFastMcp, type FastMcpServer } from "./servers/fastmcp.js"
import { callersConfig } from "./upstreamCallers.js"

let server: FastMcpServer
let gateway: RunningGateway
const directClients: Array<V1Client> = []

beforeAll(async () => {
  server = await startFastMcp({ transport: "sse" })
  gateway = await startGateway({ connectors: { fmsse: mcp({ url: server.url }) }, ...callersConfig })
  await untilReady(gateway, 1)
}, 180_000)

afterAll(async () => {
  for (const client of directClients) await client.close().catch(() => {})
  await gateway?.close()
  await server?.close()
})

describe("fastmcp sse", () => {
  const peer = (): FixturePeer => ({
    url: gateway.url,
    id: "fmsse",
    direct: async (name, args) => {
      const client = new V1Client({ name: "direct", version: "1" })
      directClients.push(client)
      await client.connect(new SSEClientTransport(new URL(server.url)))
      return client.callTool({ name, arguments: args })
    },
    slowCounts: async () => (await server.seen()).slow
  })
  fixtureFeatureTests(peer, {
    notApplicable: {
      // Over the legacy SSE transport too: FastMCP answers server/discover there.
      "session state (two callers)": { reason: "the gateway speaks 2026-07-28 to FastMCP, an era without sessions", check: spokenTo2026(peer) }
    }
  })
})
