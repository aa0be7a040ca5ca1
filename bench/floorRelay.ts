/**
 * The floor for any MCP proxy on Node: a bare relay, `node:http` in and undici out over one
 * keep-alive pool, the answer's bytes passed back whole. No sessions, identities, grants, parsing
 * or SSE framing: what is left is the cost of one more HTTP hop through a Node process. S1 runs
 * it on the gateway's core beside the gateway, so a target a relay cannot reach on this machine
 * is visible as such in the same run.
 *
 * Run: `node --import tsx bench/floorRelay.ts <port> <name>=<url>…`; `POST /<name>` goes to
 * `<url>`. Prints its origin when listening.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Agent, request } from "undici"

const port = Number(process.argv[2] ?? 0)
const routes = new Map<string, string>(process.argv.slice(3).map((pair) => {
  const at = pair.indexOf("=")
  return [`/${pair.slice(0, at)}`, pair.slice(at + 1)] as const
}))
const pool = new Agent({ keepAliveTimeout: 30_000 })
/** What an MCP exchange needs to cross: the rest of the caller's headers stay behind, as a proxy's would. */
const FORWARDED = ["content-type", "accept", "mcp-session-id", "mcp-protocol-version"] as const

const server = createServer((req, res) => {
  const target = routes.get(req.url ?? "")
  if (target === undefined) {
    res.writeHead(404).end()
    return
  }
  const chunks: Array<Buffer> = []
  req.on("data", (chunk: Buffer) => chunks.push(chunk))
  req.on("end", () => {
    const headers: Record<string, string> = {}
    for (const name of FORWARDED) {
      const value = req.headers[name]
      if (typeof value === "string") headers[name] = value
    }
    request(target, { method: req.method as "POST", dispatcher: pool, headers, body: Buffer.concat(chunks) })
      .then(async (answer) => {
        const body = Buffer.from(await answer.body.arrayBuffer())
        const session = answer.headers["mcp-session-id"]
        res.writeHead(answer.statusCode, {
          "content-type": String(answer.headers["content-type"] ?? "application/json"),
          "content-length": body.length,
          ...(typeof session === "string" && { "mcp-session-id": session })
        })
        res.end(body)
      })
      .catch(() => res.writeHead(502).end())
  })
})
server.keepAliveTimeout = 65_000
server.listen(port, "127.0.0.1", () => process.stdout.write(`http://127.0.0.1:${(server.address() as AddressInfo).port}\n`))
// An orderly exit on SIGINT, so a relay run with `--cpu-prof` (`npm run bench -- --profile`) writes its profile.
process.on("SIGINT", () => process.exit(0))
