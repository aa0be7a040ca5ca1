/**
 * Shared upstream resource subscriptions when the upstream's `resources/subscribe` fails: the
 * subscriber hears the error, and the next subscriber subscribes upstream afresh (a failed first
 * subscribe used to stay recorded, so nobody after it ever subscribed upstream and no update came).
 * The upstream is a v1 SDK server whose first subscribe fails.
 */
import { randomUUID } from "node:crypto"
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js"
import { ResourceUpdatedNotificationSchema, SubscribeRequestSchema, UnsubscribeRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { grant, mcp } from "../src/index.js"
import { eventually, startGateway, untilReady } from "./helpers/gateway.js"
import { serveFetch } from "./fixtures/nodeAdapter.js"

const subscribeCalls: Array<string> = []
const servers = new Set<McpServer>()
let served: Awaited<ReturnType<typeof serveFetch>>
let gateway: RunningGateway

beforeAll(async () => {
  const sessions = new Map<string, WebStandardStreamableHTTPServerTransport>()
  served = await serveFetch(async (request) => {
    const id = request.headers.get("mcp-session-id")
    if (id !== null) {
      const transport = sessions.get(id)
      return transport === undefined ? new Response(null, { status: 404 }) : transport.handleRequest(request)
    }
    const server = new McpServer({ name: "subscribable", version: "1.0.0" }, { capabilities: { resources: { subscribe: true } } })
    server.registerResource("readme", "doc://readme", { mimeType: "text/plain" }, async () => ({
      contents: [{ uri: "doc://readme", text: "hello" }]
    }))
    server.server.setRequestHandler(SubscribeRequestSchema, async (request) => {
      subscribeCalls.push(request.params.uri)
      if (subscribeCalls.length === 1) throw new Error("subscription store unavailable")
      return {}
    })
    server.server.setRequestHandler(UnsubscribeRequestSchema, async () => ({}))
    servers.add(server)
    const transport: WebStandardStreamableHTTPServerTransport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sid) => void sessions.set(sid, transport),
      onsessionclosed: (sid) => void sessions.delete(sid)
    })
    await server.connect(transport)
    return transport.handleRequest(request)
  })
  gateway = await startGateway({
    connectors: { docs: mcp({ url: `http://127.0.0.1:${served.port}/mcp` }) },
    grants: [grant({ src: ["local"], connectors: ["**"] })]
  })
  await untilReady(gateway, 1)
})

afterAll(async () => {
  await gateway?.close()
  await served?.close()
})

describe("resource subscriptions after a failed upstream subscribe", () => {
  it("the failing subscriber hears the error; the next one subscribes upstream and gets updates", async () => {
    const first = new V1Client({ name: "first", version: "1" })
    await first.connect(new V1Transport(new URL(gateway.url)))
    await expect(first.subscribeResource({ uri: "docs-doc://readme" })).rejects.toThrow(/subscription store unavailable/)
    expect(subscribeCalls).toEqual(["doc://readme"])

    const second = new V1Client({ name: "second", version: "1" })
    await second.connect(new V1Transport(new URL(gateway.url)))
    const updates: Array<string> = []
    second.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updates.push(n.params.uri))
    await second.subscribeResource({ uri: "docs-doc://readme" })
    expect(subscribeCalls).toEqual(["doc://readme", "doc://readme"])

    // Every upstream session the gateway holds hears of the change; only subscribers are told.
    for (const server of servers) await server.server.sendResourceUpdated({ uri: "doc://readme" }).catch(() => {})
    await eventually(() => updates.length > 0, 10_000, "the second subscriber to hear the update")
    expect(updates).toEqual(["docs-doc://readme"])
    await first.close()
    await second.close()
  })
})
