import { Either } from "effect"
import { describe, expect, it } from "vitest"
import type { CatalogSnapshot } from "../catalog/Catalog.js"
import { buildIndex, type ConnectorState, emptyLists } from "../catalog/index.js"
import { splitPrefixedUri } from "../catalog/names.js"
import type { Connector } from "../config/model.js"
import { callerPolicy } from "../grants/policy.js"
import { parsePattern } from "../config/grantPattern.js"
import { exposeResultUris, unlistedResource } from "./resourceUris.js"

const ev = { id: "ev", prefix: true }

describe("exposeResultUris", () => {
  it("prefixes resource links and embedded resources in a tool result, and nothing else", () => {
    const structured = { link: "demo://in/structured" }
    const text = { type: "text", text: "see demo://a" }
    // The same tool result with its resource URIs under `scheme`: as the upstream sent it, and as exposed.
    const toolResult = (scheme: string) => ({
      content: [
        text,
        { type: "resource_link", uri: `${scheme}://a`, name: "A" },
        { type: "resource", resource: { uri: `${scheme}://b`, text: "b" } }
      ],
      structuredContent: structured,
      isError: false
    })
    const result = toolResult("demo")
    const exposed = exposeResultUris("tools/call", ev, result)
    expect(exposed).toEqual(toolResult("ev-demo"))
    // The upstream's result is not changed; unchanged items are shared, not copied.
    expect(result.content[1]).toEqual({ type: "resource_link", uri: "demo://a", name: "A" })
    expect((exposed["content"] as Array<unknown>)[0]).toBe(text)
    expect(exposed["structuredContent"]).toBe(structured)
  })

  it("returns the very result when it holds no resource URI, or the connector is not prefixed", () => {
    const plain = { content: [{ type: "text", text: "hi" }, { type: "image", data: "", mimeType: "image/png" }] }
    expect(exposeResultUris("tools/call", ev, plain)).toBe(plain)
    const linked = { content: [{ type: "resource_link", uri: "demo://a", name: "A" }] }
    expect(exposeResultUris("tools/call", { id: "ev", prefix: false }, linked)).toBe(linked)
    expect(exposeResultUris("completion/complete", ev, linked)).toBe(linked)
    const noContent = { structuredContent: {} }
    expect(exposeResultUris("tools/call", ev, noContent)).toBe(noContent)
  })

  it("prefixes prompt messages' embedded resources and resources/read contents", () => {
    const prompt = {
      messages: [
        { role: "user", content: { type: "text", text: "t" } },
        { role: "user", content: { type: "resource", resource: { uri: "demo://p", blob: "AA==" } } }
      ]
    }
    expect(exposeResultUris("prompts/get", ev, prompt)["messages"]).toEqual([
      prompt.messages[0],
      { role: "user", content: { type: "resource", resource: { uri: "ev-demo://p", blob: "AA==" } } }
    ])
    const read = { contents: [{ uri: "demo://r", text: "r" }, { uri: "demo://r#2", blob: "AA==" }] }
    expect(exposeResultUris("resources/read", ev, read)).toEqual({
      contents: [{ uri: "ev-demo://r", text: "r" }, { uri: "ev-demo://r#2", blob: "AA==" }]
    })
  })
})

describe("unlistedResource", () => {
  const connector = (id: string, prefix: boolean): Connector => ({ id, prefix, kind: "stdio", labels: [] }) as unknown as Connector
  const state = (c: Connector, status: ConnectorState["status"] = "ready"): ConnectorState => ({
    connector: c,
    status,
    error: undefined,
    since: 0,
    attempted: true,
    lists: emptyLists,
    upstream: undefined
  })
  const states = [state(connector("ev", true)), state(connector("raw", false)), state(connector("off", true), "down")]
  const snapshot: CatalogSnapshot = { version: 1, states, byId: new Map(states.map((s) => [s.connector.id, s])), index: buildIndex(states) }
  const policyOf = (...patterns: Array<string>) =>
    callerPolicy([{ src: ["*"], connectors: patterns.map((p) => Either.getOrThrow(parsePattern(p))) }], { login: "a", groups: [], tags: [] } as never)
  const read = (uri: string, ...patterns: Array<string>) => unlistedResource(snapshot, policyOf(...patterns), splitPrefixedUri(uri))

  it("routes <id>-<uri> to the connector when the caller's grants cover the URI as a resource", () => {
    const resolved = read("ev-demo://resource/dynamic/text/7", "ev/resources/**")
    expect(resolved?.entry.connector.id).toBe("ev")
    expect(resolved?.upstreamUri).toBe("demo://resource/dynamic/text/7")
    expect(resolved?.grant.pattern).toBe("ev/resources/**")
    expect(read("ev-demo://x", "ev/**")?.upstreamUri).toBe("demo://x")
  })

  it("denies by default: no grant for the URI, an unprefixed or unready connector, no prefix", () => {
    expect(read("ev-demo://x", "ev/tools/**")).toBeUndefined()
    expect(read("ev-demo://resource/x", "ev/resources/demo://resource/static/**")).toBeUndefined()
    expect(read("ev-demo://x", "other/**")).toBeUndefined()
    expect(read("raw-demo://x", "**")).toBeUndefined()
    expect(read("off-demo://x", "**")).toBeUndefined()
    expect(read("nope-demo://x", "**")).toBeUndefined()
    expect(read("demo://x", "**")).toBeUndefined()
  })
})
