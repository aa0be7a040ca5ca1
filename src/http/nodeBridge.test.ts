import { createServer, type IncomingMessage, type Server } from "node:http"
import { type AddressInfo, connect } from "node:net"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import { describe, expect, it } from "@effect/vitest"
import { readBody, sendResponse } from "./nodeBridge.js"

/**
 * A real Node server whose every request's body is read by readBody (limit 16 bytes, 300 ms);
 * the outcome is the answer. Closed when the test's scope closes. Returns its port.
 */
const readBodyServer = Effect.acquireRelease(
  Effect.promise(async () => {
    const server = createServer((req: IncomingMessage, res) => {
      const request = { source: req } as unknown as HttpServerRequest.HttpServerRequest
      Effect.runPromise(Effect.either(readBody(request, 16, "300 millis"))).then((read) => {
        res.end(read._tag === "Right" ? `body:${read.right}` : read.left._tag)
      })
    })
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
    return server
  }),
  (server) => Effect.promise(() => new Promise<void>((r) => server.close(() => r())))
).pipe(Effect.map((server) => (server.address() as AddressInfo).port))

/** Sends a request to `port` whose body is `sent`, announcing `length` bytes; returns the answer's body. */
const exchange = (port: number, length: number, sent: string) =>
  Effect.promise(() =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(port, "127.0.0.1")
      let answer = ""
      socket.on("data", (d) => (answer += d))
      socket.on("error", reject)
      socket.on("close", () => resolve(answer.split("\r\n\r\n").slice(1).join("")))
      socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n${sent}`)
    })
  )

// Real sockets and readBody's real timeout: the live clock, not the TestClock.
describe("readBody", () => {
  it.scopedLive("reads a whole body", () =>
    Effect.gen(function*() {
      const port = yield* readBodyServer
      expect(yield* exchange(port, 5, "hello")).toBe("body:hello")
    }))

  it.scopedLive("refuses a body larger than the limit", () =>
    Effect.gen(function*() {
      const port = yield* readBodyServer
      expect(yield* exchange(port, 20, "x".repeat(20))).toBe("BodyTooLarge")
    }))

  it.scopedLive("gives up on a body the client stops sending", () =>
    Effect.gen(function*() {
      const port = yield* readBodyServer
      const started = Date.now()
      expect(yield* exchange(port, 10, "abc")).toBe("BodyTimedOut")
      expect(Date.now() - started).toBeGreaterThanOrEqual(250)
    }))
})

describe("sendResponse (event streams)", () => {
  // Each test's stream is made by `stream(controller)`; the caller is a raw socket that records
  // when each TCP read arrived and what it held.
  const serve = (stream: (controller: ReadableStreamDefaultController<Uint8Array>) => void) =>
    new Promise<{ reads: Array<{ at: number; text: string }>; close: () => void }>((resolve) => {
      const sse = createServer((req, res) => {
        const request = { source: req, response: res } as unknown as HttpServerRequest.HttpServerRequest
        const body = new ReadableStream<Uint8Array>({ start: stream })
        void Effect.runPromise(sendResponse(request, new Response(body, { headers: { "content-type": "text/event-stream" } })))
      })
      sse.listen(0, "127.0.0.1", () => {
        const reads: Array<{ at: number; text: string }> = []
        const started = Date.now()
        const socket = connect((sse.address() as { port: number }).port, "127.0.0.1")
        socket.on("data", (d) => reads.push({ at: Date.now() - started, text: d.toString() }))
        socket.on("close", () => sse.close())
        socket.write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        resolve({ reads, close: () => socket.destroy() })
      })
    })

  const encode = (text: string) => new TextEncoder().encode(text)
  const settle = (ms: number) => new Promise((r) => setTimeout(r, ms))

  // Node 22 loses what a corked chunked response held at `end()` (nodeBridge.ts,
  // CORK_LOSES_CHUNKS): there nothing is held, and the whole stream must still arrive.
  const corks = Number(process.versions.node.split(".")[0]) < 22

  it("sends a quick stream's head, first event and end in one write (Node 20; all of it, in order, on Node 22)", async () => {
    const { reads } = await serve((controller) => {
      controller.enqueue(encode("id: 1\ndata: \n\n"))
      setTimeout(() => {
        controller.enqueue(encode("id: 2\ndata: {\"answer\":1}\n\n"))
        controller.close()
      }, 15)
    })
    await settle(200)
    if (corks) expect(reads).toHaveLength(1)
    expect(reads.map((r) => r.text).join("")).toMatch(/^HTTP\/1\.1 200 [\s\S]*id: 1\ndata: \n\n[\s\S]*"answer":1[\s\S]*0\r\n\r\n$/)
  })

  it("does not hold a long stream's first event past the first-flush delay, nor later events at all", async () => {
    let controller!: ReadableStreamDefaultController<Uint8Array>
    const { close, reads } = await serve((c) => {
      controller = c
      c.enqueue(encode("id: 1\ndata: \n\n"))
    })
    await settle(150)
    expect(reads.map((r) => r.text).join("")).toContain("id: 1\ndata: \n\n")
    expect(reads[0]!.at).toBeLessThan(140)
    controller.enqueue(encode("id: 2\ndata: {\"progress\":1}\n\n"))
    await settle(30)
    expect(reads.map((r) => r.text).join("")).toContain("progress")
    close()
  })

  it("sends at once what outgrows the socket's buffer, without waiting for the delay", async () => {
    const big = "x".repeat(64 * 1024)
    const { close, reads } = await serve((c) => c.enqueue(encode(`data: ${big}\n\n`)))
    await settle(30)
    expect(reads.reduce((n, r) => n + r.text.length, 0)).toBeGreaterThan(64 * 1024)
    close()
  })
})
