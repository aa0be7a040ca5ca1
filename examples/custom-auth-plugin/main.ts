/**
 * The whole example in one process: the HMAC-checking upstream on a free port, then Aperture in
 * front of it with `./aperture.config.ts` (the `hmacSigned` plugin signing every request), then
 * one call through the gateway to show the signature accepted.
 *
 * Run: `node --import tsx examples/custom-auth-plugin/main.ts` (HMAC_SECRET defaults to a demo value).
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { Aperture } from "aperture"
import { startSignedUpstream } from "./signedUpstream.js"

// A demo secret when none is set; in a real deployment it comes from your secret store.
process.env["HMAC_SECRET"] ??= "demo-secret-change-me"
const keyId = process.env["HMAC_KEY_ID"] ?? "example"
const upstream = await startSignedUpstream({ keys: new Map([[keyId, process.env["HMAC_SECRET"]]]) })
console.log(`signed upstream at ${upstream.url}`)

// The config reads the upstream's URL from the environment when it is loaded.
process.env["SIGNED_UPSTREAM_URL"] = upstream.url
const { default: config } = await import("./aperture.config.js")
const gateway = await Aperture.start({ ...config, server: { host: "127.0.0.1", port: Number(process.env["PORT"] ?? 8080) } })

const client = new Client({ name: "custom-auth-plugin-example", version: "1.0.0" }, { versionNegotiation: { mode: "auto" } })
await client.connect(new StreamableHTTPClientTransport(new URL(gateway.url)))
// The connector is ready once its first signed connection succeeds; wait for its tool.
for (let i = 0; i < 100 && !(await client.listTools()).tools.some((t) => t.name === "signed_echo"); i++) {
  await new Promise((resolve) => setTimeout(resolve, 100))
}
const result = await client.callTool({ name: "signed_echo", arguments: { message: "hello" } })
const text = (result.content as Array<{ type: string; text?: string }>).find((c) => c.type === "text")?.text
console.log(`signed_echo through Aperture: ${text} (${upstream.accepted()} signed requests accepted, ${upstream.refusals.length} refused)`)
await client.close()
console.log(`Try: claude mcp add --transport http aperture ${gateway.url}   (Ctrl-C to stop)`)

const stop = async () => {
  await gateway.close()
  await upstream.close()
  process.exit(0)
}
process.once("SIGINT", stop)
process.once("SIGTERM", stop)
