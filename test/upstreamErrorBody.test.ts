/**
 * An upstream that answers with a huge error body (5 MB HTTP 500): the connector's status error
 * in `/api/connectors` and its log line keep only the first few KB, said as cut
 * ("… (N bytes more)"), and reading the status stays fast. An error body that never ends (an
 * upstream's 500 to a call, a token endpoint's error) is read only as far as it is shown: the
 * error arrives at once.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { type Captured, startCapturingGateway } from "./helpers/capture.js"
import { clientCredentials } from "../plugins/auth/clientCredentials.js"
import { grant, http, loopback, mcp } from "../src/index.js"
import { boundedErrorText, MAX_ERROR_TEXT_CHARS } from "../src/catalog/UpstreamError.js"
import { startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"
import { connectorsOf, connectV2, errorOf, eventually } from "./helpers/gateway.js"
import { rawRequest } from "./helpers/http.js"

const ERROR_BODY_BYTES = 5 * 1024 * 1024
const ERROR_PAGE = Buffer.alloc(ERROR_BODY_BYTES, 0x78)

let upstream: Server
let gateway: RunningGateway & { readonly captured: Captured }

beforeAll(async () => {
  // Every request gets a 5 MB error page, bar the 2026 version probe (a 404: a legacy server),
  // so that the handshake reaches the SDK's transport, which puts the body in its error.
  upstream = createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8")
      if (body.includes("server/discover")) {
        res.writeHead(404, { "content-type": "text/plain" })
        return res.end("not found")
      }
      res.writeHead(500, { "content-type": "text/plain", "content-length": String(ERROR_PAGE.length) })
      res.end(ERROR_PAGE)
    })
  })
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve))
  const port = (upstream.address() as AddressInfo).port
  gateway = await startCapturingGateway({
    connectors: {
      huge: mcp({ url: `http://127.0.0.1:${port}/mcp` }),
      hugeRest: http({ url: `http://127.0.0.1:${port}/api`, allowPrivate: true })
    },
    identity: [loopback({ login: "local" })],
    grants: [grant({ src: ["local"], connectors: ["huge/**", "hugeRest/proxy/**"] })]
  })
})

afterAll(async () => {
  await gateway?.close()
  await new Promise<void>((resolve) => {
    upstream?.closeAllConnections()
    upstream?.close(() => resolve())
  })
})

describe("a huge upstream error body", () => {
  it("is cut to a few KB in /api/connectors and in the log line, and the status reads fast", async () => {
    const error = await eventually(async () => {
      const huge = (await connectorsOf(gateway)).connectors.find((c) => c.id === "huge")
      expect(huge?.status).not.toBe("connecting")
      expect(huge?.error).toContain("xxxxxxxx")
      return huge?.error as string
    })
    expect(error.length).toBeLessThanOrEqual(4096)
    expect(error).toMatch(/^Error POSTing to endpoint: x+… \(\d+ bytes more\)$/)
    const started = performance.now()
    for (let i = 0; i < 10; i++) await connectorsOf(gateway)
    expect(performance.now() - started).toBeLessThan(1000)
    const warnings = gateway.captured.logs.filter((line) => line.includes("connector huge down"))
    expect(warnings.length).toBeGreaterThan(0)
    for (const line of gateway.captured.logs) expect(line.length).toBeLessThanOrEqual(8192)
    for (const span of gateway.captured.spans) expect(span.length).toBeLessThanOrEqual(8192)
  })
})

describe("an HTTP connector's upstream answering a huge 500", () => {
  it("passes the answer to the caller and keeps none of it in the connector's status", async () => {
    const response = await rawRequest(gateway.origin, "/v1/connectors/hugeRest/x")
    expect(response.status).toBe(500)
    expect(response.body.length).toBe(ERROR_BODY_BYTES)
    const hugeRest = (await connectorsOf(gateway)).connectors.find((c) => c.id === "hugeRest")
    expect(hugeRest?.status).toBe("ready")
    expect(hugeRest?.error ?? "").toBe("")
  })
})

describe("boundedErrorText", () => {
  it("keeps short text and cuts long text, counting what it left off in UTF-8 bytes", () => {
    expect(boundedErrorText("short")).toBe("short")
    const long = "a".repeat(MAX_ERROR_TEXT_CHARS) + "é".repeat(10)
    expect(boundedErrorText(long)).toBe(`${"a".repeat(MAX_ERROR_TEXT_CHARS)}… (20 bytes more)`)
  })

  it("does not split a surrogate pair", () => {
    const text = "a".repeat(MAX_ERROR_TEXT_CHARS - 1) + "😀" + "b"
    expect(boundedErrorText(text)).toBe(`${"a".repeat(MAX_ERROR_TEXT_CHARS - 1)}… (5 bytes more)`)
  })
})

/** An HTTP 500 whose body never ends: 64 KB chunks as fast as the reader takes them, until it goes. */
const endless500 = (res: ServerResponse) => {
  const chunk = Buffer.alloc(64 * 1024, 0x7a)
  res.writeHead(500, { "content-type": "text/plain" })
  let sent = 0
  const pump = () => {
    while (!res.destroyed && res.write(chunk)) sent += chunk.length
    if (!res.destroyed) res.once("drain", pump)
  }
  pump()
  return () => sent
}

const bodyOf = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
  })

describe("an error body that never ends", () => {
  let mcpUpstream: V2Upstream
  let front: Server
  let other: RunningGateway & { readonly captured: Captured }
  /** Bytes the endless bodies got out before the gateway stopped reading. */
  const streamed: Array<() => number> = []

  beforeAll(async () => {
    mcpUpstream = await startV2Upstream()
    // In front of a real MCP server: tools/call gets an endless 500, anything else is passed on;
    // /token is a token endpoint answering with an endless 500.
    front = createServer(async (req, res) => {
      const body = await bodyOf(req)
      if (req.url === "/token" || body.includes("\"tools/call\"")) return void streamed.push(endless500(res))
      const answer = await fetch(mcpUpstream.url, {
        method: req.method!,
        headers: Object.fromEntries(
          Object.entries(req.headers).filter(([name]) => name !== "host" && name !== "content-length" && name !== "connection")
        ) as Record<string, string>,
        ...(body !== "" && { body })
      })
      res.writeHead(answer.status, Object.fromEntries(answer.headers))
      if (answer.body === null) return void res.end()
      for await (const chunk of answer.body as unknown as AsyncIterable<Uint8Array>) res.write(chunk)
      res.end()
    })
    await new Promise<void>((resolve) => front.listen(0, "127.0.0.1", resolve))
    const origin = `http://127.0.0.1:${(front.address() as AddressInfo).port}`
    other = await startCapturingGateway({
      connectors: {
        endless: mcp({ url: `${origin}/mcp`, timeout: 15_000 }),
        endlessToken: mcp({
          url: `${origin}/mcp`,
          timeout: 15_000,
          auth: clientCredentials({ tokenUrl: `${origin}/token`, clientId: "aperture", clientSecret: "not-a-real-secret-4242" })
        })
      },
      identity: [loopback({ login: "local" })],
      grants: [grant({ src: ["local"], connectors: ["endless/**"] })]
    })
  }, 20_000)

  afterAll(async () => {
    await other?.close()
    front?.closeAllConnections()
    await new Promise<void>((resolve) => (front === undefined ? resolve() : front.close(() => resolve())))
    await mcpUpstream?.close()
  })

  it("from the upstream, to a call: the call fails at once with the start of the body", async () => {
    await eventually(async () => (await connectorsOf(other)).connectors.find((c) => c.id === "endless")?.status === "ready", 10_000, "endless ready")
    const client = await connectV2(other.url)
    try {
      const started = performance.now()
      const error = await errorOf(client.callTool({ name: "endless_echo", arguments: { text: "hi" } }))
      expect(performance.now() - started).toBeLessThan(2_000)
      expect(error.message).toMatch(/upstream answered tools\/call with HTTP 500: z{100}/)
      expect(error.message.length).toBeLessThan(1_000)
    } finally {
      await client.close()
    }
    // The gateway stopped reading: the upstream got out a bounded amount, not a stream's worth.
    expect(Math.max(...streamed.map((sent) => sent()))).toBeLessThan(16 * 1024 * 1024)
  })

  it("from a token endpoint: the connector reports the failed token request at once, not after the 30 s token timeout", async () => {
    const error = await eventually(async () => {
      const connector = (await connectorsOf(other)).connectors.find((c) => c.id === "endlessToken")
      return connector?.status === "misconfigured" ? connector.error : undefined
    }, 5_000, "endlessToken misconfigured")
    expect(error).toMatch(/token endpoint returned 500/)
    expect(error).not.toContain("not-a-real-secret-4242")
    expect((error ?? "").length).toBeLessThan(1_000)
  })
})
