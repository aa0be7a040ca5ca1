/**
 * Adapter for the conformance suite's *client* scenarios with Aperture's upstream client as the
 * client under test: the scenario's server goes behind a gateway started here, and a client
 * drives each scenario through that gateway. The suite runs it as
 * `<command> <server-url>` with MCP_CONFORMANCE_SCENARIO set.
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { Aperture } from "../../src/Aperture.js"
import { grant, mcp } from "../../src/index.js"

const scenario = process.env["MCP_CONFORMANCE_SCENARIO"] ?? ""
const serverUrl = process.argv.at(-1) ?? ""

const gateway = await Aperture.start({
  connectors: { up: mcp({ url: serverUrl, timeout: 20_000 }) },
  grants: [grant({ src: ["local"], connectors: ["**"] })],
  server: { port: 0 }
})

const client = new Client({ name: "conformance-driver", version: "1.0.0" }, {
  versionNegotiation: { mode: "auto" },
  capabilities: { elicitation: { form: {} } }
})
// Accept every form, filling in nothing: defaults are the client's to apply (SEP-1034).
client.setRequestHandler("elicitation/create", async () => ({ action: "accept", content: {} }))

try {
  // The gateway connects on its own; wait until the upstream's tools are listed (or it failed).
  const deadline = Date.now() + 15_000
  let tools: Array<{ name: string }> = []
  await client.connect(new StreamableHTTPClientTransport(new URL(gateway.url)))
  while (Date.now() < deadline) {
    tools = (await client.listTools()).tools
    if (tools.length > 0 || scenario === "initialize") break
    await new Promise((r) => setTimeout(r, 100))
  }
  switch (scenario) {
    case "tools_call":
      await client.callTool({ name: "up_add_numbers", arguments: { a: 5, b: 3 } })
      break
    case "initialize":
      // Connecting upstream is the scenario; give the gateway a moment to finish its handshake.
      await new Promise((r) => setTimeout(r, 1000))
      break
    default:
      // Call every tool the scenario offers; its server checks what the gateway's client did.
      for (const tool of tools) await client.callTool({ name: tool.name, arguments: {} }).catch(() => {})
  }
} finally {
  await client.close().catch(() => {})
  await gateway.close()
}
