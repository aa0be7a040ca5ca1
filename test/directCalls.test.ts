/**
 * `tools/call` on a 2025-era session, answered by the gateway itself and sent to a
 * streamable-HTTP upstream without the SDK client (`src/endpoint/era2025/sessionCalls.ts`,
 * `src/relay/upstreamCall.ts`): what the SDK did on that path still happens. A broken
 * connection resumes with Last-Event-ID and misses nothing, an upstream that ends its stream
 * mid-call (SSE polling) is resumed, errors keep their codes, and the answer reaches the caller
 * in the shape the SDK server gave it.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { inputRequired, inputResponse, McpServer, ProtocolError, Server } from "@modelcontextprotocol/server"
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { CreateMessageRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as z from "zod"
import type { RunningGateway } from "../src/Aperture.js"
import { bearer, grant, mcp } from "../src/index.js"
import { sseEvents } from "../src/upstream/sseEvents.js"
import { eventually, openRawSession, SESSION_HEADERS, startGateway, untilReady } from "./helpers/gateway.js"
import { startFront } from "./fixtures/front.js"
import { serveBothEras, type ServedBothEras } from "./fixtures/serveBothEras.js"

/** Calls of `ticks` the upstream saw cancelled. */
let cancelledTicks = 0

/** Asks the client's model on the request's own stream (`requestSampling` would use the session's GET stream). */
const askModel = async (ctx: { mcpReq: { send: (request: never) => Promise<unknown> } }) =>
  await ctx.mcpReq.send({
    method: "sampling/createMessage",
    params: { messages: [{ role: "user", content: { type: "text", text: "hi" } }], maxTokens: 10 }
  } as never) as { content: unknown }

/** A 2025-only upstream (sessions, event store, SSE polling), as servers predating 2026-07-28 are. */
const buildLegacyUpstream = () => {
  const server = new McpServer({ name: "legacy-upstream", version: "1.0.0" }, { capabilities: { logging: {} } })
  server.registerTool("ticks", {
    description: "Reports progress every `ms`, `steps` times, then answers",
    inputSchema: z.object({ steps: z.number().int(), ms: z.number().int() })
  }, async ({ ms, steps }, ctx) => {
    for (let i = 1; i <= steps; i++) {
      await new Promise((r) => setTimeout(r, ms))
      if (ctx.mcpReq.signal.aborted) {
        cancelledTicks++
        throw new Error("cancelled")
      }
      const token = ctx.mcpReq._meta?.progressToken
      if (token !== undefined) {
        await ctx.mcpReq.notify({ method: "notifications/progress", params: { progressToken: token, progress: i, total: steps } })
      }
    }
    return { content: [{ type: "text", text: `ticked ${steps}` }] }
  })
  server.registerTool("polls", { description: "Ends its response stream mid-call, then answers" }, async (ctx) => {
    const token = ctx.mcpReq._meta?.progressToken
    if (token !== undefined) await ctx.mcpReq.notify({ method: "notifications/progress", params: { progressToken: token, progress: 1 } })
    // SEP-1699: the server closes the stream; the client resumes it with Last-Event-ID.
    ctx.http?.closeSSE?.()
    await new Promise((r) => setTimeout(r, 300))
    if (token !== undefined) await ctx.mcpReq.notify({ method: "notifications/progress", params: { progressToken: token, progress: 2 } })
    return { content: [{ type: "text", text: "answered after the break" }] }
  })
  server.registerTool("pings", { description: "Pings the client mid-call" }, async (ctx) => {
    await ctx.mcpReq.send({ method: "ping" })
    return { content: [{ type: "text", text: "pong" }] }
  })
  server.registerTool("asks", { description: "Asks the client's model mid-call" }, async (ctx) => {
    const answer = await askModel(ctx)
    return { content: [{ type: "text", text: `model said: ${(answer.content as { text?: string }).text}` }] }
  })
  server.registerPrompt("askedPrompt", { description: "Asks the client's model, then prompts with its answer" }, async (ctx) => {
    const answer = await askModel(ctx)
    return { messages: [{ role: "user", content: { type: "text", text: `model said: ${(answer.content as { text?: string }).text}` } }] }
  })
  server.registerResource("askedResource", "asked://model", { description: "Asks the client's model, then answers with it" }, async (uri, ctx) => {
    const answer = await askModel(ctx)
    return { contents: [{ uri: uri.href, text: `model said: ${(answer.content as { text?: string }).text}` }] }
  })
  server.registerTool("meta", { description: "Answers with the _meta it was called with" }, async (ctx) => ({
    content: [{ type: "text", text: JSON.stringify(ctx.mcpReq._meta ?? {}) }]
  }))
  server.registerTool("refuses", { description: "Answers with a JSON-RPC error" }, async () => {
    throw new Error("never")
  })
  return server
}

/** A low-level server whose tool answers with a JSON-RPC error (McpServer turns throws into tool errors). */
const buildRefusingUpstream = () => {
  const server = new Server({ name: "refusing", version: "1.0.0" }, { capabilities: { tools: {} } })
  server.setRequestHandler("tools/list", async () => ({ tools: [{ name: "refuse", inputSchema: { type: "object" } }] }))
  server.setRequestHandler("tools/call", async () => {
    throw new ProtocolError(-32050, "refused by the upstream", { why: "testing" })
  })
  return server as unknown as McpServer
}

/** A server of both eras (the gateway reaches it over 2026-07-28) whose tool asks for sampling. */
const buildAskingUpstream = () => {
  const server = new McpServer({ name: "asking", version: "1.0.0" })
  server.registerTool("sample", { description: "Asks the client's model", inputSchema: z.object({ prompt: z.string() }) }, async ({ prompt }, ctx) => {
    const answer = inputResponse(ctx.mcpReq.inputResponses, "llm")
    if (answer.kind !== "sampling") {
      return inputRequired({
        inputRequests: { llm: inputRequired.createMessage({ messages: [{ role: "user", content: { type: "text", text: prompt } }], maxTokens: 10 }) }
      })
    }
    const content = answer.result.content as { type: string; text?: string }
    return { content: [{ type: "text", text: `model said: ${content.text}` }] }
  })
  return server
}

let upstream: ServedBothEras
let refusing: ServedBothEras
let asking: ServedBothEras
let gateway: RunningGateway

beforeAll(async () => {
  upstream = await serveBothEras(buildLegacyUpstream, 0, { legacyOnly: true })
  refusing = await serveBothEras(buildRefusingUpstream, 0, { legacyOnly: true })
  asking = await serveBothEras(buildAskingUpstream)
  gateway = await startGateway({
    connectors: { old: mcp({ url: upstream.url }), low: mcp({ url: refusing.url }), neu: mcp({ url: asking.url }) },
    grants: [grant({ src: ["*"], connectors: ["old/**", "low/**", "neu/**"] })]
  })
  await untilReady(gateway, 3)
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await refusing?.close()
  await asking?.close()
})

const mcpUrl = () => `${gateway.origin}/v1/mcp`

const call = (id: number, name: string, args: Record<string, unknown>, progressToken?: string) =>
  JSON.stringify({
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: { name, arguments: args, ...(progressToken !== undefined && { _meta: { progressToken } }) }
  })

interface Event {
  readonly id: string | undefined
  readonly message: Record<string, unknown> | undefined
}

/** Reads a response's events until `stop` says so or the stream ends. */
const readEvents = async (body: ReadableStream<Uint8Array>, stop: (events: ReadonlyArray<Event>) => boolean = () => false) => {
  const events: Array<Event> = []
  for await (const event of sseEvents(body)) {
    events.push({ id: event.lastEventId, message: event.data === "" ? undefined : JSON.parse(event.data) })
    if (stop(events)) break
  }
  return events
}

const progressOf = (events: ReadonlyArray<Event>) =>
  events.flatMap((e) => e.message?.["method"] === "notifications/progress" ? [(e.message["params"] as { progress: number }).progress] : [])

describe("direct tools/call on a 2025-era session", () => {
  it("reaches the upstreams over 2025-era sessions (the path under test)", () => {
    expect(upstream.transports.size).toBe(1)
    expect(refusing.transports.size).toBe(1)
  })

  it("answers with a priming event and ids, and relays progress under the caller's token", async () => {
    const session = await openRawSession(mcpUrl(), "progress")
    const response = await fetch(mcpUrl(), { method: "POST", headers: session, body: call(1, "old_ticks", { steps: 3, ms: 20 }, "tok") })
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toBe("text/event-stream")
    expect(response.headers.get("mcp-session-id")).toBe(session["mcp-session-id"])
    const events = await readEvents(response.body!)
    expect(events[0]).toEqual({ id: expect.any(String), message: undefined })
    expect(progressOf(events)).toEqual([1, 2, 3])
    for (const event of events) {
      if (event.message?.["method"] === "notifications/progress") expect((event.message["params"] as { progressToken: unknown }).progressToken).toBe("tok")
    }
    expect(events.at(-1)?.message).toEqual({ jsonrpc: "2.0", id: 1, result: { content: [{ type: "text", text: "ticked 3" }] } })
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length)
  })

  it("resumes a broken connection with Last-Event-ID while the call runs, missing nothing", async () => {
    const session = await openRawSession(mcpUrl(), "resumer")
    const first = new AbortController()
    const response = await fetch(mcpUrl(), {
      method: "POST",
      headers: session,
      body: call(2, "old_ticks", { steps: 6, ms: 150 }, "p"),
      signal: first.signal
    })
    const before = await readEvents(response.body!, (events) => progressOf(events).length === 1)
    first.abort()
    expect(progressOf(before)).toEqual([1])
    await new Promise((r) => setTimeout(r, 200))
    const resumed = await fetch(mcpUrl(), {
      headers: { ...session, accept: "text/event-stream", "last-event-id": before.at(-1)!.id! }
    })
    expect(resumed.status).toBe(200)
    const after = await readEvents(resumed.body!)
    // The events the broken connection missed are replayed, then the call's later ones arrive live.
    expect(progressOf(after)).toEqual([2, 3, 4, 5, 6])
    expect(after.at(-1)?.message).toEqual({ jsonrpc: "2.0", id: 2, result: { content: [{ type: "text", text: "ticked 6" }] } })
  })

  it("refuses a second connection to a stream that is still connected", async () => {
    const session = await openRawSession(mcpUrl(), "twice")
    const response = await fetch(mcpUrl(), { method: "POST", headers: session, body: call(3, "old_ticks", { steps: 4, ms: 150 }, "q") })
    const reader = response.body!.getReader()
    const first = await reader.read()
    const primingId = /^id: (\S+)$/m.exec(new TextDecoder().decode(first.value))?.[1]
    expect(primingId).toBeDefined()
    const again = await fetch(mcpUrl(), { headers: { ...session, accept: "text/event-stream", "last-event-id": primingId! } })
    expect(again.status).toBe(409)
    await again.text()
    // The first connection still gets the whole call.
    let rest = ""
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += new TextDecoder().decode(chunk.value)
    expect(rest).toContain('"id":3,"result"')
  })

  it("resumes an upstream stream that ended mid-call (SSE polling) and still answers", async () => {
    const client = new V1Client({ name: "poller", version: "1" })
    await client.connect(new V1Transport(new URL(mcpUrl())))
    const progress: Array<number> = []
    const result = await client.callTool({ name: "old_polls", arguments: {} }, undefined, {
      onprogress: (p) => progress.push(p.progress)
    })
    expect(result.content).toEqual([{ type: "text", text: "answered after the break" }])
    expect(progress).toEqual([1, 2])
    await client.close()
  })

  it("forwards a client's own _meta keys, and never the caller's progress token", async () => {
    const session = await openRawSession(mcpUrl(), "meta")
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: 7,
      method: "tools/call",
      params: { name: "old_meta", arguments: {}, _meta: { progressToken: "mine", "example.com/trace": "t-1" } }
    })
    const events = await readEvents((await fetch(mcpUrl(), { method: "POST", headers: session, body })).body!)
    const seen = JSON.parse((events.at(-1)?.message as { result: { content: Array<{ text: string }> } }).result.content[0]!.text)
    expect(seen["example.com/trace"]).toBe("t-1")
    expect(seen["progressToken"]).not.toBe("mine")
  })

  it("passes a tool error result on as the upstream sent it", async () => {
    const session = await openRawSession(mcpUrl(), "tool-errors")
    const response = await fetch(mcpUrl(), { method: "POST", headers: session, body: call(4, "old_refuses", {}) })
    const events = await readEvents(response.body!)
    const answer = events.at(-1)?.message as { id: number; result?: { isError?: boolean; content?: Array<{ text: string }> } }
    expect(answer.id).toBe(4)
    expect(answer.result?.isError).toBe(true)
    expect(answer.result?.content?.[0]?.text).toContain("never")
  })

  it("passes an upstream's JSON-RPC error on with its code, message and data", async () => {
    const session = await openRawSession(mcpUrl(), "rpc-errors")
    const response = await fetch(mcpUrl(), { method: "POST", headers: session, body: call(8, "low_refuse", {}) })
    const events = await readEvents(response.body!)
    expect(events.at(-1)?.message).toEqual({
      jsonrpc: "2.0",
      id: 8,
      error: { code: -32050, message: "refused by the upstream", data: { why: "testing" } }
    })
  })

  it("answers an unknown tool with invalid params, as the SDK server did", async () => {
    const session = await openRawSession(mcpUrl(), "unknown")
    const response = await fetch(mcpUrl(), { method: "POST", headers: session, body: call(5, "old_nope", {}) })
    const events = await readEvents(response.body!)
    expect(events.at(-1)?.message).toEqual({ jsonrpc: "2.0", id: 5, error: { code: -32602, message: "Tool old_nope not found" } })
  })

  it("answers a failed call exactly as the SDK path does (a batch takes that path)", async () => {
    const session = await openRawSession(mcpUrl(), "both-paths")
    const answerOf = async (body: string, id: number) => {
      const response = await fetch(mcpUrl(), { method: "POST", headers: session, body })
      return (await readEvents(response.body!)).find((e) => e.message?.["id"] === id)?.message
    }
    for (const [name, expected] of [
      ["old_nope", { code: -32602, message: "Tool old_nope not found" }],
      ["low_refuse", { code: -32050, message: "refused by the upstream", data: { why: "testing" } }]
    ] as const) {
      const direct = await answerOf(call(20, name, {}), 20)
      const sdk = await answerOf(`[${call(20, name, {})}]`, 20)
      expect(direct).toEqual({ jsonrpc: "2.0", id: 20, error: expected })
      expect(JSON.stringify(sdk)).toBe(JSON.stringify(direct))
    }
  })

  it("stops a call the caller cancels, and answers it no more", async () => {
    const session = await openRawSession(mcpUrl(), "canceller")
    const response = await fetch(mcpUrl(), { method: "POST", headers: session, body: call(6, "old_ticks", { steps: 20, ms: 100 }, "c") })
    const reading = readEvents(response.body!)
    await new Promise((r) => setTimeout(r, 250))
    const cancelled = await fetch(mcpUrl(), {
      method: "POST",
      headers: session,
      body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 6, reason: "changed my mind" } })
    })
    expect(cancelled.status).toBe(202)
    // As on the SDK path, the stream is answered no more but stays open until the client closes
    // it: a client that saw it end would take it for a dropped connection and resume it.
    const settled = await Promise.race([reading.then(() => "ended"), new Promise((r) => setTimeout(() => r("open"), 600))])
    expect(settled).toBe("open")
    // …and the cancellation reached the upstream.
    await eventually(() => cancelledTicks === 1, 5_000, "the upstream to see the cancellation")
  })
})

describe("requests to the caller on a direct call", () => {
  /** A 2025-11-25 session whose client declares `capabilities`. */
  const openSession = async (capabilities: Record<string, unknown>) => {
    const response = await fetch(mcpUrl(), {
      method: "POST",
      headers: SESSION_HEADERS,
      body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities, clientInfo: { name: "raw", version: "1" } } })
    })
    await response.text()
    const session = { ...SESSION_HEADERS, "mcp-session-id": response.headers.get("mcp-session-id")! }
    await (await fetch(mcpUrl(), { method: "POST", headers: session, body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) })).text()
    return session
  }

  it("answers an upstream's ping itself, as the SDK client did", async () => {
    const session = await openSession({})
    const events = await readEvents((await fetch(mcpUrl(), { method: "POST", headers: session, body: call(9, "old_pings", {}) })).body!)
    expect(events.some((e) => e.message?.["method"] === "ping")).toBe(false)
    expect(events.at(-1)?.message).toEqual({ jsonrpc: "2.0", id: 9, result: { content: [{ type: "text", text: "pong" }] } })
  })

  it("turns a 2026 upstream's input_required into a request to the caller, answered in a batch", async () => {
    const session = await openSession({ sampling: {} })
    const response = await fetch(mcpUrl(), { method: "POST", headers: session, body: call(10, "neu_sample", { prompt: "hi" }) })
    const reader = sseEvents(response.body!)
    let asked: Record<string, unknown> | undefined
    while (asked === undefined) {
      const next = await reader.next()
      if (next.done) break
      const message = next.value.data === "" ? undefined : JSON.parse(next.value.data)
      if (message?.method === "sampling/createMessage") asked = message
    }
    expect(asked?.["id"]).toEqual(expect.stringMatching(/^aperture-/))
    // 2025-03-26 allowed batches: the answer to a direct call's request is taken out of one.
    const answered = await fetch(mcpUrl(), {
      method: "POST",
      headers: session,
      body: JSON.stringify([{ jsonrpc: "2.0", id: asked!["id"], result: { role: "assistant", content: { type: "text", text: "hello" }, model: "m" } }])
    })
    expect(answered.status).toBe(202)
    let answer: unknown
    for (let next = await reader.next(); !next.done; next = await reader.next()) {
      if (next.value.data !== "") answer = JSON.parse(next.value.data)
    }
    expect(answer).toEqual({ jsonrpc: "2.0", id: 10, result: { content: [{ type: "text", text: "model said: hello" }] } })
  })

  it("passes on a 2026 upstream's refusal of a caller that cannot answer (HTTP 400, -32021)", async () => {
    const session = await openSession({})
    const events = await readEvents((await fetch(mcpUrl(), { method: "POST", headers: session, body: call(11, "neu_sample", { prompt: "hi" }) })).body!)
    const answer = events.at(-1)?.message as { id: number; error?: { code: number; data?: unknown } }
    expect(answer.id).toBe(11)
    expect(answer.error?.code).toBe(-32021)
    expect(answer.error?.data).toMatchObject({ requiredCapabilities: { sampling: {} } })
  })
})

/** A client whose model answers `answer`, slowly enough that two callers' calls are in flight at once. */
const sampler = async (answer: string, url: string) => {
  const client = new V1Client({ name: answer, version: "1" }, { capabilities: { sampling: {} } })
  client.setRequestHandler(CreateMessageRequestSchema, async () => {
    // A guess between two calls in flight would be refused or wrong.
    await new Promise((r) => setTimeout(r, 100))
    return { role: "assistant", content: { type: "text", text: answer }, model: "test-model" }
  })
  await client.connect(new V1Transport(new URL(url)))
  return client
}

describe("an upstream's requests to the caller", () => {
  it("reach the caller whose prompts/get or resources/read asked, with two in flight", async () => {
    const [first, second] = await Promise.all([sampler("first-model", mcpUrl()), sampler("second-model", mcpUrl())])
    const [a, b] = await Promise.all([
      first.getPrompt({ name: "old_askedPrompt" }),
      second.getPrompt({ name: "old_askedPrompt" })
    ])
    expect(a.messages).toEqual([{ role: "user", content: { type: "text", text: "model said: first-model" } }])
    expect(b.messages).toEqual([{ role: "user", content: { type: "text", text: "model said: second-model" } }])
    const [c, d] = await Promise.all([
      first.readResource({ uri: "old-asked://model" }),
      second.readResource({ uri: "old-asked://model" })
    ])
    expect(c.contents).toMatchObject([{ text: "model said: first-model" }])
    expect(d.contents).toMatchObject([{ text: "model said: second-model" }])
    await Promise.all([first.close(), second.close()])
  })
})

describe("an upstream that redirects calls", () => {
  /**
   * A front for the 2025-era upstream that answers every `tools/call` POST to `/mcp` with a 307:
   * to `/mcp?moved` on its own origin, or to another server entirely. `seen` records what each
   * origin received.
   */
  const startRedirectingFront = async (target: string, elsewhere: string | undefined) => {
    const seen: Array<{ path: string; authorization: string | undefined }> = []
    const front = await startFront(() => target, (req, body, res) => {
      seen.push({ path: req.url ?? "", authorization: req.headers["authorization"] })
      if (!(req.method === "POST" && req.url === "/mcp" && body.includes("\"tools/call\""))) return false
      res.writeHead(307, { location: elsewhere ?? "/mcp?moved" }).end()
      return true
    })
    return { ...front, seen }
  }

  it("follows a same-origin redirect as the SDK client does, and never sends the credential elsewhere", async () => {
    const thief = await startRedirectingFront(upstream.url, undefined)
    const sameOrigin = await startRedirectingFront(upstream.url, undefined)
    const crossOrigin = await startRedirectingFront(upstream.url, thief.url)
    const secret = `s-${crypto.randomUUID()}`
    const redirected = await startGateway({
      connectors: {
        near: mcp({ url: sameOrigin.url, auth: bearer({ secret }) }),
        far: mcp({ url: crossOrigin.url, auth: bearer({ secret }) })
      },
      grants: [grant({ src: ["*"], connectors: ["near/**", "far/**"] })]
    })
    try {
      await untilReady(redirected, 2)
      const client = new V1Client({ name: "redirected", version: "1" })
      await client.connect(new V1Transport(new URL(`${redirected.origin}/v1/mcp`)))
      for (let i = 0; i < 2; i++) {
        const near = await client.callTool({ name: "near_ticks", arguments: { steps: 1, ms: 1 } })
        expect(near.content).toEqual([{ type: "text", text: "ticked 1" }])
      }
      expect(sameOrigin.seen.filter((r) => r.path === "/mcp?moved").length).toBe(2)
      await expect(client.callTool({ name: "far_ticks", arguments: { steps: 1, ms: 1 } })).rejects.toThrow()
      expect(thief.seen.map((r) => r.authorization)).not.toContain(`Bearer ${secret}`)
      await client.close()
    } finally {
      await redirected.close()
      await Promise.all([thief.close(), sameOrigin.close(), crossOrigin.close()])
    }
  })

  it("routes the upstream's requests to the caller that asked on the SDK client's path too", async () => {
    const front = await startRedirectingFront(upstream.url, undefined)
    const redirected = await startGateway({
      connectors: { near: mcp({ url: front.url }) },
      grants: [grant({ src: ["*"], connectors: ["near/**"] })]
    })
    const url = `${redirected.origin}/v1/mcp`
    try {
      await untilReady(redirected, 1)
      const [first, second] = await Promise.all([sampler("first-model", url), sampler("second-model", url)])
      const [a, b] = await Promise.all([
        first.callTool({ name: "near_asks", arguments: {} }),
        second.callTool({ name: "near_asks", arguments: {} })
      ])
      expect(a.content).toEqual([{ type: "text", text: "model said: first-model" }])
      expect(b.content).toEqual([{ type: "text", text: "model said: second-model" }])
      // The calls took the SDK client's path (redirected), not the direct one.
      expect(front.seen.filter((r) => r.path === "/mcp?moved").length).toBe(2)
      await Promise.all([first.close(), second.close()])
    } finally {
      await redirected.close()
      await front.close()
    }
  })
})
