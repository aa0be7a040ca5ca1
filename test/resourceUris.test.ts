/**
 * Resource URIs handed out in results can be read back through the gateway: tools' resource
 * links and embedded resources, prompts' embedded resources and `resources/read` contents carry
 * the exposed `<id>-<uri>`, with server-everything over streamable HTTP (the direct path) and
 * over stdio (the SDK client), a 2026-era upstream, and callers of both eras. Reading one still
 * takes a grant.
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { apiKeys, grant, mcp } from "../src/index.js"
import { errorOf, everythingStdio, startGateway, untilReady } from "./helpers/gateway.js"
import { everythingEntry, freePort, spawnProcess, type Spawned } from "./helpers/processes.js"
import { startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"

const keys: Record<string, string> = {
  alice: `alice-${crypto.randomUUID()}`,
  bob: `bob-${crypto.randomUUID()}`,
  carol: `carol-${crypto.randomUUID()}`
}
const asUser = (user: string) => ({ requestInit: { headers: { authorization: `Bearer ${keys[user]!}` } } })

/** The calls both client generations offer, as the tests use them. */
interface Caller {
  readonly era: string
  readonly callTool: (params: { name: string; arguments: Record<string, unknown> }) => Promise<unknown>
  readonly getPrompt: (params: { name: string; arguments: Record<string, string> }) => Promise<unknown>
  readonly readResource: (params: { uri: string }) => Promise<{ contents: Array<{ uri: string; text?: string; blob?: string }> }>
  readonly close: () => Promise<void>
}

const v1As = async (url: string, user: string): Promise<Caller> => {
  const client = new V1Client({ name: `v1-${user}`, version: "1" })
  await client.connect(new V1Transport(new URL(url), asUser(user)))
  return {
    era: "2025-11-25 (v1 client)",
    callTool: (params) => client.callTool(params),
    getPrompt: (params) => client.getPrompt(params),
    readResource: (params) => client.readResource(params),
    close: () => client.close()
  }
}

const v2As = async (url: string, user: string): Promise<Caller> => {
  const client = new Client({ name: `v2-${user}`, version: "1" }, { versionNegotiation: { mode: "auto" } })
  await client.connect(new StreamableHTTPClientTransport(new URL(url), asUser(user)))
  return {
    era: "2026-07-28 (v2 client)",
    callTool: (params) => client.callTool(params),
    getPrompt: (params) => client.getPrompt(params),
    readResource: (params) => client.readResource(params) as ReturnType<Caller["readResource"]>,
    close: () => client.close()
  }
}

type Block = { type: string; uri?: string; text?: string; resource?: { uri: string } }
const contentOf = (result: unknown) => (result as { content: Array<Block> }).content

let everythingHttp: Spawned
let fx: V2Upstream
let gateway: RunningGateway
const callers: Array<Caller> = []

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
    identity: [apiKeys({ keys: Object.fromEntries(Object.entries(keys).map(([login, key]) => [key, { login }])) })],
    grants: [
      grant({ src: ["alice"], connectors: ["ev/**", "local/**", "fx/**"] }),
      // Bob may read dynamic text resources (through their template), not blobs.
      grant({ src: ["bob"], connectors: ["ev/tools/**", "ev/templates/demo://resource/dynamic/text/*"] }),
      // Carol may call the tools, and read nothing.
      grant({ src: ["carol"], connectors: ["ev/tools/**"] })
    ]
  })
  await untilReady(gateway, 3)
  callers.push(await v1As(gateway.url, "alice"), await v2As(gateway.url, "alice"))
}, 60_000)

afterAll(async () => {
  for (const caller of callers) await caller.close().catch(() => {})
  await gateway?.close()
  await fx?.close()
  await everythingHttp?.kill()
})

/** Reads `uri` through the gateway and checks that every content it returns carries that very URI. */
const readsBack = async (caller: Caller, uri: string) => {
  const read = await caller.readResource({ uri })
  expect(read.contents.length, `${caller.era}: ${uri}`).toBeGreaterThan(0)
  for (const contents of read.contents) expect(contents.uri, caller.era).toBe(uri)
  return read
}

describe("resource URIs in results", () => {
  it("a tool's resource links are exposed and read back, for callers of both eras, over HTTP and stdio", async () => {
    for (const caller of callers) {
      for (const id of ["ev", "local"]) {
        const links = contentOf(await caller.callTool({ name: `${id}_get-resource-links`, arguments: { count: 4 } }))
          .filter((block) => block.type === "resource_link")
        expect(links.map((l) => l.uri), `${caller.era} ${id}`).toEqual([
          `${id}-demo://resource/dynamic/blob/1`,
          `${id}-demo://resource/dynamic/text/2`,
          `${id}-demo://resource/dynamic/blob/3`,
          `${id}-demo://resource/dynamic/text/4`
        ])
        for (const link of links) await readsBack(caller, link.uri!)
      }
    }
  })

  it("a tool's embedded resource is exposed and read back; its text is the tool's own", async () => {
    for (const caller of callers) {
      for (const id of ["ev", "local"]) {
        const content = contentOf(await caller.callTool({
          name: `${id}_get-resource-reference`,
          arguments: { resourceType: "Text", resourceId: 5 }
        }))
        const embedded = content.find((block) => block.type === "resource")!
        expect(embedded.resource!.uri, `${caller.era} ${id}`).toBe(`${id}-demo://resource/dynamic/text/5`)
        // Text that mentions a URI is the tool's words, left as they are.
        expect(content.at(-1)!.text).toBe("You can access this resource using the URI: demo://resource/dynamic/text/5")
        const read = await readsBack(caller, embedded.resource!.uri)
        expect(read.contents[0]!.text).toContain("Resource 5")
      }
    }
  })

  it("a prompt's embedded resource is exposed and read back", async () => {
    for (const caller of callers) {
      for (const id of ["ev", "local"]) {
        const prompt = await caller.getPrompt({ name: `${id}_resource-prompt`, arguments: { resourceType: "Blob", resourceId: "6" } }) as {
          messages: Array<{ content: Block }>
        }
        const embedded = prompt.messages.map((m) => m.content).find((c) => c.type === "resource")!
        expect(embedded.resource!.uri, `${caller.era} ${id}`).toBe(`${id}-demo://resource/dynamic/blob/6`)
        const read = await readsBack(caller, embedded.resource!.uri)
        expect(read.contents[0]!.blob).toBeTruthy()
      }
    }
  })

  it("a listed resource reads back under its exposed URI", async () => {
    for (const caller of callers) {
      await readsBack(caller, "ev-demo://resource/static/document/architecture.md")
      await readsBack(caller, "fx-fixture://readme")
    }
  })

  it("a 2026-era upstream's links and embedded resources are exposed too", async () => {
    for (const caller of callers) {
      const content = contentOf(await caller.callTool({ name: "fx_media", arguments: {} }))
      expect(content.find((b) => b.type === "resource")!.resource!.uri, caller.era).toBe("fx-fixture://doc/1")
      expect(content.find((b) => b.type === "resource_link")!.uri, caller.era).toBe("fx-fixture://doc/2")
    }
  })

  it("a session resource a tool just made is readable at once through the link it returned", async () => {
    for (const caller of callers) {
      for (const id of ["ev", "local"]) {
        const name = `hello-${id}-${caller.era.slice(0, 4)}.gz`
        const content = contentOf(await caller.callTool({
          name: `${id}_gzip-file-as-resource`,
          arguments: { name, data: "data:text/plain;base64,aGVsbG8=", outputType: "resourceLink" }
        }))
        expect(content[0]!.uri).toBe(`${id}-demo://resource/session/${name}`)
        const read = await readsBack(caller, content[0]!.uri!)
        expect(read.contents[0]!.blob).toBeTruthy()
      }
    }
  })
})

describe("reading a URI one was handed still takes a grant", () => {
  it("a caller granted the tool but not the resource gets not found, as for a resource that does not exist", async () => {
    const carol = await v1As(gateway.url, "carol")
    const bob = await v1As(gateway.url, "bob")
    try {
      const links = contentOf(await carol.callTool({ name: "ev_get-resource-links", arguments: { count: 2 } }))
        .filter((block) => block.type === "resource_link")
      expect(links.map((l) => l.uri)).toEqual(["ev-demo://resource/dynamic/blob/1", "ev-demo://resource/dynamic/text/2"])
      const missing = await errorOf(carol.readResource({ uri: "ev-demo://resource/nothing" }))
      for (const link of links) {
        const denied = await errorOf(carol.readResource({ uri: link.uri! }))
        expect(denied.code).toBe(missing.code)
        expect(denied.message.replace(link.uri!, "URI")).toBe(missing.message.replace("ev-demo://resource/nothing", "URI"))
      }
      // Bob's template grant covers the text link, not the blob one.
      await readsBack(bob, "ev-demo://resource/dynamic/text/2")
      expect((await errorOf(bob.readResource({ uri: "ev-demo://resource/dynamic/blob/1" }))).code).toBe(missing.code)
    } finally {
      await carol.close()
      await bob.close()
    }
  })

  it("a URI no listed resource or template matches goes upstream only when the caller's grants cover it", async () => {
    const [alice] = callers
    // Alice's grant covers ev's resources: the upstream decides, and says it does not exist.
    const upstreamAnswer = await errorOf(alice!.readResource({ uri: "ev-demo://resource/nothing" }))
    expect(upstreamAnswer.message).toContain("demo://resource/nothing")
    expect(upstreamAnswer.message).not.toContain("ev-demo://resource/nothing")
    // Carol's does not: the gateway's own "not found", naming the URI she asked for.
    const carol = await v1As(gateway.url, "carol")
    try {
      const refused = await errorOf(carol.readResource({ uri: "ev-demo://resource/nothing" }))
      expect(refused.message).toContain("ev-demo://resource/nothing")
    } finally {
      await carol.close()
    }
  })
})
