/**
 * A 2025-era session's GET event stream answers its head at once: a client waits for the head
 * before it counts the stream as open, and nothing may be sent on it for a long while (the first
 * keepalive is 15 s away).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { mcp } from "../src/index.js"
import { openRawSession, startGateway } from "./helpers/gateway.js"
import { startV2Upstream, type V2Upstream } from "./fixtures/v2Upstream.js"

let fx: V2Upstream
let gateway: RunningGateway

beforeAll(async () => {
  fx = await startV2Upstream({ name: "fx" })
  gateway = await startGateway({ connectors: { fx: mcp({ url: fx.url }) } })
})

afterAll(async () => {
  await gateway?.close()
  await fx?.close()
})

describe("the 2025-era GET stream", () => {
  it("sends its head (200, text/event-stream) at once, before any event", async () => {
    const session = await openRawSession(gateway.url, "get-stream")
    const controller = new AbortController()
    try {
      const started = performance.now()
      // Before the fix the head left with the first keepalive, 15 s later: the fetch times out.
      const response = await fetch(gateway.url, {
        headers: { accept: "text/event-stream", "mcp-protocol-version": session["mcp-protocol-version"]!, "mcp-session-id": session["mcp-session-id"]! },
        signal: AbortSignal.any([controller.signal, AbortSignal.timeout(2_000)])
      })
      expect(performance.now() - started).toBeLessThan(1_000)
      expect(response.status).toBe(200)
      expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/)
      expect(response.headers.get("mcp-session-id")).toBe(session["mcp-session-id"])
    } finally {
      controller.abort()
    }
  })
})
