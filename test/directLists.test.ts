/**
 * List requests on a 2025-era session are answered by the gateway itself (one SSE event around a
 * pre-encoded page); they must say exactly what the SDK path says, follow catalog changes, and
 * leave every request the SDK would refuse to the SDK.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { grant, mcp } from "../src/config/dsl.js"
import type { RunningGateway } from "../src/Aperture.js"
import { createMcpHandler, Server } from "@modelcontextprotocol/server"
import { startManyToolsUpstream } from "./fixtures/manyToolsUpstream.js"
import { serveFetch } from "./fixtures/nodeAdapter.js"
import { startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"
import { connectorsOf, connectV1, eventually, openRawSession, startGateway } from "./helpers/gateway.js"

let many: Awaited<ReturnType<typeof startManyToolsUpstream>>
let fx: V2Upstream
let gateway: RunningGateway

const openSession = () => openRawSession(gateway.url, "direct-lists-test")

const post = async (headers: Record<string, string>, body: unknown) => {
  const response = await fetch(gateway.url, { method: "POST", headers, body: JSON.stringify(body) })
  return { status: response.status, type: response.headers.get("content-type") ?? "", sessionId: response.headers.get("mcp-session-id"), text: await response.text() }
}

/** The JSON-RPC messages of a response, whether JSON or an SSE stream. */
const messagesOf = (answer: { type: string; text: string }): Array<Record<string, unknown>> => {
  if (answer.type.startsWith("application/json")) {
    const parsed = JSON.parse(answer.text) as unknown
    return Array.isArray(parsed) ? parsed : [parsed as Record<string, unknown>]
  }
  return answer.text.split("\n").filter((l) => l.startsWith("data: ") && l.length > 6).map((l) => JSON.parse(l.slice(6)))
}

beforeAll(async () => {
  many = await startManyToolsUpstream(2500, 100)
  fx = await startV2Upstream({ name: "fx" })
  gateway = await startGateway({
    connectors: { many: mcp({ url: many.url }), fx: mcp({ url: fx.url }) },
    grants: [grant({ src: ["local"], connectors: ["**"] })]
  })
  await eventually(async () => (await connectorsOf(gateway)).connectors.every((c) => c.status === "ready"), 30_000)
})

afterAll(async () => {
  await gateway?.close()
  await many?.close()
  await fx?.close()
})

describe("lists answered by the gateway on a 2025-era session", () => {
  it("answers tools/list page by page, with the request's own id, on an event stream", async () => {
    const session = await openSession()
    const names: Array<string> = []
    let cursor: string | undefined
    let pages = 0
    do {
      const answer = await post(session, { jsonrpc: "2.0", id: `page-${pages}`, method: "tools/list", ...(cursor !== undefined && { params: { cursor } }) })
      expect(answer.status).toBe(200)
      expect(answer.type).toMatch(/^text\/event-stream/)
      expect(answer.sessionId).toBe(session["mcp-session-id"])
      // One event, written whole, without the SDK's priming event and event ids.
      expect(answer.text).toMatch(/^event: message\ndata: [^\n]+\n\n$/)
      const messages = messagesOf(answer)
      expect(messages).toHaveLength(1)
      const message = messages[0] as { id: unknown; result: { tools: Array<{ name: string }>; nextCursor?: string } }
      expect(message.id).toBe(`page-${pages}`)
      names.push(...message.result.tools.map((t) => t.name))
      cursor = message.result.nextCursor
      pages++
    } while (cursor !== undefined)
    expect(pages).toBe(3)
    expect(new Set(names).size).toBe(names.length)
    expect(names).toContain("many_t02499")
    expect(names).toContain("fx_echo")
  })

  it("says exactly what the SDK path says for the same list", async () => {
    const session = await openSession()
    for (const method of ["tools/list", "prompts/list", "resources/list", "resources/templates/list"]) {
      const direct = await post(session, { jsonrpc: "2.0", id: 7, method })
      expect(direct.type).toMatch(/^text\/event-stream/)
      // A batch of one is not answered directly: the SDK's answer to compare with.
      const viaSdk = await post(session, [{ jsonrpc: "2.0", id: 7, method }])
      expect(viaSdk.type).toMatch(/^text\/event-stream/)
      const sdkMessage = messagesOf(viaSdk).find((m) => m["id"] === 7)
      expect(sdkMessage).toBeDefined()
      // The SDK's stream also holds a priming event (id, no data), the direct answer only the result.
      expect(messagesOf(direct)).toEqual([sdkMessage])
      expect(direct.text).not.toEqual(viaSdk.text)
    }
  })

  it("answers bad cursors with invalid params, and leaves wrong headers and unknown sessions to the SDK", async () => {
    const session = await openSession()
    const invalidCursor = messagesOf(await post(session, { jsonrpc: "2.0", id: 1, method: "tools/list", params: { cursor: "not-a-cursor" } }))
    expect(invalidCursor[0]).toMatchObject({ id: 1, error: { code: -32602 } })
    const cursorNotString = messagesOf(await post(session, { jsonrpc: "2.0", id: 2, method: "tools/list", params: { cursor: 5 } }))
    expect(cursorNotString[0]).toMatchObject({ id: 2, error: { code: -32602 } })
    // An empty cursor is no cursor of ours, before and after the first page is cached.
    for (const id of [20, 21]) {
      const emptyCursor = messagesOf(await post(session, { jsonrpc: "2.0", id, method: "tools/list", params: { cursor: "" } }))
      expect(emptyCursor.find((m) => m["id"] === id)).toMatchObject({ error: { code: -32602 } })
      await post(session, { jsonrpc: "2.0", id: 22, method: "tools/list" })
    }
    expect((await post({ ...session, accept: "application/json" }, { jsonrpc: "2.0", id: 3, method: "tools/list" })).status).toBe(406)
    expect((await post({ ...session, "content-type": "text/plain" }, { jsonrpc: "2.0", id: 4, method: "tools/list" })).status).toBe(415)
    expect((await post({ ...session, "mcp-protocol-version": "1999-01-01" }, { jsonrpc: "2.0", id: 5, method: "tools/list" })).status).toBe(400)
    expect((await post({ ...session, "mcp-session-id": "no-such-session" }, { jsonrpc: "2.0", id: 6, method: "tools/list" })).status).toBe(404)
    const nullId = await post(session, { jsonrpc: "2.0", id: null, method: "tools/list" })
    expect(nullId.status).toBe(400)
    expect(nullId.text).not.toContain('"result"')
  })

  it("leaves a request with a 2026-era envelope to the SDK's era routing", async () => {
    const session = await openSession()
    const answer = await post(session, {
      jsonrpc: "2.0",
      id: 9,
      method: "tools/list",
      params: { _meta: { "io.modelcontextprotocol/protocolVersion": "2026-07-28" } }
    })
    // Not the direct answer (one event around a 2025 result).
    expect(/^event: message\ndata: [^\n]+\n\n$/.test(answer.text) && answer.text.includes('"tools"')).toBe(false)
  })

  it("follows catalog changes: a tool added upstream is in the next list", async () => {
    const session = await openSession()
    const list = async () => {
      const tools: Array<{ name: string }> = []
      let cursor: string | undefined
      do {
        const answer = await post(session, { jsonrpc: "2.0", id: 1, method: "tools/list", ...(cursor !== undefined && { params: { cursor } }) })
        const { result } = messagesOf(answer)[0] as { result: { tools: Array<{ name: string }>; nextCursor?: string } }
        tools.push(...result.tools)
        cursor = result.nextCursor
      } while (cursor !== undefined)
      return tools
    }
    expect((await list()).map((t) => t.name)).not.toContain("fx_added_later")
    fx.addTool("added_later")
    await eventually(async () => (await list()).some((t) => t.name === "fx_added_later"), 20_000, "fx_added_later listed")
  })

  it("serves SDK clients' lists on 2025 sessions", async () => {
    const { client } = await connectV1(gateway.url)
    try {
      const first = await client.listTools()
      expect(first.tools).toHaveLength(1000)
      const second = await client.listTools({ cursor: first.nextCursor! })
      expect(second.tools).toHaveLength(1000)
      expect(second.tools[0]!.name).not.toBe(first.tools[0]!.name)
    } finally {
      await client.close()
    }
  })
})

describe("a tools list the SDK re-encodes for 2025-era callers", () => {
  it("wraps an outputSchema whose root is not an object (SEP-2106), as the SDK path does", async () => {
    // A v2 SDK server whose tool returns an array: its outputSchema root is `type: "array"`.
    const handler = createMcpHandler(() => {
      const server = new Server({ name: "arrays", version: "1.0.0" }, { capabilities: { tools: {} } })
      server.setRequestHandler("tools/list", async () => ({
        tools: [{ name: "numbers", inputSchema: { type: "object" as const }, outputSchema: { type: "array", items: { type: "number" } } as never }]
      }))
      return server
    })
    const served = await serveFetch((request) => handler.fetch(request))
    const arrays = await startGateway({
      connectors: { arrays: mcp({ url: `http://127.0.0.1:${served.port}/mcp` }) },
      grants: [grant({ src: ["local"], connectors: ["**"] })]
    })
    try {
      await eventually(async () => (await connectorsOf(arrays)).connectors.every((c) => c.status === "ready"), 30_000)
      const session = await openRawSession(arrays.url, "arrays-test")
      const response = await fetch(arrays.url, { method: "POST", headers: session, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }) })
      const messages = messagesOf({ type: response.headers.get("content-type") ?? "", text: await response.text() })
      const tool = (messages.find((m) => m["id"] === 1)?.["result"] as { tools: Array<Record<string, unknown>> }).tools[0]
      expect(tool?.["outputSchema"]).toEqual({ type: "object", properties: { result: { type: "array", items: { type: "number" } } }, required: ["result"] })
      // A v1 client, which requires an object root, can read the list.
      const { client } = await connectV1(arrays.url)
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["arrays_numbers"])
      await client.close()
    } finally {
      await arrays.close()
      await handler.close()
      await served.close()
    }
  })
})
