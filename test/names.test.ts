/**
 * Exposed names: prefixes, the 64-character rule, stable shortening.
 */
import { describe, expect, it } from "vitest"
import { buildIndex, type ConnectorState } from "../src/catalog/index.js"
import { exposedName, exposedUri, MAX_TOOL_NAME_LENGTH, splitPrefixedUri } from "../src/catalog/names.js"
import type { McpConnector } from "../src/config/model.js"
import { Duration } from "effect"

describe("exposed names", () => {
  it("prefixes tools and prompts with <id>_ and resources with <id>-", () => {
    expect(exposedName("github", "list_repos", true)).toBe("github_list_repos")
    expect(exposedName("github", "list_repos", false)).toBe("list_repos")
    expect(exposedUri("fx", "file:///a/b", true)).toBe("fx-file:///a/b")
    expect(splitPrefixedUri("fx-file:///a/b")).toEqual({ connectorId: "fx", uri: "file:///a/b" })
    expect(splitPrefixedUri("file:///a")).toBeUndefined()
  })

  it("shortens long or unusual names to 64 characters of [A-Za-z0-9_-], deterministically and distinctly", () => {
    const long = "x".repeat(100)
    const a = exposedName("conn", long, true)
    expect(a).toHaveLength(MAX_TOOL_NAME_LENGTH)
    expect(a).toMatch(/^conn_x+_[0-9a-f]{8}$/)
    expect(exposedName("conn", long, true)).toBe(a)
    expect(exposedName("conn", `${long}y`, true)).not.toBe(a)
    const dotted = exposedName("fx", "a.b", true)
    expect(dotted).toMatch(/^fx_a_b_[0-9a-f]{8}$/)
    expect(dotted).not.toBe(exposedName("fx", "a_b", true))
    expect(exposedName("fx", "exactly", true)).toBe("fx_exactly")
  })
})

const connector = (id: string, prefix: boolean, index: number): McpConnector => ({
  kind: "mcp",
  id,
  index,
  url: new URL(`http://${id}.example.com/mcp`),
  auth: undefined,
  userAuth: undefined,
  prefix,
  isolation: "caller",
  labels: [],
  description: undefined,
  timeout: Duration.seconds(60)
})

const ready = (c: McpConnector, tools: Array<string>): ConnectorState => ({
  connector: c,
  status: "ready",
  error: undefined,
  since: 0,
  attempted: true,
  upstream: undefined,
  lists: { tools: tools.map((name) => ({ name })), prompts: [], resources: [], templates: [] }
})

describe("the catalog index", () => {
  it("with prefix: false, a colliding name stays with the first connector and the collision names both", () => {
    const index = buildIndex([ready(connector("a", false, 0), ["echo", "only_a"]), ready(connector("b", false, 1), ["echo", "only_b"])])
    expect(index.tools.map((e) => `${e.connector.id}:${e.exposed["name"]}`)).toEqual(["a:echo", "a:only_a", "b:only_b"])
    expect(index.collisions.get("b")).toEqual([
      "tool \"echo\" of connector \"b\" collides with connector \"a\" (prefix: false); only \"a\"'s is exposed"
    ])
    expect(index.collisions.has("a")).toBe(false)
  })

  it("leaves connectors that are not ready out", () => {
    const down: ConnectorState = { ...ready(connector("a", true, 0), ["echo"]), status: "down" }
    expect(buildIndex([down]).tools).toEqual([])
  })
})
