import { createServer, type IncomingMessage, type Server } from "node:http"
import { connect } from "node:net"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { readBody } from "./nodeBridge.js"

// Each request's body is read by readBody on a real Node server; the outcome is the answer.
let server: Server
let port: number

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res) => {
    const request = { source: req } as unknown as HttpServerRequest.HttpServerRequest
    Effect.runPromise(Effect.either(readBody(request, 16, "300 millis"))).then((read) => {
      res.end(read._tag === "Right" ? `body:${read.right}` : read.left._tag)
    })
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  port = (server.address() as { port: number }).port
})

afterAll(() => new Promise<void>((r) => server.close(() => r())))

/** Sends a request whose body is `sent`, announcing `length` bytes, and returns the answer's body. */
const exchange = (length: number, sent: string) =>
  new Promise<string>((resolve, reject) => {
    const socket = connect(port, "127.0.0.1")
    let answer = ""
    socket.on("data", (d) => (answer += d))
    socket.on("error", reject)
    socket.on("close", () => resolve(answer.split("\r\n\r\n").slice(1).join("")))
    socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n${sent}`)
  })

describe("readBody", () => {
  it("reads a whole body", async () => {
    expect(await exchange(5, "hello")).toBe("body:hello")
  })

  it("refuses a body larger than the limit", async () => {
    expect(await exchange(20, "x".repeat(20))).toBe("BodyTooLarge")
  })

  it("gives up on a body the client stops sending", async () => {
    const started = Date.now()
    expect(await exchange(10, "abc")).toBe("BodyTimedOut")
    expect(Date.now() - started).toBeGreaterThanOrEqual(250)
  })
})
