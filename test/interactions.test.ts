/**
 * Several real clients on one gateway at once: server→client requests reach the client whose
 * call caused them, cancellation reaches the upstream, and list changes reach only the
 * callers who can see them.
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { CreateMessageRequestSchema, ElicitRequestSchema, ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { apiKeys, grant, mcp } from "../src/index.js"
import { eventually, everythingStdio, startGateway, untilReady } from "./helpers/gateway.js"
import { everythingEntry, freePort, spawnProcess, type Spawned } from "./helpers/processes.js"
import { startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"

/** Each caller's API key: the callers are told apart by the real apiKeys plugin. */
const keys: Record<string, string> = { alice: `alice-${crypto.randomUUID()}`, bob: `bob-${crypto.randomUUID()}` }
const asUser = (user: string) => ({ requestInit: { headers: { authorization: `Bearer ${keys[user]!}` } } })

const v1As = async (url: string, user: string, answer?: string) => {
  const client = new V1Client({ name: `client-${user}`, version: "1" }, {
    capabilities: answer === undefined ? {} : { sampling: {}, elicitation: {} }
  })
  if (answer !== undefined) {
    client.setRequestHandler(CreateMessageRequestSchema, async () => ({
      role: "assistant",
      content: { type: "text", text: answer },
      model: "test-model"
    }))
    client.setRequestHandler(ElicitRequestSchema, async () => ({ action: "accept", content: { name: answer } }))
  }
  await client.connect(new V1Transport(new URL(url), asUser(user)))
  return client
}

let everythingHttp: Spawned
let fx: V2Upstream
let gateway: RunningGateway

beforeAll(async () => {
  const port = await freePort()
  everythingHttp = spawnProcess(process.execPath, [everythingEntry, "streamableHttp"], { PORT: String(port) })
  await everythingHttp.waitFor(/listening on port/)
  fx = await startV2Upstream({ name: "fx" })
  gateway = await startGateway({
    connectors: {
      ev: mcp({ url: `http://127.0.0.1:${port}/mcp` }),
      local: everythingStdio(),
      fx: mcp({ url: fx.url })
    },
    identity: [apiKeys({ keys: { [keys["alice"]!]: { login: "alice" }, [keys["bob"]!]: { login: "bob" } } })],
    grants: [
      grant({ src: ["alice", "bob"], connectors: ["ev/**", "local/**"] }),
      grant({ src: ["alice"], connectors: ["fx/**"] })
    ]
  })
  await untilReady(gateway, 3)
})

afterAll(async () => {
  await gateway?.close()
  await fx?.close()
  await everythingHttp?.kill()
})

const textOf = (result: unknown) => JSON.stringify((result as { content?: unknown }).content)

describe("server→client requests", () => {
  it("reaches the client whose call asked, with two clients calling at once", async () => {
    const alice = await v1As(gateway.url, "alice", "answer-from-alice")
    const bob = await v1As(gateway.url, "bob", "answer-from-bob")
    await eventually(async () => (await alice.listTools()).tools.some((t) => t.name === "ev_trigger-sampling-request"), 30_000)
    const [a, b] = await Promise.all([
      alice.callTool({ name: "ev_trigger-sampling-request", arguments: { prompt: "hi" } }),
      bob.callTool({ name: "ev_trigger-sampling-request", arguments: { prompt: "hi" } })
    ])
    expect(textOf(a)).toContain("answer-from-alice")
    expect(textOf(a)).not.toContain("answer-from-bob")
    expect(textOf(b)).toContain("answer-from-bob")
    expect(textOf(b)).not.toContain("answer-from-alice")
    const elicited = await alice.callTool({ name: "ev_trigger-elicitation-request", arguments: {} })
    expect(textOf(elicited)).toContain("answer-from-alice")
    await alice.close()
    await bob.close()
  })

  it("routes a stdio upstream's request to the one call in flight", async () => {
    const alice = await v1As(gateway.url, "alice", "stdio-answer")
    const result = await alice.callTool({ name: "local_trigger-sampling-request", arguments: { prompt: "hi" } })
    expect(textOf(result)).toContain("stdio-answer")
    await alice.close()
  })

  it("refuses a request the calling client did not declare, instead of asking anyone else", async () => {
    const withSampling = await v1As(gateway.url, "alice", "should-not-be-asked")
    const without = await v1As(gateway.url, "bob")
    const [refused] = await Promise.all([
      without.callTool({ name: "ev_trigger-sampling-request", arguments: { prompt: "hi" } }).catch((e: Error) => ({ error: e.message })),
      withSampling.listTools()
    ])
    expect(JSON.stringify(refused)).toMatch(/does not support sampling/)
    expect(JSON.stringify(refused)).not.toContain("should-not-be-asked")
    await withSampling.close()
    await without.close()
  })

  it("gives a 2026-07-28 client a 2025-era upstream's sampling request as input_required rounds", async () => {
    const client = new Client({ name: "modern", version: "1" }, {
      versionNegotiation: { mode: "auto" },
      capabilities: { sampling: {} }
    })
    let asked = 0
    client.setRequestHandler("sampling/createMessage", async () => {
      asked++
      return { role: "assistant", content: { type: "text", text: "modern-answer" }, model: "test-model" }
    })
    await client.connect(new StreamableHTTPClientTransport(new URL(gateway.url), asUser("alice")))
    expect(client.getNegotiatedProtocolVersion()).toBe("2026-07-28")
    const result = await client.callTool({ name: "ev_trigger-sampling-request", arguments: { prompt: "hi" } })
    expect(textOf(result)).toContain("modern-answer")
    expect(asked).toBe(1)
    await client.close()
  })
})

describe("cancellation", () => {
  it("stops the upstream's work when a client cancels, in both eras", async () => {
    const v1 = await v1As(gateway.url, "alice")
    const v2 = new Client({ name: "modern", version: "1" }, { versionNegotiation: { mode: "auto" } })
    await v2.connect(new StreamableHTTPClientTransport(new URL(gateway.url), asUser("alice")))
    for (const call of [
      (signal: AbortSignal) => v1.callTool({ name: "fx_slow", arguments: { steps: 30, ms: 100 } }, undefined, { signal }),
      (signal: AbortSignal) => v2.callTool({ name: "fx_slow", arguments: { steps: 30, ms: 100 } }, { signal })
    ]) {
      const before = { ...fx.slowCalls }
      const controller = new AbortController()
      const pending = call(controller.signal).catch((e: Error) => e)
      await eventually(() => fx.slowCalls.started > before.started, 10_000, "the call to start upstream")
      controller.abort("user changed their mind")
      expect(await pending).toBeInstanceOf(Error)
      await eventually(() => fx.slowCalls.cancelled > before.cancelled, 10_000, "the upstream to see the cancellation")
      expect(fx.slowCalls.completed).toBe(before.completed)
    }
    await v1.close()
    await v2.close()
  })
})

describe("resource subscriptions", () => {
  it("deliver an upstream's resource updates to subscribers in both eras, and to nobody else", async () => {
    const { ResourceUpdatedNotificationSchema } = await import("@modelcontextprotocol/sdk/types.js")
    const legacy = await v1As(gateway.url, "alice")
    const legacyUpdates: Array<string> = []
    legacy.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void legacyUpdates.push(n.params.uri))
    await legacy.subscribeResource({ uri: "fx-fixture://readme" })

    const modern = new Client({ name: "modern", version: "1" }, { versionNegotiation: { mode: "auto" } })
    await modern.connect(new StreamableHTTPClientTransport(new URL(gateway.url), asUser("alice")))
    const modernUpdates: Array<string> = []
    modern.setNotificationHandler("notifications/resources/updated", (n) => void modernUpdates.push(n.params.uri))
    const listening = await modern.listen({ resourceSubscriptions: ["fx-fixture://readme"] })

    const outsider = new Client({ name: "outsider", version: "1" }, { versionNegotiation: { mode: "auto" } })
    await outsider.connect(new StreamableHTTPClientTransport(new URL(gateway.url), asUser("bob")))
    const outsiderUpdates: Array<string> = []
    outsider.setNotificationHandler("notifications/resources/updated", (n) => void outsiderUpdates.push(n.params.uri))
    const outsiderListening = await outsider.listen({ resourceSubscriptions: ["fx-fixture://readme"] })

    await new Promise((r) => setTimeout(r, 300))
    fx.touch("fixture://readme")
    await eventually(() => legacyUpdates.length > 0 && modernUpdates.length > 0, 10_000, "both subscribers to hear the update")
    expect(legacyUpdates).toEqual(["fx-fixture://readme"])
    expect(modernUpdates).toEqual(["fx-fixture://readme"])
    await new Promise((r) => setTimeout(r, 300))
    expect(outsiderUpdates).toEqual([])

    await legacy.unsubscribeResource({ uri: "fx-fixture://readme" })
    await listening.close()
    await outsiderListening.close()
    await legacy.close()
    await modern.close()
    await outsider.close()
  })
})

describe("list_changed", () => {
  it("reaches only the sessions whose visible list changed", async () => {
    let aliceNotified = 0
    let bobNotified = 0
    const alice = await v1As(gateway.url, "alice")
    const bob = await v1As(gateway.url, "bob")
    alice.setNotificationHandler(ToolListChangedNotificationSchema, () => void aliceNotified++)
    bob.setNotificationHandler(ToolListChangedNotificationSchema, () => void bobNotified++)
    // Open the GET streams notifications travel on.
    await alice.listTools()
    await bob.listTools()
    await new Promise((r) => setTimeout(r, 500))
    fx.addTool("only_alice_sees_this")
    await eventually(async () => (await alice.listTools()).tools.some((t) => t.name === "fx_only_alice_sees_this"), 20_000)
    await eventually(() => aliceNotified > 0, 10_000, "alice notified")
    await new Promise((r) => setTimeout(r, 500))
    expect(bobNotified).toBe(0)
    expect((await bob.listTools()).tools.some((t) => t.name.startsWith("fx_"))).toBe(false)
    await alice.close()
    await bob.close()
  })
})
