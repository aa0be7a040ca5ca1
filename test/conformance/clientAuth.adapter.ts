/**
 * The gateway as the client under test for the conformance suite's client-credentials auth
 * scenarios. The runner starts a protected MCP server and its authorization server, then runs
 * this with the server's URL as the last argument and the credentials in
 * `MCP_CONFORMANCE_CONTEXT`. The adapter turns that into a connector (no `tokenUrl`: the
 * gateway discovers it the MCP way), starts Aperture, waits for the connector, then lists and
 * calls the upstream's tool through `/v1/mcp`. Exit 0 when the call came back.
 *
 * Run by `test/conformance/clientAuth.test.ts`; by hand:
 *   npx -y -p node@22 -- npx conformance client --scenario auth/client-credentials-basic \
 *     --command "node --import tsx test/conformance/clientAuth.adapter.ts"
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { Aperture } from "../../src/Aperture.js"
import { grant, mcp } from "../../src/config/dsl.js"
import { clientCredentials } from "../../plugins/auth/clientCredentials.js"

interface ConformanceContext {
  readonly name: string
  readonly client_id: string
  readonly client_secret?: string
  readonly private_key_pem?: string
  readonly signing_algorithm?: string
}

const fail = (message: string): never => {
  process.stderr.write(`adapter: ${message}\n`)
  process.exit(1)
}

const serverUrl = process.argv.at(-1)
if (serverUrl === undefined || !/^https?:\/\//.test(serverUrl)) fail("expected the server URL as the last argument")
const context = JSON.parse(process.env["MCP_CONFORMANCE_CONTEXT"] ?? "null") as ConformanceContext | null
if (context === null) fail("MCP_CONFORMANCE_CONTEXT is not set")

const auth = context!.private_key_pem !== undefined
  ? clientCredentials({
    clientId: context!.client_id,
    authMethod: "private_key_jwt",
    privateKey: context!.private_key_pem,
    ...(context!.signing_algorithm !== undefined && { signingAlg: context!.signing_algorithm as "ES256" })
  })
  : clientCredentials({ clientId: context!.client_id, clientSecret: context!.client_secret ?? fail("no client_secret in the context") })

const gateway = await Aperture.start({
  server: { port: 0 },
  connectors: { conformance: mcp({ url: serverUrl!, auth }) },
  grants: [grant({ src: ["local"], connectors: ["**"] })]
})

try {
  const deadline = Date.now() + 20_000
  let state: { status: string; error?: string } | undefined
  while (Date.now() < deadline) {
    const response = await fetch(`${gateway.origin}/api/connectors`)
    state = ((await response.json()) as { connectors: Array<{ status: string; error?: string }> }).connectors[0]
    if (state?.status !== "connecting") break
    await new Promise((r) => setTimeout(r, 100))
  }
  if (state?.status !== "ready") fail(`connector is ${state?.status ?? "missing"}: ${state?.error ?? ""}`)

  const client = new Client({ name: "conformance-adapter", version: "1.0.0" }, { versionNegotiation: { mode: "auto" } })
  await client.connect(new StreamableHTTPClientTransport(new URL(gateway.url)))
  const tools = (await client.listTools()).tools.map((t) => t.name)
  const tool = tools.find((name) => name.startsWith("conformance_"))
  if (tool === undefined) fail(`no upstream tool listed (got ${tools.join(", ")})`)
  const result = await client.callTool({ name: tool!, arguments: {} })
  process.stdout.write(`${tool}: ${JSON.stringify(result.content)}\n`)
  await client.close()
} finally {
  await gateway.close()
}
