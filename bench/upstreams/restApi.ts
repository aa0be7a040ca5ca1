/**
 * The benchmark's REST upstream for S6 (the HTTP connector proxy): `node:http`, `GET /bytes/<n>`
 * answers `n` bytes from a buffer built once, so the proxy's own cost dominates.
 *
 * Run: `node bench/upstreams/restApi.ts <port>`; prints its base URL.
 */
import { createServer } from "node:http"

const port = Number(process.argv[2] ?? 0)
const bodies = new Map<number, Buffer>()

const server = createServer((req, res) => {
  const match = /^\/bytes\/(\d+)$/.exec(req.url ?? "")
  const size = match === null ? Number.NaN : Number(match[1])
  if (req.method !== "GET" || !Number.isSafeInteger(size) || size > 64 * 1024 * 1024) {
    res.writeHead(404)
    return res.end()
  }
  let body = bodies.get(size)
  if (body === undefined) bodies.set(size, body = Buffer.alloc(size, "a"))
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size })
  res.end(body)
})
server.keepAliveTimeout = 65_000
server.listen(port, "127.0.0.1", () => {
  const address = server.address()
  process.stdout.write(`http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : port}\n`)
})
