/**
 * Shared upstream resource subscriptions when the upstream's `resources/subscribe` fails: the
 * subscriber hears the error, and the next subscriber subscribes upstream afresh (a failed first
 * subscribe used to stay recorded, so nobody after it ever subscribed upstream and no update came).
 * The upstream is a v1 SDK server (test/fixtures/subscribableUpstream.ts) whose first subscribe fails.
 */
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { grant, mcp } from "../src/index.js"
import { startSubscribableUpstream, type SubscribableUpstream } from "./fixtures/subscribableUpstream.js"
import { eventually, startGateway, untilReady } from "./helpers/gateway.js"

const subscribeCalls: Array<string> = []
let upstream: SubscribableUpstream
let gateway: RunningGateway

beforeAll(async () => {
  upstream = await startSubscribableUpstream({
    onSubscribe: (uri) => {
      subscribeCalls.push(uri)
      if (subscribeCalls.length === 1) throw new Error("subscription store unavailable")
    }
  })
  gateway = await startGateway({
    connectors: { docs: mcp({ url: upstream.url }) },
    grants: [grant({ src: ["local"], connectors: ["**"] })]
  })
  await untilReady(gateway, 1)
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
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
    await upstream.touch()
    await eventually(() => updates.length > 0, 10_000, "the second subscriber to hear the update")
    expect(updates).toEqual(["docs-doc://readme"])
    await first.close()
    await second.close()
  })
})
