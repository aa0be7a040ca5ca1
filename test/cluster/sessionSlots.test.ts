/**
 * Per-caller 2025-era session caps across replicas (issue 20): two gateways on one real Redis
 * count a caller's sessions together (429 on either past the cap, a DELETE on one frees a slot on
 * the other, ten concurrent initializes on both give exactly the cap); Redis away → initialize
 * answers 503 with Retry-After at once while 2026-era calls and sessions already open go on;
 * Redis back → sessions open again.
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { createClient } from "redis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../../src/Aperture.js"
import { grant, mcp, redis } from "../../src/config/dsl.js"
import { SESSION_CAP_RETRY_AFTER_SECONDS, SHARED_STATE_RETRY_AFTER_SECONDS } from "../../src/endpoint/era2025/Sessions2025.js"
import { startV2Upstream, type V2Upstream } from "../fixtures/v2Upstream.js"
import { eventually, rawInitialize, SESSION_HEADERS, startGateway } from "../helpers/gateway.js"
import { startRedis, type TestRedis } from "../helpers/redis.js"
import { testUsers } from "../helpers/testUsers.js"

const PREFIX = "slots-test:"
const SECRET_KEY = "the cluster's secret key, 32 characters or more"
const CAP = 3

let store: TestRedis
let fx: V2Upstream
let a: RunningGateway
let b: RunningGateway
let inspector: ReturnType<typeof createClient>

const replica = () =>
  startGateway({
    server: { sessionsPerCaller: CAP },
    cluster: redis({ url: store.url, keyPrefix: PREFIX }),
    secretKey: SECRET_KEY,
    identity: [testUsers({})],
    connectors: { fx: mcp({ url: fx.url }) },
    grants: [grant({ src: ["*"], connectors: ["**"] })]
  })

beforeAll(async () => {
  ;[store, fx] = await Promise.all([startRedis(), startV2Upstream({ name: "fx" })])
  ;[a, b] = await Promise.all([replica(), replica()])
  inspector = createClient({ url: store.url, socket: { reconnectStrategy: () => 100 } })
  inspector.on("error", () => {})
  await inspector.connect()
}, 60_000)

afterAll(async () => {
  inspector?.destroy()
  await Promise.all([a?.close(), b?.close()])
  await Promise.all([store?.stop(), fx?.close()])
})

/** A raw 2025-11-25 initialize as `user` (the body read, so the socket is free again). */
const initialize = async (gateway: RunningGateway, user: string) => {
  const started = Date.now()
  const response = await rawInitialize(gateway.url, { headers: { "x-test-user": user } })
  const body = await response.text()
  return { status: response.status, headers: response.headers, body, ms: Date.now() - started, id: response.headers.get("mcp-session-id") }
}

const close = async (gateway: RunningGateway, user: string, id: string) => {
  const response = await fetch(gateway.url, { method: "DELETE", headers: { ...SESSION_HEADERS, "x-test-user": user, "mcp-session-id": id } })
  await response.text()
  return response.status
}

const slotsOf = (login: string) => inspector.zRange(`${PREFIX}slots:${login}`, 0, -1)

describe("per-caller session cap on two replicas sharing one Redis", () => {
  it("counts a caller's sessions on both: 429 on either past the cap, others unaffected, a DELETE on A frees a slot on B", async () => {
    const opened = [await initialize(a, "alice"), await initialize(a, "alice"), await initialize(b, "alice")]
    for (const answer of opened) expect(answer.status).toBe(200)
    expect((await slotsOf("alice")).sort()).toEqual(opened.map((o) => o.id).sort())

    for (const gateway of [a, b]) {
      const refused = await initialize(gateway, "alice")
      expect(refused.status).toBe(429)
      expect(refused.headers.get("retry-after")).toBe(String(SESSION_CAP_RETRY_AFTER_SECONDS))
      expect(refused.id).toBeNull()
      expect(JSON.parse(refused.body)).toMatchObject({ error: { code: -32000, message: expect.stringContaining(`caller alice has ${CAP} open sessions`) } })
    }
    expect((await initialize(b, "bob")).status).toBe(200)
    expect((await initialize(a, "bob")).status).toBe(200)

    expect(await close(a, "alice", opened[0]!.id!)).toBe(200)
    expect(await slotsOf("alice")).not.toContain(opened[0]!.id)
    const again = await initialize(b, "alice")
    expect(again.status).toBe(200)
    expect((await initialize(a, "alice")).status).toBe(429)
  })

  it("never overshoots the cap when initializes race on both replicas", async () => {
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => initialize(i % 2 === 0 ? a : b, "carol")))
    expect(answers.filter((r) => r.status === 200)).toHaveLength(CAP)
    expect(answers.filter((r) => r.status === 429)).toHaveLength(10 - CAP)
    expect(await slotsOf("carol")).toHaveLength(CAP)
  })

  it("lets slots of a replica that died lapse at their expiry", async () => {
    // Three slots as a dead replica leaves them: never released, expiring 300 ms from now (Redis' clock).
    const [seconds, micros] = (await inspector.sendCommand(["TIME"])) as [string, string]
    const expiry = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) + 300
    await inspector.zAdd(`${PREFIX}slots:gina`, ["d1", "d2", "d3"].map((value) => ({ score: expiry, value })))
    expect((await initialize(a, "gina")).status).toBe(429)
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect((await initialize(b, "gina")).status).toBe(200)
    expect(await slotsOf("gina")).toHaveLength(1)
  })

  it("Redis away: initialize is 503 with Retry-After at once; 2026-era calls and open sessions go on; Redis back: sessions open again", async () => {
    const headers = { "x-test-user": "dave" }
    const session = new V1Client({ name: "open-before", version: "1" })
    await session.connect(new V1Transport(new URL(a.url), { requestInit: { headers } }))
    const stateless = new Client({ name: "stateless", version: "1" }, { versionNegotiation: { mode: "auto" } })
    await stateless.connect(new StreamableHTTPClientTransport(new URL(b.url), { requestInit: { headers } }))
    try {
      expect(await slotsOf("dave")).toHaveLength(1)
      await store.stop()

      for (const gateway of [a, b]) {
        const refused = await initialize(gateway, "erin")
        expect(refused.status).toBe(503)
        expect(refused.ms).toBeLessThan(2_000)
        expect(refused.headers.get("retry-after")).toBe(String(SHARED_STATE_RETRY_AFTER_SECONDS))
        expect(refused.id).toBeNull()
        expect(JSON.parse(refused.body)).toMatchObject({
          jsonrpc: "2.0",
          id: null,
          error: { code: -32000, message: expect.stringContaining("shared session state unavailable") }
        })
      }
      // 2026-era (stateless) traffic needs no shared state.
      expect(await stateless.callTool({ name: "fx_whoami", arguments: {} })).toMatchObject({ content: [{ text: "fx" }] })
      // The session already open on A is served by A alone.
      expect(await session.callTool({ name: "fx_whoami", arguments: {} })).toMatchObject({ content: [{ text: "fx" }] })
      expect((await session.listTools()).tools.map((t) => t.name)).toContain("fx_whoami")

      await store.start()
      const reopened = await eventually(async () => {
        const answer = await initialize(b, "erin")
        return answer.status === 200 ? answer : undefined
      }, 15_000, "initialize to work again")
      expect(reopened.id).toBeTruthy()
      // Redis came back empty: the open session's slot is put back by the next touch, so it counts again.
      await eventually(async () => (await slotsOf("dave")).length === 1, 15_000, "dave's open session counted again")
      expect(await session.callTool({ name: "fx_whoami", arguments: {} })).toMatchObject({ content: [{ text: "fx" }] })
    } finally {
      await Promise.all([session.close(), stateless.close()])
    }
  }, 60_000)
})
