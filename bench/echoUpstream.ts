/**
 * The benchmark's upstream: a v2 SDK MCP server with one `echo` tool, over streamable HTTP.
 * Run: `node --import tsx bench/echoUpstream.ts <port>`; prints its URL when listening.
 */
import { createMcpHandler, McpServer } from "@modelcontextprotocol/server"
import * as z from "zod"
import { serveFetch } from "../test/fixtures/nodeAdapter.js"

const handler = createMcpHandler(() => {
  const server = new McpServer({ name: "bench-echo", version: "1.0.0" })
  server.registerTool("echo", { description: "Echoes", inputSchema: z.object({ message: z.string() }) }, async ({ message }) => ({
    content: [{ type: "text", text: message }]
  }))
  return server
})
const served = await serveFetch((request) => handler.fetch(request), Number(process.argv[2] ?? 0))
process.stdout.write(`http://127.0.0.1:${served.port}/mcp\n`)
