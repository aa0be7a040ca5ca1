/**
 * The benchmark's realistic upstream: a v2 SDK `McpServer` over streamable HTTP
 * (`createMcpHandler`), with `echo` and `progress` (10 progress notifications).
 * Run: `node --import tsx bench/upstreams/sdkServer.ts <port>`; prints its URL when listening.
 */
import { createMcpHandler, McpServer } from "@modelcontextprotocol/server"
import * as z from "zod"
import { serveFetch } from "../../test/fixtures/nodeAdapter.js"

const handler = createMcpHandler(() => {
  const server = new McpServer({ name: "bench-sdk", version: "1.0.0" })
  server.registerTool("echo", { description: "Echoes", inputSchema: z.object({ message: z.string() }) }, async ({ message }) => ({
    content: [{ type: "text", text: message }]
  }))
  server.registerTool("progress", { description: "Reports progress ten times", inputSchema: z.object({ message: z.string() }) }, async ({ message }, ctx) => {
    const progressToken = ctx.mcpReq._meta?.progressToken
    if (progressToken !== undefined) {
      for (let progress = 1; progress <= 10; progress++) {
        await ctx.mcpReq.notify({ method: "notifications/progress", params: { progressToken, progress, total: 10 } } as never)
      }
    }
    return { content: [{ type: "text", text: message }] }
  })
  return server
})
const served = await serveFetch((request) => handler.fetch(request), Number(process.argv[2] ?? 0))
process.stdout.write(`http://127.0.0.1:${served.port}/mcp\n`)
