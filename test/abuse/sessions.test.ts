/**
 * Standing abuse suite for 2025-era session isolation (issue 18): another caller's session id,
 * a same-login caller with other groups (the cases test/sessionIdentity.test.ts leaves out:
 * DELETE, resumption, a superset of groups), forged ids, another caller's GET stream and DELETE,
 * and another session's Last-Event-ID. Each is refused (404, or 400 for what HTTP itself
 * refuses), never 5xx, never anything of the session's owner; the owner keeps their session.
 */
import { connect } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../../src/Aperture.js"
import { grant } from "../../src/index.js"
import { type ApiKeyGateway, startApiKeyGateway } from "../fixtures/apiKeyGateway.js"
import type { V2Upstream } from "../fixtures/v2Upstream.js"
import { eventually, SESSION_HEADERS } from "../helpers/gateway.js"
import { boundedRequest, type BoundedResponse, messagesOf } from "./boundedRequest.js"

const ANN = `ann-${crypto.randomUUID()}`
const ANN_OPS = `ann-ops-${crypto.randomUUID()}`
const ANN_BOTH = `ann-both-${crypto.randomUUID()}`
const BOB = `bob-${crypto.randomUUID()}`

let fx: V2Upstream
let gateway: RunningGateway
let setup: ApiKeyGateway | undefined

beforeAll(async () => {
  setup = await startApiKeyGateway(
    {
      [ANN]: { login: "ann", groups: ["eng"] },
      [ANN_OPS]: { login: "ann", groups: ["ops"] },
      [ANN_BOTH]: { login: "ann", groups: ["eng", "ops"] },
      [BOB]: { login: "bob", groups: ["eng"] }
    },
    [grant({ src: ["ann", "bob"], connectors: ["fx/tools/echo", "fx/tools/added_*"] })]
  )
  ;({ fx, gateway } = setup)
  const probe = await openSession(ANN)
  await eventually(async () => (await post(ANN, probe, { jsonrpc: "2.0", id: 1, method: "tools/list" })).body.includes("fx_echo"), 30_000, "fx ready")
})

afterAll(async () => {
  await setup?.close()
})

const headersOf = (key: string, sessionId?: string): Record<string, string> => ({
  ...SESSION_HEADERS,
  "x-api-key": key,
  ...(sessionId !== undefined && { "mcp-session-id": sessionId })
})

const post = (key: string, sessionId: string, message: unknown, extra: Record<string, string> = {}) =>
  boundedRequest(gateway.url, { method: "POST", headers: { ...headersOf(key, sessionId), ...extra }, body: JSON.stringify(message) })

/** Opens a 2025-11-25 session with `key`; returns its id. */
const openSession = async (key: string): Promise<string> => {
  const response = await boundedRequest(gateway.url, {
    method: "POST",
    headers: headersOf(key),
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "abuse", version: "1" } }
    })
  })
  const id = response.headers["mcp-session-id"]
  if (typeof id !== "string") throw new Error(`initialize answered ${response.status} without a session id`)
  await post(key, id, { jsonrpc: "2.0", method: "notifications/initialized" })
  return id
}

const echoCall = (message: string) => ({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "fx_echo", arguments: { message } } })

/** The owner's session still answers the owner. */
const stillServes = async (key: string, sessionId: string) => {
  const call = await post(key, sessionId, echoCall("still mine"))
  expect(call.status).toBe(200)
  expect(call.body).toContain("echo: still mine")
}

/** A refusal: 404 (session not found, JSON-RPC -32001) or 400 (HTTP refused the id), never 5xx, never the owner's data. */
const expectRefused = (response: BoundedResponse, secret?: string) => {
  const what = `${response.status} ${response.body.slice(0, 200)}`
  expect([400, 404], what).toContain(response.status)
  if (response.status === 404) {
    expect(messagesOf(response).map((m) => (m as { error?: { code: number } }).error?.code), what).toEqual([-32001])
  }
  if (secret !== undefined) expect(response.body).not.toContain(secret)
}

/** Sends bytes as they are (header values `fetch` and `http.request` refuse to send); returns the status line's code. */
const rawStatus = (head: string): Promise<number> =>
  new Promise((resolve, reject) => {
    const { hostname, port } = new URL(gateway.url)
    // Written, not ended: a socket the client half-closes is closed by Node's server at once, so
    // an answer that takes a moment (a cluster's Redis round trip) would never be read.
    const socket = connect(Number(port), hostname, () => socket.write(head))
    let text = ""
    socket.setTimeout(5_000, () => socket.destroy(new Error("no answer in 5 s")))
    socket.on("data", (c: Buffer) => (text += c.toString("latin1")))
    socket.on("close", () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)))
    socket.on("error", reject)
  })

describe("2025-era session isolation under abuse", () => {
  it("refuses another login the session: calls, lists, pings, GET and DELETE are 404, and the owner keeps it", async () => {
    const ann = await openSession(ANN)
    expectRefused(await post(BOB, ann, echoCall("bob was here")))
    expectRefused(await post(BOB, ann, { jsonrpc: "2.0", id: 3, method: "tools/list" }))
    expectRefused(await post(BOB, ann, { jsonrpc: "2.0", id: 4, method: "ping" }))
    expectRefused(await post(BOB, ann, [{ jsonrpc: "2.0", id: 5, method: "ping" }]))
    expectRefused(await post(BOB, ann, { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 2 } }))
    expectRefused(await boundedRequest(gateway.url, { headers: { ...headersOf(BOB, ann), accept: "text/event-stream" } }))
    expectRefused(await boundedRequest(gateway.url, { method: "DELETE", headers: headersOf(BOB, ann) }))
    await stillServes(ANN, ann)
  })

  it("refuses the same login with other groups, or more groups, everything sessionIdentity.test.ts does not try", async () => {
    const ann = await openSession(ANN)
    for (const key of [ANN_OPS, ANN_BOTH]) {
      expectRefused(await boundedRequest(gateway.url, { method: "DELETE", headers: headersOf(key, ann) }))
      expectRefused(await post(key, ann, { jsonrpc: "2.0", id: 4, method: "ping" }))
      expectRefused(await boundedRequest(gateway.url, { headers: { ...headersOf(key, ann), accept: "text/event-stream", "last-event-id": "0" } }))
    }
    await stillServes(ANN, ann)
  })

  it("answers forged session ids with 404 or 400, never 5xx and never the owner's session", async () => {
    const ann = await openSession(ANN)
    const oneOff = ann.slice(0, -1) + (ann.endsWith("0") ? "1" : "0")
    const forged = [
      crypto.randomUUID(),
      crypto.randomUUID(),
      "",
      "x".repeat(10 * 1024),
      ann.toUpperCase(),
      oneOff,
      `${ann},${ann}`,
      `${ann}\u00e9`,
      "\u00ff\u00fe\u00e9\u00e8",
      "../../" + ann,
      "%00" + ann
    ]
    for (const id of forged) {
      for (const key of [BOB, ANN]) {
        if (key === ANN && (id === ann || id.trim() === ann)) continue
        const response = await post(key, id, echoCall("forged"))
        expectRefused(response)
        expect(response.body).not.toContain("echo: forged")
      }
    }
    // CR/LF and NUL in the header: the HTTP parser refuses the request (400), or the id is unknown (404).
    for (const id of [`${ann}\r`, `${ann}\n`, `${ann}\r\n x`, `${ann}\u0000`, `${ann}\r\nmcp-session-id: ${ann}`]) {
      const body = JSON.stringify(echoCall("forged"))
      const status = await rawStatus(
        `POST /v1/mcp HTTP/1.1\r\nhost: ${new URL(gateway.url).host}\r\ncontent-type: application/json\r\n` +
          `accept: application/json, text/event-stream\r\nmcp-protocol-version: 2025-11-25\r\nx-api-key: ${BOB}\r\n` +
          `mcp-session-id: ${id}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`
      )
      expect([400, 404], JSON.stringify(id)).toContain(status)
    }
    await stillServes(ANN, ann)
  })

  it("does not close the owner's GET stream on another caller's DELETE", async () => {
    const ann = await openSession(ANN)
    const stream = new AbortController()
    const opened = await fetch(gateway.url, { headers: { ...headersOf(ANN, ann), accept: "text/event-stream" }, signal: stream.signal })
    try {
      expect(opened.status).toBe(200)
      for (const key of [BOB, ANN_OPS]) {
        expectRefused(await boundedRequest(gateway.url, { method: "DELETE", headers: headersOf(key, ann) }))
      }
      // The stream is still open and live: a tool added upstream is announced on it.
      const reader = opened.body!.getReader()
      fx.addTool(`added_${Date.now()}`)
      let seen = ""
      const deadline = Date.now() + 5_000
      while (!seen.includes("notifications/tools/list_changed")) {
        const chunk = await Promise.race([reader.read(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no list_changed on the owner's stream: ${seen}`)), deadline - Date.now()))])
        expect(chunk.done, `the owner's stream ended: ${seen}`).toBe(false)
        seen += new TextDecoder().decode(chunk.value)
      }
      await stillServes(ANN, ann)
    } finally {
      stream.abort()
    }
  })

  it("replays nothing of another session's events for its Last-Event-ID", async () => {
    const ann = await openSession(ANN)
    const secret = `ann-secret-${crypto.randomUUID()}`
    const call = await post(ANN, ann, echoCall(secret))
    expect(call.body).toContain(secret)
    const eventIds = [...call.body.matchAll(/^id: ?(\S+)$/gm)].map((m) => m[1]!)
    expect(eventIds.length).toBeGreaterThan(0)
    for (const key of [BOB, ANN_OPS]) {
      const own = await openSession(key)
      for (const lastEventId of [...eventIds, "_GET_stream.1", "0"]) {
        // On the caller's own session: nothing of the other session comes back.
        const resumed = await boundedRequest(gateway.url, {
          headers: { ...headersOf(key, own), accept: "text/event-stream", "last-event-id": lastEventId },
          streamGraceMs: 300
        })
        expect(resumed.status).toBeLessThan(500)
        expect(resumed.body).not.toContain(secret)
        // On the other's session: refused outright.
        expectRefused(await boundedRequest(gateway.url, {
          headers: { ...headersOf(key, ann), accept: "text/event-stream", "last-event-id": lastEventId },
          streamGraceMs: 300
        }), secret)
      }
    }
    await stillServes(ANN, ann)
  })
})
