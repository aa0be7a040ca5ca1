/**
 * The benchmark's cheapest possible MCP upstream: `node:http`, streamable HTTP in JSON mode,
 * answers assembled from pre-serialised pieces. It makes the gateway's own cost dominant (the
 * worst-case ratio). Serves many "servers" on one port: `/mcp/<n>` lists `<tools>` tools
 * (`t0`, `t1`, …); every server has `echo` and `progress` (10 progress events over SSE).
 *
 * Run: `node bench/upstreams/rawResponder.ts <port> <tools-per-server>`; prints its base URL.
 * Counts `tools/list` requests at GET /stats (to prove the gateway never fans out).
 */
import { createServer } from "node:http"

const port = Number(process.argv[2] ?? 0)
const toolsPerServer = Number(process.argv[3] ?? 0)

const tool = (name: string) => ({
  name,
  description: `Synthetic tool ${name} for listing benchmarks; this sentence stands in for a real description.`,
  inputSchema: { type: "object", properties: { message: { type: "string", description: "What to echo" } } }
})
const tools = [tool("echo"), tool("progress"), ...Array.from({ length: toolsPerServer }, (_, i) => tool(`t${i}`))]
const toolsJson = JSON.stringify({ tools })
const initializeResult = JSON.stringify({
  protocolVersion: "2025-11-25",
  capabilities: { tools: {} },
  serverInfo: { name: "raw-responder", version: "1.0.0" }
})

let listRequests = 0

const reply = (id: unknown, result: string) => `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${result}}`

const server = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/stats") {
    res.writeHead(200, { "content-type": "application/json" })
    return res.end(JSON.stringify({ listRequests }))
  }
  if (req.method !== "POST") {
    res.writeHead(405, { allow: "POST" })
    return res.end()
  }
  const chunks: Array<Buffer> = []
  req.on("data", (c: Buffer) => chunks.push(c))
  req.on("end", () => {
    let message: { id?: unknown; method?: string; params?: { name?: string; arguments?: { message?: string }; _meta?: { progressToken?: unknown } } }
    try {
      message = JSON.parse(Buffer.concat(chunks).toString("utf8"))
    } catch {
      res.writeHead(400)
      return res.end()
    }
    if (message.id === undefined) {
      res.writeHead(202)
      return res.end()
    }
    let body: string
    switch (message.method) {
      case "initialize":
        body = reply(message.id, initializeResult)
        break
      case "tools/list":
        listRequests++
        body = reply(message.id, toolsJson)
        break
      case "ping":
        body = reply(message.id, "{}")
        break
      case "tools/call": {
        const text = message.params?.arguments?.message ?? ""
        const result = `{"content":[{"type":"text","text":${JSON.stringify(text)}}]}`
        if (message.params?.name === "progress") {
          const token = JSON.stringify(message.params._meta?.progressToken ?? 0)
          res.writeHead(200, { "content-type": "text/event-stream" })
          for (let i = 1; i <= 10; i++) {
            res.write(`event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":${token},"progress":${i},"total":10}}\n\n`)
          }
          return res.end(`event: message\ndata: ${reply(message.id, result)}\n\n`)
        }
        body = reply(message.id, result)
        break
      }
      default:
        body = `{"jsonrpc":"2.0","id":${JSON.stringify(message.id)},"error":{"code":-32601,"message":"Method not found"}}`
    }
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
    res.end(body)
  })
})
server.keepAliveTimeout = 65_000
server.listen(port, "127.0.0.1", () => {
  const address = server.address()
  process.stdout.write(`http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : port}\n`)
})
