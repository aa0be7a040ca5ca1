/**
 * Upstream pagination, the gateway's own pagination, and MCP over WebSocket.
 */
import { describe, expect, it } from "vitest"
import { bearer, grant, mcp } from "../src/index.js"
import { connectV1, connectV2, eventually, startGateway, statusOf } from "./helpers/gateway.js"
import { startManyToolsUpstream } from "./fixtures/manyToolsUpstream.js"
import { startWebSocketUpstream } from "./fixtures/webSocketUpstream.js"

const allowAll = [grant({ src: ["local"], connectors: ["**"] })]

describe("pagination", () => {
  it("reads every page of an upstream's list, and pages its own lists with an opaque cursor", async () => {
    const upstream = await startManyToolsUpstream(2500, 100)
    const gateway = await startGateway({ connectors: { many: mcp({ url: upstream.url }) }, grants: allowAll })
    try {
      await eventually(async () => (await statusOf(gateway, "many")) === "ready", 30_000)
      const { client } = await connectV1(gateway.url)
      const first = await client.listTools()
      expect(first.tools).toHaveLength(1000)
      expect(first.nextCursor).toEqual(expect.any(String))
      const names = first.tools.map((t) => t.name)
      let cursor = first.nextCursor
      let pages = 1
      while (cursor !== undefined) {
        const next = await client.listTools({ cursor })
        names.push(...next.tools.map((t) => t.name))
        cursor = next.nextCursor
        pages++
      }
      expect(pages).toBe(3)
      expect(new Set(names).size).toBe(2500)
      expect(names[2499]).toBe("many_t02499")
      await expect(client.listTools({ cursor: "not-a-cursor" })).rejects.toThrow(/cursor/i)
      expect(await client.callTool({ name: "many_t02499", arguments: {} })).toMatchObject({ content: [{ text: "called t02499" }] })
      // The v2 client walks all pages itself.
      const v2 = await connectV2(gateway.url)
      expect((await v2.listTools()).tools).toHaveLength(2500)
      await v2.close()
      await client.close()
    } finally {
      await gateway.close()
      await upstream.close()
    }
  })
})

describe("WebSocket upstreams", () => {
  it("speaks MCP over ws:// with the credential in the handshake", async () => {
    const upstream = await startWebSocketUpstream({ requireHeader: ["authorization", "Bearer ws-secret"] })
    const gateway = await startGateway({
      connectors: { sock: mcp({ url: upstream.url, auth: bearer({ secret: "ws-secret" }) }) },
      grants: allowAll
    })
    try {
      await eventually(async () => (await statusOf(gateway, "sock")) === "ready", 30_000)
      const client = await connectV2(gateway.url)
      expect(await client.callTool({ name: "sock_shout", arguments: { text: "hi" } })).toMatchObject({
        content: [{ type: "text", text: "HI" }]
      })
      await client.close()
    } finally {
      await gateway.close()
      await upstream.close()
    }
  })
})
