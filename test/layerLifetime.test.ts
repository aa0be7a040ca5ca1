/**
 * Nothing outlives the layer that made it: two gateways built from `Aperture.layerOwnServer` in one
 * process share one upstream; closing the first leaves the second serving (its subscribers and
 * list_changed listeners still hear), and the first's listeners, subscriptions and timers are gone.
 * The upstream is a v1 SDK server with subscribable resources and a tool list that changes.
 */
import { randomUUID } from "node:crypto"
import { HttpServer } from "@effect/platform"
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { ResourceUpdatedNotificationSchema, ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Aperture } from "../src/Aperture.js"
import { McpEndpoint } from "../src/endpoint/McpEndpoint.js"
import { grant, mcp } from "../src/index.js"
import { McpRouter } from "../src/router/McpRouter.js"
import { Upstreams } from "../src/upstream/Upstreams.js"
import { startSubscribableUpstream, type SubscribableUpstream } from "./fixtures/subscribableUpstream.js"
import { eventually } from "./helpers/gateway.js"

let upstream: SubscribableUpstream

beforeAll(async () => {
  upstream = await startSubscribableUpstream()
})

afterAll(async () => {
  await upstream?.close()
})

/** Builds `Aperture.layerOwnServer` on a port of its own, in a scope of its own. */
const buildGateway = async () => {
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(Aperture.layerOwnServer({
    connectors: { docs: mcp({ url: upstream.url }) },
    grants: [grant({ src: ["local"], connectors: ["**"] })],
    server: { host: "127.0.0.1", port: 0 }
  }), scope))
  const address = Context.get(context, HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return {
    url: `http://127.0.0.1:${address.port}/v1/mcp`,
    endpoint: Context.get(context, McpEndpoint),
    router: Context.get(context, McpRouter),
    upstreams: Context.get(context, Upstreams),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** A 2025-era client subscribed to the resource, counting what it hears. */
const subscriber = async (url: string) => {
  const client = new V1Client({ name: "subscriber", version: "1" })
  await client.connect(new V1Transport(new URL(url)))
  const heard = { updates: 0, toolsChanged: 0 }
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, () => void heard.updates++)
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => void heard.toolsChanged++)
  await eventually(async () => (await client.listTools()).tools.some((t) => t.name === "docs_echo"), 20_000, "docs ready")
  await client.subscribeResource({ uri: "docs-doc://readme" })
  return { client, heard }
}

/** Timers keeping the process alive. */
const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length

describe("two gateways in one process", () => {
  it("closing the first leaves the second serving, and the first's listeners, subscriptions and timers gone", async () => {
    const second = await buildGateway()
    try {
      const onSecond = await subscriber(second.url)
      // With the second gateway alone: the timers it keeps running.
      await new Promise((r) => setTimeout(r, 200))
      const baseline = timers()

      const first = await buildGateway()
      const onFirst = await subscriber(first.url)
      expect(first.router.subscriptionCount()).toBe(1)
      expect(first.upstreams.listenerCount()).toBeGreaterThan(0)
      expect(timers()).toBeGreaterThan(baseline)

      await upstream.touch()
      await eventually(() => onFirst.heard.updates > 0 && onSecond.heard.updates > 0, 10_000, "both subscribers to hear")

      await onFirst.client.close()
      await first.close()
      expect(first.router.subscriptionCount()).toBe(0)
      expect(first.upstreams.listenerCount()).toBe(0)
      expect(first.endpoint.listenStreams()).toBe(0)
      await eventually(() => timers() <= baseline, 10_000, `timers back to ${baseline} (now ${timers()})`)

      // The second is unaffected: it still lists, its subscriber still hears updates and list changes.
      expect(second.router.subscriptionCount()).toBe(1)
      expect(second.upstreams.listenerCount()).toBe(2)
      const updatesBefore = onSecond.heard.updates
      await upstream.touch()
      for (const server of upstream.servers) {
        server.registerTool(`added_${randomUUID().slice(0, 8)}`, { description: "added" }, async () => ({ content: [] }))
      }
      await eventually(() => onSecond.heard.updates > updatesBefore && onSecond.heard.toolsChanged > 0, 10_000, "the second's subscriber to hear")
      expect((await onSecond.client.listTools()).tools.some((t) => t.name.startsWith("docs_added_"))).toBe(true)
      await onSecond.client.close()
    } finally {
      await second.close()
    }
  })
})
