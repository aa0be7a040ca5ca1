/**
 * The gateway end to end with real peers: upstreams built with both SDK lines and the official
 * everything server, reached by v1 (2025-11-25) and v2 (2026-07-28) clients.
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { grant, mcp } from "../src/config/dsl.js"
import { connectorsOf, connectV1, connectV2, eventually, everythingStdio, startGateway } from "./helpers/gateway.js"
import { startV1Upstream, type V1Upstream } from "./fixtures/v1Upstream.js"
import { LONG_TOOL_NAME, startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"

const SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"
/** Results are compared without the serverInfo stamp each 2026 server adds to its own results. */
const unstamped = (result: Record<string, unknown>) => {
  const { _meta, ...rest } = result as { _meta?: Record<string, unknown> }
  const { [SERVER_INFO_KEY]: _, ...meta } = _meta ?? {}
  return Object.keys(meta).length > 0 ? { ...rest, _meta: meta } : rest
}

let fx: V2Upstream
let legacy: V1Upstream
let gateway: RunningGateway

beforeAll(async () => {
  fx = await startV2Upstream({ name: "fx" })
  legacy = await startV1Upstream("legacy")
  gateway = await startGateway({
    connectors: {
      everything: everythingStdio(),
      fx: mcp({ url: fx.url, labels: ["fixtures"] }),
      old: mcp({ url: legacy.url })
    },
    grants: [grant({ src: ["local"], connectors: ["**"] })]
  })
  await eventually(async () => (await connectorsOf(gateway)).connectors.every((c) => c.status === "ready"), 30_000, "connectors ready")
})

afterAll(async () => {
  await gateway?.close()
  await fx?.close()
  await legacy?.close()
})

describe("aggregation", () => {
  it("lists the tools of every upstream under its prefix, to both client generations", async () => {
    const v2 = await connectV2(gateway.url)
    const { client: v1 } = await connectV1(gateway.url)
    for (const client of [v2, v1] as const) {
      const names = (await client.listTools()).tools.map((t) => t.name)
      expect(names).toContain("everything_echo")
      expect(names).toContain("fx_echo")
      expect(names).toContain("old_hello")
      expect(names.filter((n) => !/^(everything|fx|old)_/.test(n))).toEqual([])
    }
    expect(v2.getNegotiatedProtocolVersion()).toBe("2026-07-28")
    await v2.close()
    await v1.close()
  })

  it("routes each call to its upstream", async () => {
    const client = await connectV2(gateway.url)
    expect(await client.callTool({ name: "everything_echo", arguments: { message: "a" } })).toMatchObject({
      content: [{ type: "text", text: "Echo: a" }]
    })
    expect(await client.callTool({ name: "fx_whoami", arguments: {} })).toMatchObject({ content: [{ text: "fx" }] })
    expect(await client.callTool({ name: "old_hello", arguments: { who: "me" } })).toMatchObject({
      content: [{ text: "hello me from legacy" }]
    })
    await client.close()
  })
})

describe("pass-through", () => {
  it("keeps tool definitions exactly, apart from the name", async () => {
    const direct = new Client({ name: "direct", version: "1" }, { versionNegotiation: { mode: "auto" } })
    await direct.connect(new StreamableHTTPClientTransport(new URL(fx.url)))
    const viaGateway = await connectV2(gateway.url)
    const directTools = (await direct.listTools()).tools
    const gatewayTools = (await viaGateway.listTools()).tools
    for (const name of ["echo", "structured", "media", "fails", "slow"]) {
      const d = directTools.find((t) => t.name === name)!
      const g = gatewayTools.find((t) => t.name === `fx_${name}`)!
      expect({ ...g, name: d.name }).toEqual(d)
    }
    const echo = gatewayTools.find((t) => t.name === "fx_echo")!
    expect(echo.annotations).toEqual({ readOnlyHint: true, title: "Echo" })
    expect(echo._meta).toEqual({ "example.com/owner": "tests" })
    expect(gatewayTools.find((t) => t.name === "fx_structured")!.outputSchema).toBeDefined()
    await direct.close()
    await viaGateway.close()
  })

  it("returns results exactly as the upstream does, in both eras", async () => {
    const direct = new Client({ name: "direct", version: "1" }, { versionNegotiation: { mode: "auto" } })
    await direct.connect(new StreamableHTTPClientTransport(new URL(fx.url)))
    const v2 = await connectV2(gateway.url)
    const { client: v1 } = await connectV1(gateway.url)
    const calls = [
      ["structured", { a: 2, b: 3 }],
      ["media", {}],
      ["fails", {}],
      ["echo", { message: "x" }]
    ] as const
    for (const [name, args] of calls) {
      // As the upstream's, with resource URIs in the exposed form a caller can read back.
      const expected = JSON.parse(
        JSON.stringify(unstamped(await direct.callTool({ name, arguments: { ...args } }) as Record<string, unknown>))
          .replaceAll('"uri":"fixture://', '"uri":"fx-fixture://')
      )
      const viaV2 = unstamped(await v2.callTool({ name: `fx_${name}`, arguments: { ...args } }) as Record<string, unknown>)
      const viaV1 = unstamped(await v1.callTool({ name: `fx_${name}`, arguments: { ...args } }) as Record<string, unknown>)
      expect(viaV2).toEqual(expected)
      expect(viaV1).toEqual(expected)
    }
    const stamped = await v2.callTool({ name: "fx_echo", arguments: { message: "y" } })
    expect(stamped._meta?.[SERVER_INFO_KEY]).toMatchObject({ name: "aperture" })
    const media = await v1.callTool({ name: "fx_media", arguments: {} }) as { content: Array<{ type: string }> }
    expect(media.content.map((c) => c.type)).toEqual(["image", "audio", "resource", "resource_link"])
    const structured = await v1.callTool({ name: "fx_structured", arguments: { a: 2, b: 3 } })
    expect(structured.structuredContent).toEqual({ sum: 5, product: 6 })
    expect((await v1.callTool({ name: "fx_fails", arguments: {} })).isError).toBe(true)
    await direct.close()
    await v2.close()
    await v1.close()
  })

  it("forwards progress notifications of a long call", async () => {
    const { client } = await connectV1(gateway.url)
    const progress: Array<number> = []
    const result = await client.callTool({ name: "fx_slow", arguments: { steps: 3, ms: 50 } }, undefined, {
      onprogress: (p) => progress.push(p.progress)
    })
    expect(result.content).toEqual([{ type: "text", text: "done after 3" }])
    expect(progress).toEqual([1, 2, 3])
    await client.close()
  })

  it("serves prompts, resources, templates and completions", async () => {
    for (const client of [await connectV2(gateway.url), (await connectV1(gateway.url)).client]) {
      const prompts = (await client.listPrompts()).prompts.map((p) => p.name)
      expect(prompts).toContain("fx_greet")
      const prompt = await client.getPrompt({ name: "fx_greet", arguments: { name: "Ada" } })
      expect(prompt.messages[0]!.content).toEqual({ type: "text", text: "Hello Ada" })

      const resources = (await client.listResources()).resources.map((r) => r.uri)
      expect(resources).toContain("fx-fixture://readme")
      const read = await client.readResource({ uri: "fx-fixture://readme" })
      expect(read.contents[0]).toMatchObject({ uri: "fx-fixture://readme", text: "readme of fx" })

      const templates = (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate)
      expect(templates).toContain("fx-fixture://items/{id}")
      const item = await client.readResource({ uri: "fx-fixture://items/7" })
      expect(item.contents[0]).toMatchObject({ text: "item 7" })

      const completion = await client.complete({
        ref: { type: "ref/resource", uri: "fx-fixture://items/{id}" },
        argument: { name: "id", value: "1" }
      })
      expect(completion.completion.values).toEqual(["1", "10"])
      await client.close()
    }
  })

  it("answers ping", async () => {
    const { client } = await connectV1(gateway.url)
    await expect(client.ping()).resolves.toEqual({})
    await client.close()
  })
})

describe("names", () => {
  it("shortens a name over 64 characters deterministically, and it still routes", async () => {
    const client = await connectV2(gateway.url)
    const tools = (await client.listTools()).tools.map((t) => t.name)
    expect(tools.every((n) => n.length <= 64 && /^[A-Za-z0-9_-]+$/.test(n))).toBe(true)
    const long = tools.find((n) => n.startsWith("fx_a_really_long"))!
    expect(long).toBeDefined()
    expect(long).toHaveLength(64)
    expect(await client.callTool({ name: long, arguments: {} })).toMatchObject({ content: [{ text: "long" }] })
    expect(LONG_TOOL_NAME.length + 3).toBeGreaterThan(64)
    await client.close()
  })
})

describe("2025-era sessions", () => {
  it("issues Mcp-Session-Id; an unknown session is 404; DELETE ends the session", async () => {
    const { client, transport } = await connectV1(gateway.url)
    const sessionId = transport.sessionId!
    expect(sessionId).toMatch(/^[\x21-\x7e]+$/)
    const post = (id: string) =>
      fetch(gateway.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-session-id": id,
          "mcp-protocol-version": "2025-11-25"
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" })
      })
    expect((await post("no-such-session")).status).toBe(404)
    expect((await post(sessionId)).status).toBe(200)
    await transport.terminateSession()
    expect((await post(sessionId)).status).toBe(404)
    await client.close()
  })

  it("refuses a request without a session id with 400", async () => {
    const response = await fetch(gateway.url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" })
    })
    expect(response.status).toBe(400)
  })
})

describe("list_changed", () => {
  it("re-reads an upstream's tools when it says they changed, and tells 2025-era sessions", async () => {
    let notified = 0
    const { client } = await connectV1(gateway.url, { onToolsChanged: () => notified++ })
    legacy.addTool("added_later")
    // The upstream announces on its session's GET stream; the gateway re-reads and notifies.
    await eventually(async () => (await client.listTools()).tools.some((t) => t.name === "old_added_later"), 20_000, "old_added_later")
    await eventually(() => notified > 0, 10_000, "tools/list_changed at the client")
    await client.close()
  })

  it("follows a 2026-era upstream's list changes", async () => {
    const client = await connectV2(gateway.url)
    fx.addTool("fresh")
    await eventually(async () => (await client.listTools()).tools.some((t) => t.name === "fx_fresh"), 20_000, "fx_fresh")
    expect(await client.callTool({ name: "fx_fresh", arguments: {} })).toMatchObject({ content: [{ text: "extra fresh" }] })
    await client.close()
  })
})
