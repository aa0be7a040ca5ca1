/**
 * The gateway's own life around its upstreams, against third-party servers: the legacy-SSE
 * fallback settles on `ready` without flapping (issue 17 item 3, FastMCP over SSE only), and a
 * gateway that stops ends its upstream sessions with DELETE (its own and each caller's).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { mcp } from "../../src/index.js"
import { connectorsOf, eventually, startGateway, untilReady } from "../helpers/gateway.js"
import { startFastMcp, type FastMcpServer } from "./servers/fastmcp.js"
import { startV1SdkServer } from "./servers/v1SdkServer.js"
import { callersConfig, connectAs, textOf } from "./upstreamCallers.js"

let sse: FastMcpServer

beforeAll(async () => {
  sse = await startFastMcp({ transport: "sse" })
}, 180_000)

afterAll(async () => {
  await sse?.close()
})

describe("fastmcp sse", () => {
  // Item 3 was: ready, then "down: connection closed" 5-10 ms later, then ready again.
  it("connector stays ready (no fallback flap)", async () => {
    const fresh = await startGateway({ connectors: { flap: mcp({ url: sse.url }) }, ...callersConfig })
    try {
      const seen: Array<string> = []
      const deadline = Date.now() + 3_000
      while (Date.now() < deadline) {
        const status = (await connectorsOf(fresh)).connectors[0]?.status ?? "?"
        if (seen.at(-1) !== status) seen.push(status)
      }
      expect(seen.filter((s) => s !== "connecting")).toEqual(["ready"])
    } finally {
      await fresh.close()
    }
  })
})

describe("v1 sdk stateful", () => {
  // The MCP spec: a client that no longer needs a session SHOULD end it with DELETE (the
  // connection's own and each caller's; found leaving 2 of 2 open).
  it("DELETE upstream sessions on shutdown", async () => {
    const server = await startV1SdkServer({ stateless: false })
    const own = await startGateway({ connectors: { up: mcp({ url: server.url }) }, ...callersConfig })
    try {
      await untilReady(own, 1)
      const alice = await connectAs("v1", own.url, "alice")
      expect(textOf(await alice.call("up_add", { a: 1, b: 2 }))).toBe("3")
      await alice.close()
      const open = server.sessions()
      expect(open).toBeGreaterThanOrEqual(2)
      await own.close()
      await eventually(() => server.sessions() === 0, 5_000, "the upstream sessions to be deleted").catch((e: unknown) => {
        throw new Error(`${String(e)}: ${server.sessions()} of ${open} still open, ${server.deleted.length} deleted`)
      })
      expect(server.deleted).toHaveLength(open)
    } finally {
      await own.close()
      await server.close()
    }
  })
})
