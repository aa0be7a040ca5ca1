/**
 * S7's direct baseline: a fresh Node process that imports only the MCP SDK client, then connects
 * `<count>` bare clients to `<base>/mcp/<k>` and lists their tools, 32 at a time (the gateway's
 * discovery concurrency). Like the gateway's, each client negotiates the protocol era
 * (`versionNegotiation: auto`: a 2026 `server/discover` probe, then the 2025 handshake). It
 * prints `ready <ms since start>` and exits. Plain JavaScript, run by `node` itself, so no
 * loader stands between it and the gateway's compiled start-up.
 * Run: `node bench/directDiscovery.mjs <base> <count>`.
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"

const [base, countArg] = process.argv.slice(2)
const count = Number(countArg)
const CONCURRENCY = 32
const clients = []
let next = 0

const worker = async () => {
  while (next < count) {
    const k = next++
    const client = new Client({ name: "direct-discovery", version: "1.0.0" }, { capabilities: {}, versionNegotiation: { mode: "auto" } })
    await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp/${k}`)))
    if (client.getServerCapabilities()?.tools) await client.listTools()
    clients.push(client)
  }
}

await Promise.all(Array.from({ length: Math.min(CONCURRENCY, count) }, worker))
process.stdout.write(`ready ${Math.round(performance.now())}\n`)
await Promise.all(clients.map((c) => c.close().catch(() => {})))
process.exit(0)
