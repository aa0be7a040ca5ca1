/**
 * The SDK path's request streams in a cluster (issue 20, "resumable event streams are in Redis"):
 * `resources/read` and `prompts/get` on 2025-era sessions are served by the SDK transport, not
 * the direct `tools/call` path, and their streams are kept in Redis like direct calls' once their
 * first events leave before the answer. Two gateway processes (`aperture start` from the source)
 * on one real Redis, each request sent to a chosen replica, a real v2 SDK upstream whose report
 * resource and prompt report progress before answering:
 * - a stream cut after its first progress on r1 is resumed with Last-Event-ID on r2: the missed
 *   progress and the answer arrive (a 2025-03-26 batch's too, both answers); another session of
 *   the same caller resuming it on r2 gets nothing of it (as for an unknown event id);
 * - a quick SDK-path request (read, prompt, completion) writes nothing to Redis (no XADD);
 * - a message outside any request sent while no replica holds the session's GET stream is kept
 *   in Redis, once, and sent on the next GET stream, on another replica;
 * - r1 SIGKILLed under a slow prompt: resuming on r2 gives the caller an error for that request
 *   in bounded time, never a hang.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createMcpHandler, McpServer } from "@modelcontextprotocol/server"
import { createClient } from "redis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Event, progressOf, readEvents } from "../helpers/eventStream.js"
import { serveFetch } from "../fixtures/nodeAdapter.js"
import { type CliGateway, startCliGateway } from "../helpers/cliGateway.js"
import { eventually, openRawSession, SESSION_HEADERS } from "../helpers/gateway.js"
import { commandCalls, startRedis, type TestRedis } from "../helpers/redis.js"
import { startStatefulUpstream, type StatefulUpstream } from "../fixtures/statefulUpstream.js"

const STEPS = 4
const STEP_MS = 300

/** A real v2 SDK server: a report resource and prompt that report progress STEPS times before answering, and quick ones. */
const startSlowUpstream = async () => {
  const steps = async (ctx: { mcpReq: { _meta?: { progressToken?: string | number }; notify: (n: never) => Promise<void> } }) => {
    for (let i = 1; i <= STEPS; i++) {
      await new Promise((resolve) => setTimeout(resolve, STEP_MS))
      const token = ctx.mcpReq._meta?.progressToken
      if (token !== undefined) {
        await ctx.mcpReq.notify({ method: "notifications/progress", params: { progressToken: token, progress: i, total: STEPS } } as never)
      }
    }
  }
  const handler = createMcpHandler(() => {
    const server = new McpServer({ name: "slow", version: "1.0.0" })
    server.registerResource("report", "slow://report", { mimeType: "text/plain" }, async (uri, ctx) => {
      await steps(ctx as never)
      return { contents: [{ uri: uri.href, mimeType: "text/plain", text: "the report" }] }
    })
    server.registerResource("note", "slow://note", { mimeType: "text/plain" }, async (uri) => ({
      contents: [{ uri: uri.href, mimeType: "text/plain", text: "a note" }]
    }))
    server.registerPrompt("brief", { description: "Takes its time" }, async (ctx) => {
      await steps(ctx as never)
      return { messages: [{ role: "user", content: { type: "text", text: "the brief" } }] }
    })
    server.registerPrompt("hello", { description: "Quick" }, async () => ({
      messages: [{ role: "user", content: { type: "text", text: "hello" } }]
    }))
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

/** Races `promise` against `ms`: "hung" when it did not settle in time. */
const within = <A>(promise: Promise<A>, ms: number) => {
  let timer: NodeJS.Timeout | undefined
  const hang = new Promise<"hung">((resolve) => (timer = setTimeout(() => resolve("hung"), ms)))
  return Promise.race([promise, hang]).finally(() => clearTimeout(timer))
}

const dir = mkdtempSync(join(tmpdir(), "aperture-sdk-streams-"))
let store: TestRedis
let upstream: Awaited<ReturnType<typeof startSlowUpstream>>
/** A stateful upstream, one session per caller (`isolation: "caller"`), that can send outside any request. */
let stateful: StatefulUpstream
let r1: CliGateway
let r2: CliGateway

const diagnostics = () => `r1:\n${r1?.process.output()}\n\nr2:\n${r2?.process.output()}`

let nextId = 1
const post = (gateway: CliGateway, session: Record<string, string>, method: string, params: Record<string, unknown>, signal?: AbortSignal) =>
  fetch(gateway.url, { method: "POST", headers: session, body: JSON.stringify({ jsonrpc: "2.0", id: nextId++, method, params }), signal: signal ?? null })

/** A request whose stream is read until its first progress event, then cut. */
const cutAfterFirstProgress = async (gateway: CliGateway, session: Record<string, string>, method: string, params: Record<string, unknown>) => {
  const id = nextId
  const cut = new AbortController()
  const response = await post(gateway, session, method, { ...params, _meta: { progressToken: `p${id}` } }, cut.signal)
  expect(response.status).toBe(200)
  expect(response.headers.get("content-type")).toBe("text/event-stream")
  const before = await readEvents(response.body!, (events) => progressOf(events).length === 1)
  cut.abort()
  return { id, before }
}

/**
 * `GET` + `Last-Event-ID`. A replica that has not yet seen the cut connection close answers 409
 * (the stream still has its connection), as a client that resumes at once may see: it tries again.
 */
const resume = async (gateway: CliGateway, session: Record<string, string>, lastEventId: string) => {
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(gateway.url, { headers: { ...session, accept: "text/event-stream", "last-event-id": lastEventId } })
    if (response.status !== 409 || attempt === 10) return response
    await response.text()
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** The name or URI the gateway shows for the upstream's `name`. */
const listed = async (gateway: CliGateway, session: Record<string, string>, method: "resources/list" | "prompts/list", key: "uri" | "name", name: string) => {
  const events = await readEvents((await post(gateway, session, method, {})).body!)
  const items = events.at(-1)!.message!["result"][method === "resources/list" ? "resources" : "prompts"] as Array<Record<string, string>>
  const found = items.find((item) => item[key]!.includes(name))
  expect(found, JSON.stringify(items)).toBeDefined()
  return found![key]!
}

/** A raw 2025-03-26 session (batches; no priming events). */
const openOldSession = async (gateway: CliGateway) => {
  const headers = { ...SESSION_HEADERS, "mcp-protocol-version": "2025-03-26" }
  const init = await fetch(gateway.url, {
    method: "POST",
    headers,
    body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-03-26", capabilities: {}, clientInfo: { name: "old", version: "1" } } })
  })
  await init.text()
  const session = { ...headers, "mcp-session-id": init.headers.get("mcp-session-id")! }
  await (await fetch(gateway.url, { method: "POST", headers: session, body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) })).text()
  return session
}

describe("the SDK path's streams in a cluster (two replicas, one Redis)", () => {
  beforeAll(async () => {
    ;[store, upstream, stateful] = await Promise.all([startRedis(), startSlowUpstream(), startStatefulUpstream()])
    const config = join(dir, "aperture.config.ts")
    writeFileSync(config, `
      import { defineConfig, grant, mcp, redis } from "aperture"
      export default defineConfig({
        cluster: redis({ url: ${JSON.stringify(store.url)}, keyPrefix: "sdk-streams-test:" }),
        secretKey: "the sdkStreams test's secret key, 32 characters or more",
        connectors: {
          slow: mcp({ url: ${JSON.stringify(upstream.url)} }),
          mem: mcp({ url: ${JSON.stringify(stateful.url)}, isolation: "caller" })
        },
        grants: [grant({ src: ["local"], connectors: ["**"] })]
      })`)
    // One after the other: two cold starts at once on two cores take longer than in turn.
    r1 = await startCliGateway(config)
    r2 = await startCliGateway(config)
    for (const gateway of [r1, r2]) {
      await eventually(async () => (await fetch(`${gateway.origin}/healthz?ready`)).status === 200, 30_000, "replica ready")
    }
  }, 120_000)

  afterAll(async () => {
    await Promise.all([r1?.process.kill("SIGKILL"), r2?.close()])
    await Promise.all([upstream?.close(), stateful?.close(), store?.stop()])
    rmSync(dir, { recursive: true, force: true })
  })

  it("a resources/read stream cut on r1 after its first progress is resumed with Last-Event-ID on r2: the missed progress, then the answer", async () => {
    const session = await openRawSession(r1.url, "sdk-resumer")
    const uri = await listed(r1, session, "resources/list", "uri", "slow://report")
    const { before, id } = await cutAfterFirstProgress(r1, session, "resources/read", { uri })
    // A priming event (an id, no data) first, then the first step.
    expect(before[0]).toEqual({ id: expect.any(String), message: undefined })
    expect(progressOf(before)).toEqual([1])
    const resumed = await resume(r2, session, before.at(-1)!.id)
    expect(resumed.status, `${await resumed.clone().text().catch(() => "")}\n${diagnostics()}`).toBe(200)
    const after = await readEvents(resumed.body!)
    expect(progressOf(after), diagnostics()).toEqual([2, 3, 4])
    expect(after.at(-1)?.message).toMatchObject({
      jsonrpc: "2.0",
      id,
      result: { contents: [{ uri, mimeType: "text/plain", text: "the report" }] }
    })
    // The serving replica resumes its own stream too (its SDK transport, from its own store).
    const prompt = await listed(r1, session, "prompts/list", "name", "brief")
    const second = await cutAfterFirstProgress(r1, session, "prompts/get", { name: prompt })
    const resumedHere = await resume(r1, session, second.before.at(-1)!.id)
    expect(resumedHere.status).toBe(200)
    const again = await readEvents(resumedHere.body!)
    expect(progressOf(again)).toEqual([2, 3, 4])
    expect(again.at(-1)?.message).toMatchObject({ id: second.id, result: { messages: [{ content: { text: "the brief" } }] } })
  }, 30_000)

  it("resumes an SDK stream on r2 only for its own session: another session of the same caller gets what an unknown id gets", async () => {
    const session = await openRawSession(r1.url, "sdk-owner")
    const other = await openRawSession(r2.url, "sdk-other")
    const prompt = await listed(r1, session, "prompts/list", "name", "brief")
    const { before, id } = await cutAfterFirstProgress(r1, session, "prompts/get", { name: prompt })
    const lastEventId = before.at(-1)!.id
    const resumeAs = async (headers: Record<string, string>, eventId: string) => {
      const response = await resume(r2, headers, eventId)
      return { status: response.status, events: await readEvents(response.body!) }
    }
    // The event id names r1 and the stream (`<replica>:<stream>.<n>`): a made-up stream of r1 is "unknown".
    const stream = lastEventId.slice(0, lastEventId.lastIndexOf("."))
    const unknown = await resumeAs(other, `${stream.slice(0, stream.lastIndexOf(":"))}:${crypto.randomUUID()}.2`)
    expect(unknown).toEqual({ status: 200, events: [] })
    expect(await resumeAs(other, lastEventId), diagnostics()).toEqual(unknown)
    // Its own session still resumes it there.
    const own = await resumeAs(session, lastEventId)
    expect(own.status).toBe(200)
    expect(progressOf(own.events), diagnostics()).toEqual([2, 3, 4])
    expect(own.events.at(-1)?.message).toMatchObject({ id, result: { messages: [{ content: { text: "the brief" } }] } })
  }, 30_000)

  it("a 2025-03-26 batch of two slow reads cut on r1 is resumed on r2: both requests' progress and answers", async () => {
    // Batches are of 2025-03-26 (no priming event then: the first event is the first progress).
    const session = await openOldSession(r1)
    const uri = await listed(r1, session, "resources/list", "uri", "slow://report")
    const ids = [nextId++, nextId++]
    const cut = new AbortController()
    const response = await fetch(r1.url, {
      method: "POST",
      headers: session,
      signal: cut.signal,
      body: JSON.stringify(ids.map((id) => ({ jsonrpc: "2.0", id, method: "resources/read", params: { uri, _meta: { progressToken: `b${id}` } } })))
    })
    expect(response.status).toBe(200)
    const before = await readEvents(response.body!, (events) => progressOf(events).length === 1)
    cut.abort()
    const after = await readEvents((await resume(r2, session, before.at(-1)!.id)).body!)
    const all = [...before, ...after]
    for (const id of ids) {
      expect(all.filter((e) => e.message?.["params"]?.progressToken === `b${id}`).map((e) => e.message!["params"].progress), diagnostics()).toEqual([1, 2, 3, 4])
      expect(after.find((e) => e.message?.["id"] === id)?.message).toMatchObject({ result: { contents: [{ text: "the report" }] } })
    }
  }, 30_000)

  it("writes nothing to Redis for quick SDK-path requests (a read, a prompt, a completion; with or without priming), its stream for a slow one", async () => {
    const inspector = createClient({ url: store.url })
    await inspector.connect()
    const xadds = () => commandCalls(inspector, "xadd")
    try {
      const session = await openRawSession(r1.url, "sdk-quick")
      const old = await openOldSession(r1)
      const note = await listed(r1, session, "resources/list", "uri", "slow://note")
      const hello = await listed(r1, session, "prompts/list", "name", "hello")
      const start = await xadds()
      // A client before 2025-11-25 (no priming event) too.
      const oldRead = await readEvents((await post(r1, old, "resources/read", { uri: note })).body!)
      expect(oldRead.at(-1)?.message).toMatchObject({ result: { contents: [{ text: "a note" }] } })
      for (let i = 0; i < 3; i++) {
        for (const [method, params] of [
          ["resources/read", { uri: note }],
          ["prompts/get", { name: hello }],
          ["completion/complete", { ref: { type: "ref/prompt", name: hello }, argument: { name: "x", value: "" } }]
        ] as const) {
          const response = await post(r1, session, method, params)
          const events = await readEvents(response.body!)
          expect(events.at(-1)?.message, method).toHaveProperty("jsonrpc", "2.0")
        }
      }
      // Past the hold (50 ms) of the last one: nothing was written late either.
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(await xadds()).toBe(start)
      const report = await listed(r1, session, "resources/list", "uri", "slow://report")
      const slow = await readEvents((await post(r1, session, "resources/read", { uri: report, _meta: { progressToken: "q" } })).body!)
      expect(progressOf(slow)).toEqual([1, 2, 3, 4])
      // The owner entry, STEPS progress events, the answer, the end mark.
      await eventually(async () => (await xadds()) >= start + STEPS + 3, 5_000, "the slow read's stream in Redis")
    } finally {
      inspector.destroy()
    }
  }, 30_000)

  it("keeps a message outside any request sent while no replica holds the session's GET stream, once, and delivers it when one opens on another replica", async () => {
    const session = await openRawSession(r1.url, "sdk-outside")
    // r1 opens the caller's upstream session (and reads its GET stream there).
    const remembered = await readEvents((await post(r1, session, "tools/call", { name: "mem_remember", arguments: { value: "v" } })).body!)
    expect(remembered.at(-1)?.message).toMatchObject({ result: { content: [{ text: "remembered" }] } })
    const inspector = createClient({ url: store.url })
    await inspector.connect()
    try {
      const upstreamSession = (await inspector.hGetAll("sdk-streams-test:upstream:mem:local"))["id"]!
      expect(upstreamSession).toBeDefined()
      await eventually(() => stateful.gets(upstreamSession) === 1, 10_000, "r1's GET stream on the upstream session")
      const kept = `sdk-streams-test:session:${session["mcp-session-id"]}:outside`
      // r2 holds a copy of the session too: both hear the message, it is kept once.
      await listed(r2, session, "prompts/list", "name", "hello")
      // No GET stream on any replica: the message is kept.
      await stateful.sendOutside(upstreamSession, { method: "notifications/message", params: { level: "info", data: "while nobody listened" } })
      await eventually(async () => (await inspector.lLen(kept)) === 1, 10_000, "the message kept in Redis")
      const opened = new AbortController()
      const stream = await fetch(r2.url, { headers: { ...session, accept: "text/event-stream" }, signal: opened.signal })
      expect(stream.status).toBe(200)
      const events: Array<Event> = []
      const reading = readEvents(stream.body!, (seen) => {
        events.splice(0, events.length, ...seen)
        return false
      }).catch(() => {})
      await eventually(() => events.some((e) => e.message?.["method"] === "notifications/message"), 10_000, `the kept message on r2's GET stream\n${diagnostics()}`)
      await new Promise((resolve) => setTimeout(resolve, 500)) // a second copy would have come by now
      opened.abort()
      await reading
      expect(events.filter((e) => e.message?.["method"] === "notifications/message").map((e) => e.message!["params"])).toEqual([
        expect.objectContaining({ level: "info", data: "while nobody listened" })
      ])
      // Handed over: kept no more.
      expect(await inspector.lLen(kept)).toBe(0)
    } finally {
      inspector.destroy()
    }
  }, 30_000)

  it("SIGKILL r1 under a slow prompts/get: resuming on r2 gives an error for that request in bounded time, never a hang", async () => {
    const session = await openRawSession(r2.url, "sdk-orphan")
    const prompt = await listed(r1, session, "prompts/list", "name", "brief")
    // Long enough to be running when r1 dies.
    const { before, id } = await cutAfterFirstProgress(r1, session, "prompts/get", { name: prompt })
    await r1.process.kill("SIGKILL")
    const killedAt = Date.now()
    const resumed = await resume(r2, session, before.at(-1)!.id)
    expect(resumed.status, diagnostics()).toBe(200)
    const outcome = await within(readEvents(resumed.body!), 15_000)
    expect(outcome, `the resumed stream hung\n${diagnostics()}`).not.toBe("hung")
    const events = outcome as ReadonlyArray<Event>
    // The steps r1 sent before it died, perhaps; then the error, once r1's heartbeat lapsed.
    expect(events.at(-1)?.message).toEqual({
      jsonrpc: "2.0",
      id,
      error: { code: -32603, message: "The gateway replica running this call stopped; its outcome is unknown" }
    })
    expect(Date.now() - killedAt).toBeLessThan(15_000)
    // The session goes on, on r2.
    const hello = await listed(r2, session, "prompts/list", "name", "hello")
    const answer = await readEvents((await post(r2, session, "prompts/get", { name: hello })).body!)
    expect(answer.at(-1)?.message).toMatchObject({ result: { messages: [{ content: { text: "hello" } }] } })
  }, 40_000)
})
