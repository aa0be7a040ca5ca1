/**
 * An upstream that answers with a huge error body (5 MB HTTP 500): the connector's status error
 * in `/api/connectors` and its log line keep only the first few KB, said as cut
 * ("… (N bytes more)"), and reading the status stays fast.
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { type Captured, startCapturingGateway } from "./helpers/capture.js"
import { grant, http, loopback, mcp } from "../src/index.js"
import { boundedErrorText, MAX_ERROR_TEXT_CHARS } from "../src/upstream/UpstreamError.js"
import { connectorsOf, eventually } from "./helpers/gateway.js"
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
