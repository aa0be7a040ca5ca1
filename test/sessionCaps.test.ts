/**
 * One caller cannot fill the gateway's 2025-era session table: past its own cap it is told 429
 * with `Retry-After`, while other callers still open sessions; closing one lets it open again.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { grant } from "../src/index.js"
import { DEFAULT_SESSIONS_PER_CALLER as MAX_SESSIONS_PER_CALLER } from "../src/config/decode.js"
import { SESSION_CAP_RETRY_AFTER_SECONDS } from "../src/endpoint/era2025/Sessions2025.js"
import { rawInitialize, SESSION_HEADERS, startGateway } from "./helpers/gateway.js"
import { testUsers } from "./helpers/testUsers.js"

let gateway: RunningGateway

beforeAll(async () => {
  gateway = await startGateway({
    connectors: {},
    identity: [testUsers({})],
    grants: [grant({ src: ["*"], connectors: ["**"] })]
  })
})

afterAll(async () => {
  await gateway?.close()
})

/** A raw 2025-11-25 initialize as `user`; the body is read, so the socket is free again. */
const initialize = async (user: string, url = gateway.url) => {
  const response = await rawInitialize(url, { headers: { "x-test-user": user } })
  return { status: response.status, headers: response.headers, body: await response.text() }
}

describe("per-caller session cap", () => {
  it("refuses the caller over it with 429 and Retry-After, serves others, and frees a slot on DELETE", async () => {
    const opened: Array<string> = []
    // In batches: concurrent enough to be quick, few enough sockets to stay gentle on loopback.
    for (let i = 0; i < MAX_SESSIONS_PER_CALLER; i += 20) {
      const batch = await Promise.all(Array.from({ length: Math.min(20, MAX_SESSIONS_PER_CALLER - i) }, () => initialize("alice")))
      for (const answer of batch) {
        expect(answer.status).toBe(200)
        opened.push(answer.headers.get("mcp-session-id")!)
      }
    }
    expect(new Set(opened).size).toBe(MAX_SESSIONS_PER_CALLER)

    const refused = await initialize("alice")
    expect(refused.status).toBe(429)
    expect(refused.headers.get("retry-after")).toBe(String(SESSION_CAP_RETRY_AFTER_SECONDS))
    expect(refused.headers.get("mcp-session-id")).toBeNull()
    expect(JSON.parse(refused.body)).toEqual({
      jsonrpc: "2.0",
      id: null,
      error: {
        code: -32000,
        message: `caller alice has ${MAX_SESSIONS_PER_CALLER} open sessions, the most one caller may hold; close some (DELETE) or wait`
      }
    })

    // Another caller is unaffected.
    const other = await initialize("bob")
    expect(other.status).toBe(200)
    expect(other.headers.get("mcp-session-id")).toBeTruthy()

    // Closing one of alice's sessions gives her a slot back, and only one.
    const closed = await fetch(gateway.url, {
      method: "DELETE",
      headers: { ...SESSION_HEADERS, "x-test-user": "alice", "mcp-session-id": opened[0]! }
    })
    await closed.text()
    expect(closed.status).toBe(200)
    const again = await initialize("alice")
    expect(again.status).toBe(200)
    expect(again.headers.get("mcp-session-id")).toBeTruthy()
    expect((await initialize("alice")).status).toBe(429)
  }, 60_000)

  it("is server.sessionsPerCaller when the config sets it", async () => {
    const strict = await startGateway({
      server: { sessionsPerCaller: 3 },
      connectors: {},
      identity: [testUsers({})],
      grants: [grant({ src: ["*"], connectors: ["**"] })]
    })
    try {
      for (let i = 0; i < 3; i++) expect((await initialize("carol", strict.url)).status).toBe(200)
      const refused = await initialize("carol", strict.url)
      expect(refused.status).toBe(429)
      expect(refused.body).toContain("caller carol has 3 open sessions")
      expect((await initialize("dave", strict.url)).status).toBe(200)
    } finally {
      await strict.close()
    }
  })
})
