/**
 * 2025-era sessions shared by two in-process replicas on one real Redis (issue 20), each request
 * sent to a chosen replica directly: the session stays bound to its caller on every replica;
 * `notifications/cancelled`, `logging/setLevel` and DELETE cross replicas; a DELETE frees the
 * caller's slot; sessions survive Redis restarting empty (touches put their records back); a copy
 * one replica drops when idle does not end the session others use; a quick call writes nothing
 * to Redis, a long one its stream; another caller's session resuming that stream's event id on
 * the other replica gets nothing of it.
 */
import { createMcpHandler, McpServer } from "@modelcontextprotocol/server"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { createClient } from "redis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../../src/Aperture.js"
import { apiKeys, grant, mcp, redis } from "../../src/index.js"
import { sseEvents } from "../../src/upstream/sseEvents.js"
import type { CommandClient } from "../../src/cluster/sharedCommand.js"
import { makeRedisSessionRecords } from "../../src/cluster/sessionRecords.js"
import { serveFetch } from "../fixtures/nodeAdapter.js"
import { startV2Upstream, type V2Upstream } from "../fixtures/v2Upstream.js"
import { eventually, rawInitialize, SESSION_HEADERS, startGateway, untilReady } from "../helpers/gateway.js"
import { commandCalls, startRedis, type TestRedis } from "../helpers/redis.js"

const PREFIX = "sharing-test:"
const SECRET_KEY = "the cluster's secret key, 32 characters or more"
/** Short, so idle copies go and touches come quickly: touches every 1 s, reaping every 1.5 s. */
const IDLE = "3 seconds"
const LOGINS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "henry", "ivan", "judy", "kate", "mallory"] as const
const KEYS = Object.fromEntries(LOGINS.map((login) => [login, `${login}-${crypto.randomUUID()}`])) as Record<(typeof LOGINS)[number], string>
const OPS_KEY = `ops-${crypto.randomUUID()}`
const LEVELS = ["debug", "info", "notice", "warning", "error"] as const

/** A real v2 SDK server whose one tool logs once at each of {@link LEVELS} during the call. */
const startChattyUpstream = async () => {
  const handler = createMcpHandler(() => {
    const server = new McpServer({ name: "chatty", version: "1.0.0" }, { capabilities: { logging: {} } })
    server.registerTool("chatter", { description: "Logs at every level, then answers" }, async (ctx) => {
      for (const level of LEVELS) {
        await ctx.mcpReq.notify({ method: "notifications/message", params: { level, logger: "chatty", data: `at ${level}` } })
      }
      return { content: [{ type: "text", text: "chattered" }] }
    })
    return server
  })
  const served = await serveFetch((request) => handler.fetch(request))
  return {
    url: `http://127.0.0.1:${served.port}/mcp`,
    close: async () => {
      await handler.close()
      await served.close()
    }
  }
}

let store: TestRedis
let fx: V2Upstream
let chatty: Awaited<ReturnType<typeof startChattyUpstream>>
let r1: RunningGateway
let r2: RunningGateway

const replica = (idle: string = IDLE) =>
  startGateway({
    server: { sessionsPerCaller: 1, sessionIdleTimeout: idle },
    cluster: redis({ url: store.url, keyPrefix: PREFIX }),
    secretKey: SECRET_KEY,
    identity: [apiKeys({ keys: { ...Object.fromEntries(LOGINS.map((login) => [KEYS[login], { login }])), [OPS_KEY]: { login: "ops" } } })],
    connectors: { fx: mcp({ url: fx.url }), chat: mcp({ url: chatty.url }) },
    grants: [grant({ src: [...LOGINS], connectors: ["**"] }), grant({ src: ["ops"], role: "admin" })]
  })

beforeAll(async () => {
  ;[store, fx, chatty] = await Promise.all([startRedis(), startV2Upstream({ name: "fx" }), startChattyUpstream()])
  ;[r1, r2] = await Promise.all([replica(), replica()])
  await Promise.all([untilReady(r1, 2), untilReady(r2, 2)])
}, 60_000)

afterAll(async () => {
  await Promise.all([r1?.close(), r2?.close()])
  await Promise.all([store?.stop(), fx?.close(), chatty?.close()])
})

type Login = (typeof LOGINS)[number]
type Message = { jsonrpc: "2.0"; id?: string | number; method?: string; params?: Record<string, unknown>; result?: any; error?: any }
interface Session {
  readonly id: string
  readonly headers: Record<string, string>
}

/** Opens a session as `login` on `gateway` (initialize, then initialized). */
const open = async (gateway: RunningGateway, login: Login): Promise<Session> => {
  const response = await rawInitialize(gateway.url, { headers: { "x-api-key": KEYS[login] }, clientName: `${login}-client` })
  await response.text()
  expect(response.status).toBe(200)
  const id = response.headers.get("mcp-session-id")!
  const headers = { ...SESSION_HEADERS, "x-api-key": KEYS[login], "mcp-session-id": id }
  const initialized = await fetch(gateway.url, { method: "POST", headers, body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) })
  await initialized.text()
  expect(initialized.status).toBe(202)
  return { id, headers }
}

/** The JSON-RPC messages of an answer (SSE events or one JSON body). */
const messagesOf = (response: Response, text: string): Array<Message> => {
  if (!response.headers.get("content-type")?.includes("text/event-stream")) return text === "" ? [] : [JSON.parse(text)]
  return text.split("\n").filter((line) => line.startsWith("data: ") && line.length > 6).map((line) => JSON.parse(line.slice(6)))
}

let nextId = 1
/** One request on `gateway` with `headers`; its status and messages. */
const request = async (gateway: RunningGateway, headers: Record<string, string>, method: string, params: Record<string, unknown> = {}) => {
  const response = await fetch(gateway.url, { method: "POST", headers, body: JSON.stringify({ jsonrpc: "2.0", id: nextId++, method, params }) })
  const text = await response.text()
  return { status: response.status, messages: messagesOf(response, text) }
}

/** `fx_whoami` on `gateway`: 200 with the tool's answer, or the refusal. */
const whoami = (gateway: RunningGateway, headers: Record<string, string>) => request(gateway, headers, "tools/call", { name: "fx_whoami", arguments: {} })

const SERVED = { status: 200, messages: [{ jsonrpc: "2.0", id: expect.any(Number), result: { content: [{ type: "text", text: "fx" }] } }] }
const NOT_FOUND = { status: 404, messages: [{ jsonrpc: "2.0", id: null, error: { code: -32001, message: "Session not found" } }] }

const activeSessions = async (gateway: RunningGateway) => {
  const text = await (await fetch(`${gateway.origin}/metrics`, { headers: { "x-api-key": OPS_KEY } })).text()
  return Number(/^aperture_active_sessions (\d+)$/m.exec(text)?.[1])
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe("2025-era sessions shared by two replicas", () => {
  it("stays bound to the caller who opened it: 404 for anyone else on either replica, served to its caller on both", async () => {
    const alice = await open(r1, "alice")
    const asBob = { ...alice.headers, "x-api-key": KEYS.bob }
    // Bob first on r2, which holds no copy: refused from the record alone.
    expect(await whoami(r2, asBob)).toEqual(NOT_FOUND)
    expect(await whoami(r1, asBob)).toEqual(NOT_FOUND)
    expect(await whoami(r2, alice.headers)).toEqual(SERVED)
    expect(await whoami(r1, alice.headers)).toEqual(SERVED)
    // And still refused once r2 holds its copy.
    expect(await whoami(r2, asBob)).toEqual(NOT_FOUND)
    const listed = await request(r2, alice.headers, "tools/list")
    expect(listed.status).toBe(200)
    expect(listed.messages[0]?.result.tools.map((t: { name: string }) => t.name)).toContain("fx_whoami")
  })

  it("cancels a direct call running on r1 when notifications/cancelled reaches r2: 202, the upstream stops, no answer is sent", async () => {
    const carol = await open(r1, "carol")
    const before = { ...fx.slowCalls }
    const callId = nextId++
    const abort = new AbortController()
    const response = await fetch(r1.url, {
      method: "POST",
      headers: carol.headers,
      signal: abort.signal,
      body: JSON.stringify({ jsonrpc: "2.0", id: callId, method: "tools/call", params: { name: "fx_slow", arguments: { steps: 30, ms: 100 }, _meta: { progressToken: "p" } } })
    })
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toContain("text/event-stream")
    const received: Array<Message> = []
    let streamEnded = false
    const reading = (async () => {
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
      let buffered = ""
      try {
        for (;;) {
          const { done, value } = await reader.read()
          if (done) break
          buffered += value
          const events = buffered.split("\n\n")
          buffered = events.pop()!
          for (const event of events) {
            for (const line of event.split("\n")) if (line.startsWith("data: ") && line.length > 6) received.push(JSON.parse(line.slice(6)))
          }
        }
        streamEnded = true
      } catch {
        // aborted by the test
      }
    })()
    await eventually(() => received.some((m) => m.method === "notifications/progress"), 10_000, "progress of the call on r1")

    const cancel = await fetch(r2.url, {
      method: "POST",
      headers: carol.headers,
      body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: callId, reason: "changed my mind" } })
    })
    expect(cancel.status).toBe(202)
    expect(await cancel.text()).toBe("")
    await eventually(() => fx.slowCalls.cancelled > before.cancelled, 10_000, "the upstream to see the cancellation")
    // A cancelled call is answered no more; its stream stays open until the caller leaves (sessionCalls.ts).
    await sleep(500)
    expect(received.filter((m) => m.id === callId)).toEqual([])
    expect(streamEnded).toBe(false)
    expect(fx.slowCalls.completed).toBe(before.completed)
    expect(fx.slowCalls.started).toBe(before.started + 1)
    abort.abort()
    await reading
    // The session goes on.
    expect(await whoami(r2, carol.headers)).toEqual(SERVED)
  })

  const levelsLogged = (messages: Array<Message>) =>
    messages.filter((m) => m.method === "notifications/message").map((m) => m.params!["level"])
  const chatter = async (gateway: RunningGateway, headers: Record<string, string>) => {
    const answer = await request(gateway, headers, "tools/call", { name: "chat_chatter", arguments: {} })
    expect(answer.status).toBe(200)
    expect(answer.messages.at(-1)).toMatchObject({ result: { content: [{ type: "text", text: "chattered" }] } })
    return levelsLogged(answer.messages)
  }

  it("applies logging/setLevel asked on r1 to calls on r2, whether r2 held a copy then (the bus) or builds one later (the record)", async () => {
    const dave = await open(r1, "dave")
    // r2's copy, built before any level was asked: everything reaches the caller.
    expect(await chatter(r2, dave.headers)).toEqual([...LEVELS])
    const set = await request(r1, dave.headers, "logging/setLevel", { level: "warning" })
    expect(set).toEqual({ status: 200, messages: [{ jsonrpc: "2.0", id: expect.any(Number), result: {} }] })
    expect(await chatter(r1, dave.headers)).toEqual(["warning", "error"])
    await eventually(async () => (await chatter(r2, dave.headers)).length === 2, 5_000, "r2 to hear the level")
    expect(await chatter(r2, dave.headers)).toEqual(["warning", "error"])

    // A session r2 first sees after the level was set: its copy takes the level from the record.
    const erin = await open(r1, "erin")
    expect(await request(r1, erin.headers, "logging/setLevel", { level: "error" })).toMatchObject({ status: 200 })
    expect(await chatter(r2, erin.headers)).toEqual(["error"])
  })

  it("ends on a DELETE sent to r2 for a session r1 opened: 200, then 404 on both, and the caller's slot is free", async () => {
    const frank = await open(r1, "frank")
    expect(await whoami(r1, frank.headers)).toEqual(SERVED)
    // One session per caller: the cap is reached.
    const refused = await rawInitialize(r2.url, { headers: { "x-api-key": KEYS.frank } })
    await refused.text()
    expect(refused.status).toBe(429)

    const deleted = await fetch(r2.url, { method: "DELETE", headers: frank.headers })
    await deleted.text()
    expect(deleted.status).toBe(200)
    expect(await whoami(r2, frank.headers)).toEqual(NOT_FOUND)
    // r1 held a copy: the DELETE's broadcast drops it.
    await eventually(async () => (await whoami(r1, frank.headers)).status === 404, 3_000, "r1 to drop the ended session")
    expect(await whoami(r1, frank.headers)).toEqual(NOT_FOUND)

    const again = await rawInitialize(r1.url, { headers: { "x-api-key": KEYS.frank } })
    await again.text()
    expect(again.status).toBe(200)
    expect(again.headers.get("mcp-session-id")).not.toBe(frank.id)
  })

  it("stays ended when a copy touches it after the DELETE (a replica that has not heard of it yet does not bring it back)", async () => {
    const client = createClient({ url: store.url })
    await client.connect()
    try {
      const records = makeRedisSessionRecords({
        client: client as unknown as CommandClient,
        connection: () => 0,
        keyPrefix: "ended-test:",
        idleTimeout: Duration.minutes(1)
      })
      await Effect.runPromise(records.save("s1", "{}"))
      records.remove("s1")
      // The touch a copy sends on its timer, racing the DELETE's broadcast.
      records.touch("s1", "{}")
      await eventually(async () => (await client.exists("ended-test:session:s1:ended")) === 1, 3_000, "the end mark")
      await new Promise((resolve) => setTimeout(resolve, 100))
      expect(await client.exists("ended-test:session:s1")).toBe(0)
      expect(await Effect.runPromise(records.load("s1"))).toBeUndefined()
      // A session Redis merely lost (no end mark) is still put back by a touch.
      await Effect.runPromise(records.save("s2", "{}"))
      await client.del("ended-test:session:s2")
      records.touch("s2", "{}")
      await eventually(async () => (await client.exists("ended-test:session:s2")) === 1, 3_000, "the lost record put back")
    } finally {
      await client.quit()
    }
  })

  it("survives Redis restarting empty: served by r1 meanwhile, and by r2 too once touches put its record back", async () => {
    const grace = await open(r1, "grace")
    expect(await whoami(r1, grace.headers)).toEqual(SERVED)
    await store.stop()
    try {
      expect(await whoami(r1, grace.headers)).toEqual(SERVED)
    } finally {
      await store.start()
    }
    expect(await whoami(r1, grace.headers)).toEqual(SERVED)
    // r2 never held it: it needs the record, gone with Redis until r1's touch puts it back.
    const started = Date.now()
    await eventually(async () => {
      expect(await whoami(r1, grace.headers)).toEqual(SERVED)
      return (await whoami(r2, grace.headers)).status === 200
    }, 8_000, "r2 to serve the session")
    expect(Date.now() - started).toBeLessThan(8_000)
    expect(await whoami(r2, grace.headers)).toEqual(SERVED)
  })

  it("survives Redis restarting empty while unused: after the reconnection every held session is put back, not only those in use", async () => {
    // A pair with a longer idle timeout (touches every ~3.3 s), so the session can sit unused
    // across a touch and the restart without idling out.
    const [r3, r4] = await Promise.all([replica("10 seconds"), replica("10 seconds")])
    try {
      await Promise.all([untilReady(r3, 2), untilReady(r4, 2)])
      const ivan = await open(r3, "ivan")
      expect(await whoami(r3, ivan.headers)).toEqual(SERVED)
      // One touch after that use goes by; from then on the session is "not used lately".
      await sleep(3_600)
      await store.stop()
      await store.start()
      // Not used on r3 meanwhile: only r3's reconnection brings its record back for r4.
      await eventually(async () => (await whoami(r4, ivan.headers)).status === 200, 5_000, "r4 to serve the quiet session")
      expect(await whoami(r4, ivan.headers)).toEqual(SERVED)
    } finally {
      await Promise.all([r3.close(), r4.close()])
    }
  }, 30_000)

  it("writes a call's stream to Redis only once the client may hold an event id: never for a quick call", async () => {
    const inspector = createClient({ url: store.url })
    await inspector.connect()
    /** Stream entries Redis has added so far (XADD runs only for call streams). */
    const xadds = () => commandCalls(inspector, "xadd")
    try {
      const judy = await open(r1, "judy")
      const before = await xadds()
      for (let i = 0; i < 5; i++) expect(await whoami(r1, judy.headers)).toEqual(SERVED)
      expect(await xadds()).toBe(before)
      // A call that outlives the held first writes (50 ms): its priming event id reaches the client.
      const slow = await request(r1, judy.headers, "tools/call", { name: "fx_slow", arguments: { steps: 3, ms: 100 } })
      expect(slow.status).toBe(200)
      // The owner entry, what was sent before, the rest, and the end mark.
      expect(await xadds()).toBeGreaterThanOrEqual(before + 2)
    } finally {
      inspector.destroy()
    }
  })

  it("replays a direct call's stream on r2 only to its own session: another caller's session with its event id gets what an unknown id gets", async () => {
    const kate = await open(r1, "kate")
    const mallory = await open(r2, "mallory")
    const callId = nextId++
    const cut = new AbortController()
    const response = await fetch(r1.url, {
      method: "POST",
      headers: kate.headers,
      signal: cut.signal,
      body: JSON.stringify({ jsonrpc: "2.0", id: callId, method: "tools/call", params: { name: "fx_slow", arguments: { steps: 8, ms: 150 }, _meta: { progressToken: "kate" } } })
    })
    expect(response.status).toBe(200)
    let lastEventId = ""
    for await (const event of sseEvents(response.body!)) {
      lastEventId = event.lastEventId ?? lastEventId
      if (event.data !== "" && JSON.parse(event.data).method === "notifications/progress") break
    }
    cut.abort()
    /** `GET` + `Last-Event-ID` on r2 as `session`: its status and the messages it carried. */
    const resumeOnR2 = async (session: Session, eventId: string) => {
      const resumed = await fetch(r2.url, { headers: { ...session.headers, accept: "text/event-stream", "last-event-id": eventId } })
      return { status: resumed.status, messages: messagesOf(resumed, await resumed.text()) }
    }
    // The event id names r1 and the stream: a made-up stream of r1 is what "unknown" looks like.
    const [stream] = lastEventId.split(".")
    const unknown = await resumeOnR2(mallory, `${stream!.slice(0, stream!.lastIndexOf(":"))}:${crypto.randomUUID()}.2`)
    expect(unknown).toEqual({ status: 200, messages: [] })
    expect(await resumeOnR2(mallory, lastEventId)).toEqual(unknown)
    // Kate's own session resumes it there: the rest of the progress, then the answer.
    const own = await resumeOnR2(kate, lastEventId)
    expect(own.status).toBe(200)
    expect(own.messages.filter((m) => m.method === "notifications/progress").length).toBeGreaterThan(0)
    expect(own.messages.at(-1)).toMatchObject({ id: callId, result: { content: [{ type: "text", text: "done after 8" }] } })
  })

  it("goes on when one replica's copy idles out: r2 rebuilds it from the record while r1 kept it in use", async () => {
    const henry = await open(r1, "henry")
    expect(await whoami(r2, henry.headers)).toEqual(SERVED)
    expect(await activeSessions(r2)).toBeGreaterThan(0)
    // Used on r1 only: r2's copy (and every other copy on r2) idles out, the session does not.
    await eventually(async () => {
      expect(await whoami(r1, henry.headers)).toEqual(SERVED)
      return (await activeSessions(r2)) === 0
    }, 10_000, "r2 to drop its idle copy")
    // Still open: still in henry's one slot, and served on both.
    const refused = await rawInitialize(r2.url, { headers: { "x-api-key": KEYS.henry } })
    await refused.text()
    expect(refused.status).toBe(429)
    expect(await whoami(r2, henry.headers)).toEqual(SERVED)
    expect(await whoami(r1, henry.headers)).toEqual(SERVED)
  })
})
