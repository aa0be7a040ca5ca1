import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { upstreamFetch } from "./upstreamFetch.js"

let server: Server
let base: string
const seen: Array<{ method: string; url: string; headers: Record<string, unknown>; body: string }> = []

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = ""
    req.on("data", (c: Buffer) => (body += c.toString()))
    req.on("end", () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body })
      switch (req.url) {
        case "/json":
          res.writeHead(200, { "content-type": "application/json", "mcp-session-id": "s1" })
          return res.end(JSON.stringify({ echoed: body }))
        case "/sse":
          res.writeHead(200, { "content-type": "text/event-stream" })
          res.write("data: one\n\n")
          return setTimeout(() => res.end("data: two\n\n"), 20)
        case "/accepted":
          res.writeHead(202)
          return res.end()
        case "/moved":
          res.writeHead(307, { location: "/json" })
          return res.end()
        case "/cookies":
          res.writeHead(200, { "set-cookie": ["a=1", "b=2"], "content-type": "text/plain" })
          return res.end("ok")
        case "/slow":
          return setTimeout(() => res.end("late"), 5_000)
        default:
          res.writeHead(404)
          return res.end("no")
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

describe("upstreamFetch", () => {
  it("sends method, headers and a string body; answers JSON as a whole Response", async () => {
    const response = await upstreamFetch(`${base}/json`, {
      method: "POST",
      headers: new Headers({ "content-type": "application/json", authorization: "Bearer upstream-token" }),
      body: "{\"a\":1}"
    })
    expect(response.status).toBe(200)
    expect(response.headers.get("mcp-session-id")).toBe("s1")
    expect(await response.json()).toEqual({ echoed: "{\"a\":1}" })
    const request = seen.at(-1)!
    expect(request).toMatchObject({ method: "POST", body: "{\"a\":1}" })
    expect(request.headers).toMatchObject({ authorization: "Bearer upstream-token", "user-agent": expect.stringMatching(/^aperture\//) })
  })

  it("keeps an event stream a stream", async () => {
    const response = await upstreamFetch(`${base}/sse`)
    expect(response.headers.get("content-type")).toBe("text/event-stream")
    expect(await response.text()).toBe("data: one\n\ndata: two\n\n")
  })

  it("answers an empty 202 as fetch does, and keeps repeated headers", async () => {
    const accepted = await upstreamFetch(`${base}/accepted`, { method: "POST", body: "{}" })
    expect(accepted.status).toBe(202)
    expect(await accepted.text()).toBe("")
    const cookies = await upstreamFetch(`${base}/cookies`)
    expect(cookies.headers.getSetCookie()).toEqual(["a=1", "b=2"])
  })

  it("follows a redirect as fetch does", async () => {
    const response = await upstreamFetch(`${base}/moved`, { method: "POST", body: "{\"b\":2}" })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ echoed: "{\"b\":2}" })
  })

  it("fails like fetch: a refused connection is TypeError('fetch failed') with the cause; an abort rejects with its reason", async () => {
    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise((resolve) => closed.close(resolve))
    const refused = await upstreamFetch(`http://127.0.0.1:${port}/`).catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(TypeError)
    expect((refused as TypeError).message).toBe("fetch failed")
    expect(((refused as TypeError).cause as { code?: string }).code).toBe("ECONNREFUSED")

    const controller = new AbortController()
    const reason = new Error("cancelled by the caller")
    const slow = upstreamFetch(`${base}/slow`, { signal: controller.signal })
    setTimeout(() => controller.abort(reason), 50)
    await expect(slow).rejects.toBe(reason)
  })
})
