/**
 * An MCP server that accepts only requests signed by `hmacSigned` (the example's upstream).
 * Its clock can run ahead or behind, to show the plugin's 401 → clock correction → retry.
 *
 * Run: `HMAC_SECRET=… PORT=9100 node --import tsx examples/custom-auth-plugin/signedUpstream.ts`
 * @module
 */
import { createMcpHandler, McpServer } from "@modelcontextprotocol/server"
import * as z from "zod"
// The repo's small Node adapter for fetch handlers; in your own server, your framework's.
import { serveFetch } from "../../test/fixtures/nodeAdapter.js"
import { verifySignature } from "./hmacSigned.js"

export interface SignedUpstream {
  readonly url: string
  /** Refusals so far, by reason. */
  readonly refusals: Array<"signature" | "timestamp">
  readonly accepted: () => number
  readonly close: () => Promise<void>
}

export const startSignedUpstream = async (options: {
  readonly keys: ReadonlyMap<string, string>
  /** How far this server's clock is off, in seconds. */
  readonly clockSkewSeconds?: number
  readonly port?: number
}): Promise<SignedUpstream> => {
  const refusals: Array<"signature" | "timestamp"> = []
  let accepted = 0
  const handler = createMcpHandler(() => {
    const server = new McpServer({ name: "signed", version: "1.0.0" })
    server.registerTool("echo", { description: "Echoes", inputSchema: z.object({ message: z.string() }) }, async ({ message }) => ({
      content: [{ type: "text", text: `signed echo: ${message}` }]
    }))
    return server
  })
  const served = await serveFetch(async (request) => {
    const now = Date.now() + (options.clockSkewSeconds ?? 0) * 1000
    const body = request.method === "POST" ? await request.clone().text() : ""
    const verdict = verifySignature(options.keys, { method: request.method, url: new URL(request.url), headers: request.headers, body }, Math.floor(now / 1000))
    if (!verdict.ok) {
      refusals.push(verdict.reason)
      return new Response(JSON.stringify({ error: `bad ${verdict.reason}` }), {
        status: 401,
        headers: { "content-type": "application/json", date: new Date(now).toUTCString(), "x-aperture-error": verdict.reason }
      })
    }
    accepted++
    return handler.fetch(request)
  }, options.port ?? 0)
  return {
    url: `http://127.0.0.1:${served.port}/mcp`,
    refusals,
    accepted: () => accepted,
    close: async () => {
      await handler.close()
      await served.close()
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const secret = process.env["HMAC_SECRET"]
  if (!secret) throw new Error("set HMAC_SECRET")
  const upstream = await startSignedUpstream({ keys: new Map([[process.env["HMAC_KEY_ID"] ?? "example", secret]]), port: Number(process.env["PORT"] ?? 9100) })
  process.stdout.write(`signed upstream at ${upstream.url}\n`)
}
