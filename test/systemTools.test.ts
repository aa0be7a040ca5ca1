/**
 * `aperture_list_connectors`: listed (both protocol eras) only when an HTTP connector exists and
 * the caller holds a proxy grant on one; lists exactly those connectors; for anyone else it is
 * absent and calling it answers as an unknown tool does.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { grant, http, loopback, mcp } from "../src/index.js"
import { startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"
import { testUsers } from "./helpers/testUsers.js"
import { connectorsOf, connectV1, connectV2, errorOf, eventually, startGateway } from "./helpers/gateway.js"
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"

const connectAs = async (url: string, login: string) => {
  const client = new Client({ name: "test", version: "1.0.0" }, { versionNegotiation: { mode: "auto" } })
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { "x-test-user": login } } }))
  return client
}

let fx: V2Upstream
let gateway: RunningGateway

beforeAll(async () => {
  fx = await startV2Upstream({ name: "fx" })
  gateway = await startGateway({
    connectors: {
      fx: mcp({ url: fx.url }),
      github: http({ url: "https://api.github.com", description: "GitHub REST API", methods: ["GET"] }),
      billing: http({ url: "https://billing.example.com/v2", description: "Billing", labels: ["finance"] })
    },
    identity: [testUsers({}), loopback({ login: "local" })],
    grants: [
      grant({ src: ["local"], connectors: ["fx/tools/echo", "github/proxy/repos/**"] }),
      grant({ src: ["accountant"], connectors: ["label:finance"] }),
      grant({ src: ["toolsonly"], connectors: ["fx/tools/*", "github/tools/*"] })
    ]
  })
  await eventually(async () => (await connectorsOf(gateway)).connectors.find((c) => c.id === "fx")?.status === "ready", 30_000)
})

afterAll(async () => {
  await gateway?.close()
  await fx?.close()
})

describe("aperture_list_connectors", () => {
  it("is listed for a caller with a proxy grant, in both eras, and lists only that caller's HTTP connectors", async () => {
    for (const client of [await connectV2(gateway.url), (await connectV1(gateway.url)).client]) {
      const tools = (await client.listTools()).tools
      expect(tools.map((t) => t.name)).toEqual(["fx_echo", "aperture_list_connectors"])
      const result = await client.callTool({ name: "aperture_list_connectors", arguments: {} })
      expect(result.structuredContent).toEqual({
        connectors: [{ id: "github", description: "GitHub REST API", base_path: "/v1/connectors/github/", methods: ["GET"] }]
      })
      expect(JSON.parse((result.content as Array<{ text: string }>)[0]!.text)).toEqual(result.structuredContent)
      await client.close()
    }
  })

  it("follows label grants", async () => {
    const client = await connectAs(gateway.url, "accountant")
    const result = await client.callTool({ name: "aperture_list_connectors", arguments: {} })
    expect((result.structuredContent as { connectors: Array<{ id: string }> }).connectors.map((c) => c.id)).toEqual(["billing"])
    await client.close()
  })

  it("is absent for callers without a proxy grant, and calling it answers as an unknown tool", async () => {
    const client = await connectAs(gateway.url, "toolsonly")
    const names = (await client.listTools()).tools.map((t) => t.name)
    expect(names).toContain("fx_echo")
    expect(names).not.toContain("aperture_list_connectors")
    const denied = await errorOf(client.callTool({ name: "aperture_list_connectors", arguments: {} }))
    const unknown = await errorOf(client.callTool({ name: "aperture_no_such_tool", arguments: {} }))
    expect(denied.code).toBe(unknown.code)
    expect(denied.message.replace("aperture_list_connectors", "NAME")).toBe(unknown.message.replace("aperture_no_such_tool", "NAME"))
    await client.close()
  })

  it("does not exist on a gateway without HTTP connectors", async () => {
    const plain = await startGateway({ connectors: { fx: mcp({ url: fx.url }) }, grants: [grant({ src: ["local"], connectors: ["**"] })] })
    try {
      await eventually(async () => (await connectorsOf(plain)).connectors.find((c) => c.id === "fx")?.status === "ready", 30_000)
      const client = await connectV2(plain.url)
      expect((await client.listTools()).tools.map((t) => t.name)).not.toContain("aperture_list_connectors")
      await expect(client.callTool({ name: "aperture_list_connectors", arguments: {} })).rejects.toThrow(/not found/)
      await client.close()
    } finally {
      await plain.close()
    }
  })
})
