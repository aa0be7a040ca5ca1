/**
 * Standing abuse suite for `/v1/mcp` (issue 18): a fixed corpus of malformed and odd requests
 * (bad JSON, wrong shapes, deep nesting, bodies around the 4 MiB limit, odd Content-Type and
 * Accept, batches, unknown versions, unknown sessions; both eras) and a few hundred requests
 * mutated from valid ones with a fixed fast-check seed. Every answer must come in time, be no
 * 5xx, carry well-formed JSON-RPC when it is JSON, and the documented code where JSON-RPC
 * determines it; afterwards real clients of both SDK lines still list and call tools, and the
 * gateway logged no crash.
 */
import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  PROTOCOL_VERSION_META_KEY
} from "@modelcontextprotocol/server"
import fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { grant, mcp } from "../../src/index.js"
import { MAX_BODY_BYTES } from "../../src/endpoint/McpEndpoint.js"
import { startV2Upstream, type V2Upstream } from "../fixtures/v2Upstream.js"
import { startCapturingGateway } from "../helpers/capture.js"
import { connectV1, connectV2, eventually, openRawSession, SESSION_HEADERS } from "../helpers/gateway.js"
import { boundedRequest, type BoundedResponse, messagesOf } from "./boundedRequest.js"

const SEED = 18_2025
const GENERATED_CASES = 300

let fx: V2Upstream
let gateway: Awaited<ReturnType<typeof startCapturingGateway>>
/** Headers of an open 2025-era session (initialize done first, as the era requires). */
let session: Record<string, string>

const MODERN_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  "mcp-protocol-version": "2026-07-28"
} as const

/** The standard headers a 2026-07-28 request carries, named after its body (SEP-2243). */
const modernHeaders = (body: { method?: unknown; params?: unknown }): Record<string, string> => {
  const params = (body.params ?? {}) as { name?: unknown }
  return {
    ...MODERN_HEADERS,
    ...(typeof body.method === "string" && { "mcp-method": body.method }),
    ...(body.method === "tools/call" && typeof params.name === "string" && { "mcp-name": params.name })
  }
}

/** The `_meta` envelope a 2026-07-28 request carries instead of a session. */
const modernMeta = {
  [PROTOCOL_VERSION_META_KEY]: "2026-07-28",
  [CLIENT_INFO_META_KEY]: { name: "fuzz", version: "1" },
  [CLIENT_CAPABILITIES_META_KEY]: {}
}

beforeAll(async () => {
  fx = await startV2Upstream({ name: "fx" })
  gateway = await startCapturingGateway({
    connectors: { fx: mcp({ url: fx.url }) },
    grants: [grant({ src: ["*"], connectors: ["fx/tools/echo", "fx/tools/whoami", "fx/tools/structured", "fx/resources/**", "fx/prompts/**"] })]
  }, { untraced: true })
  session = await openRawSession(gateway.url, "fuzz")
  await eventually(async () => {
    const listed = await boundedRequest(gateway.url, { method: "POST", headers: session, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }) })
    return listed.body.includes("fx_echo")
  }, 20_000, "fx ready")
})

afterAll(async () => {
  await gateway?.close()
  await fx?.close()
})

interface Case {
  readonly name: string
  readonly method?: "GET" | "POST" | "DELETE"
  readonly headers: Record<string, string>
  readonly body?: string | Buffer
  /** The JSON-RPC error code the answer must carry, where JSON-RPC determines it. */
  readonly code?: number
  /** The HTTP status the answer must have, where it is determined. */
  readonly status?: number
}

const json = (value: unknown) => JSON.stringify(value)
const request = (id: unknown, method: unknown, params?: unknown) => ({ jsonrpc: "2.0", id, method, ...(params !== undefined && { params }) })
const echo = (message: string) => request(7, "tools/call", { name: "fx_echo", arguments: { message } })
const modernEcho = (message: string) => request(8, "tools/call", { name: "fx_echo", arguments: { message }, _meta: modernMeta })
const initialize = (protocolVersion: unknown) =>
  request(0, "initialize", { protocolVersion, capabilities: {}, clientInfo: { name: "fuzz", version: "1" } })

const isErrorObject = (error: unknown) =>
  typeof error === "object" && error !== null &&
  Number.isInteger((error as { code?: unknown }).code) && typeof (error as { message?: unknown }).message === "string"

/** A well-formed JSON-RPC answer, error or result, or a notification/request the server sends. */
const wellFormed = (message: unknown): boolean => {
  if (typeof message !== "object" || message === null || Array.isArray(message)) return false
  const m = message as Record<string, unknown>
  if (m["jsonrpc"] !== "2.0") return false
  if ("error" in m) return isErrorObject(m["error"]) && !("result" in m)
  return "result" in m || typeof m["method"] === "string"
}

const errorsOf = (response: BoundedResponse) =>
  messagesOf(response).flatMap((m) => (m as { error?: { code: number } }).error ?? [])

/** Sends one case and checks what every answer must be; returns the answer. */
const check = async (c: Case): Promise<BoundedResponse> => {
  const response = await boundedRequest(gateway.url, {
    method: c.method ?? "POST",
    headers: c.headers,
    ...(c.body !== undefined && { body: c.body }),
    timeoutMs: 5_000
  })
  const what = `${c.name}: ${response.status} ${response.body.slice(0, 300)}`
  expect(response.timedOut, `no answer in 5 s: ${what}`).toBe(false)
  expect(response.status, what).toBeGreaterThanOrEqual(200)
  expect(response.status, what).toBeLessThan(500)
  const type = String(response.headers["content-type"] ?? "")
  if (type.startsWith("application/json") || type.startsWith("text/event-stream")) {
    let messages: Array<unknown> = []
    expect(() => (messages = messagesOf(response)), `unparsable body: ${what}`).not.toThrow()
    for (const message of messages) expect(wellFormed(message), `not JSON-RPC: ${what}`).toBe(true)
    // An HTTP refusal carries its reason as a JSON-RPC error.
    if (response.status >= 400) expect(errorsOf(response).length, `4xx without a JSON-RPC error: ${what}`).toBeGreaterThan(0)
  } else if (response.status >= 400) {
    expect(response.body.trim(), `4xx with a non-JSON body: ${what}`).toBe("")
  }
  if (c.status !== undefined) expect(response.status, what).toBe(c.status)
  if (c.code !== undefined) expect(errorsOf(response).map((e) => e.code), what).toContain(c.code)
  return response
}

const fixedCorpus = (): Array<Case> => {
  const s = session
  const m = modernHeaders(echo(""))
  const valid = json(echo("hi"))
  const deepArray = "[".repeat(10_000) + "]".repeat(10_000)
  const deepObject = '{"a":'.repeat(10_000) + "1" + "}".repeat(10_000)
  // Whole body sizes: one byte over the limit, and just under it (a valid call with a long message).
  const over = json(echo("x".repeat(MAX_BODY_BYTES)))
  const underMessage = "y".repeat(MAX_BODY_BYTES - json(echo("")).length - 16)
  return [
    // Invalid JSON, both eras.
    ...[s, m].flatMap((headers, era) => [
      { name: `truncated ${era}`, headers, body: valid.slice(0, -3), code: -32700, status: 400 },
      { name: `trailing garbage ${era}`, headers, body: valid + "}}garbage", code: -32700, status: 400 },
      { name: `NaN ${era}`, headers, body: '{"jsonrpc":"2.0","id":NaN,"method":"ping"}', code: -32700, status: 400 },
      { name: `single quotes ${era}`, headers, body: "{'jsonrpc':'2.0'}", code: -32700, status: 400 },
      { name: `empty body ${era}`, headers, body: "", code: -32700, status: 400 },
      { name: `lone surrogate and NUL ${era}`, headers, body: Buffer.from([0x7b, 0x00, 0xed, 0xa0, 0x80, 0x7d]), code: -32700, status: 400 },
      // A UTF-8 BOM: parsed or refused as a parse error, either is fine.
      { name: `BOM ${era}`, headers, body: "\uFEFF" + valid },
      { name: `utf-16 body ${era}`, headers: { ...headers, "content-type": "application/json; charset=utf-16" }, body: Buffer.from("\uFEFF" + valid, "utf16le") }
    ]),
    // Wrong shapes.
    ...[s, m].flatMap((headers, era) => [
      { name: `array of non-objects ${era}`, headers, body: json([1, "two", null, true]) },
      { name: `a number ${era}`, headers, body: "42" },
      { name: `a string ${era}`, headers, body: '"tools/list"' },
      { name: `null ${era}`, headers, body: "null" },
      { name: `jsonrpc 1.0 ${era}`, headers, body: json({ ...echo("a"), jsonrpc: "1.0" }) },
      { name: `no jsonrpc ${era}`, headers, body: json({ id: 1, method: "tools/list" }) },
      { name: `id object ${era}`, headers, body: json({ ...echo("a"), id: { x: 1 } }) },
      { name: `id boolean ${era}`, headers, body: json({ ...echo("a"), id: true }) },
      { name: `id huge number ${era}`, headers, body: '{"jsonrpc":"2.0","id":1e400,"method":"ping"}' },
      { name: `id 2^64 ${era}`, headers, body: '{"jsonrpc":"2.0","id":18446744073709551617,"method":"ping"}' },
      { name: `id null ${era}`, headers, body: json({ ...echo("a"), id: null }) },
      { name: `method number ${era}`, headers, body: json(request(1, 42)) },
      { name: `method object ${era}`, headers, body: json(request(1, { toString: "x" })) },
      { name: `method empty ${era}`, headers, body: json(request(1, "")) },
      { name: `params array (call) ${era}`, headers, body: json(request(1, "tools/call", ["fx_echo", { message: "a" }])) },
      { name: `params array (list) ${era}`, headers, body: json(request(1, "tools/list", [])) },
      { name: `params string ${era}`, headers, body: json(request(1, "tools/call", "fx_echo")) },
      { name: `arguments array ${era}`, headers, body: json(request(1, "tools/call", { name: "fx_echo", arguments: ["a"] })) },
      { name: `tool name object ${era}`, headers, body: json(request(1, "tools/call", { name: { a: 1 } })) },
      { name: `unknown tool ${era}`, headers, body: json(request(1, "tools/call", { name: "nope_nothing", arguments: {} })) },
      { name: `cursor object ${era}`, headers, body: json(request(1, "tools/list", { cursor: { a: 1 } })) },
      { name: `prototype keys ${era}`, headers, body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fx_echo","arguments":{"__proto__":{"polluted":1},"constructor":{"prototype":{"p":1}},"message":"a"}}}' },
      { name: `deep array ${era}`, headers, body: deepArray },
      { name: `deep object ${era}`, headers, body: deepObject },
      { name: `deep params ${era}`, headers, body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fx_echo","arguments":${deepObject}}}` },
      { name: `deep id ${era}`, headers, body: `{"jsonrpc":"2.0","id":${deepObject},"method":"ping"}` }
    ]),
    // Method not found (a well-formed request the gateway does not serve).
    { name: "unknown method 2025", headers: s, body: json(request(1, "no/such/method")), code: -32601 },
    { name: "unknown method 2026", headers: { ...m, "mcp-method": "no/such/method" }, body: json(request(1, "no/such/method", { _meta: modernMeta })), code: -32601 },
    // Bodies around the limit, declared and chunked.
    { name: "over the limit 2025", headers: s, body: over, code: -32000, status: 413 },
    { name: "over the limit 2026", headers: m, body: over, code: -32000, status: 413 },
    { name: "declared over the limit, short body", headers: { ...s, "content-length": String(MAX_BODY_BYTES + 1) }, body: valid, status: 413 },
    { name: "just under the limit 2025", headers: s, body: json(echo(underMessage)) },
    { name: "just under the limit 2026", headers: m, body: json(modernEcho(underMessage)) },
    // Content-Type and Accept.
    ...[s, m].flatMap((headers, era) => [
      { name: `text/plain ${era}`, headers: { ...headers, "content-type": "text/plain" }, body: valid },
      { name: `no content-type ${era}`, headers: Object.fromEntries(Object.entries(headers).filter(([k]) => k !== "content-type")), body: valid },
      { name: `multipart ${era}`, headers: { ...headers, "content-type": "multipart/form-data; boundary=x" }, body: `--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n${valid}\r\n--x--\r\n` },
      { name: `form ${era}`, headers: { ...headers, "content-type": "application/x-www-form-urlencoded" }, body: "a=b" },
      { name: `no accept ${era}`, headers: Object.fromEntries(Object.entries(headers).filter(([k]) => k !== "accept")), body: valid },
      { name: `accept only SSE ${era}`, headers: { ...headers, accept: "text/event-stream" }, body: valid },
      { name: `accept only JSON ${era}`, headers: { ...headers, accept: "application/json" }, body: valid },
      { name: `accept */* ${era}`, headers: { ...headers, accept: "*/*" }, body: valid },
      { name: `accept garbage ${era}`, headers: { ...headers, accept: ";;;,,=q" }, body: valid }
    ]),
    // Batches.
    ...[s, m].flatMap((headers, era) => [
      { name: `empty batch ${era}`, headers, body: "[]" },
      { name: `mixed batch ${era}`, headers, body: json([request(1, "ping"), { jsonrpc: "2.0", method: "notifications/initialized" }, 5, request(2, "no/such")]) },
      { name: `batch of notifications ${era}`, headers, body: json([{ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 99 } }, { jsonrpc: "2.0", method: "notifications/roots/list_changed" }]) },
      { name: `batch of answers to nothing ${era}`, headers, body: json([{ jsonrpc: "2.0", id: "aperture-999", result: {} }, { jsonrpc: "2.0", id: 3, error: { code: 1, message: "x" } }]) },
      { name: `batch of 1000 pings ${era}`, headers, body: json(Array.from({ length: 1000 }, (_, i) => request(i, "ping"))) },
      { name: `nested batch ${era}`, headers, body: json([[request(1, "ping")]]) }
    ]),
    // Protocol versions: header and initialize.
    ...["1999-01-01", "2099-12-31", "garbage", "2025-11-25\u00ff", "x".repeat(4096), "", "2026-07-28, 2025-11-25"].flatMap((version) => [
      { name: `header version ${JSON.stringify(version.slice(0, 20))} with session`, headers: { ...s, "mcp-protocol-version": version }, body: json(request(1, "tools/list")) },
      { name: `header version ${JSON.stringify(version.slice(0, 20))} stateless`, headers: { ...modernHeaders(request(1, "tools/list")), "mcp-protocol-version": version }, body: json(request(1, "tools/list", { _meta: modernMeta })) }
    ]),
    ...["1999-01-01", "2099-12-31", "", 20251125, null, { v: 1 }, ["2025-11-25"]].map((version) => ({
      name: `initialize protocolVersion ${JSON.stringify(version)}`,
      headers: { ...SESSION_HEADERS },
      body: json(initialize(version))
    })),
    { name: "initialize without params", headers: { ...SESSION_HEADERS }, body: json(request(0, "initialize")) },
    { name: "initialize on a session", headers: s, body: json(initialize("2025-11-25")) },
    { name: "initialize 2026 header", headers: m, body: json(initialize("2026-07-28")) },
    { name: "2026 envelope with a wrong version", headers: modernHeaders(request(1, "tools/list")), body: json(request(1, "tools/list", { _meta: { ...modernMeta, [PROTOCOL_VERSION_META_KEY]: "1999-01-01" } })) },
    { name: "2026 envelope meta not an object", headers: modernHeaders(request(1, "tools/list")), body: json(request(1, "tools/list", { _meta: "x" })) },
    // Sessions: unknown, none where one is needed.
    { name: "unknown session POST", headers: { ...s, "mcp-session-id": crypto.randomUUID() }, body: json(request(1, "tools/list")), code: -32001, status: 404 },
    { name: "unknown session call", headers: { ...s, "mcp-session-id": "nope" }, body: valid, code: -32001, status: 404 },
    { name: "no session 2025", headers: { ...SESSION_HEADERS }, body: json(request(1, "tools/list")) },
    { name: "unknown session GET", method: "GET", headers: { ...s, accept: "text/event-stream", "mcp-session-id": crypto.randomUUID() }, status: 404 },
    { name: "unknown session DELETE", method: "DELETE", headers: { ...s, "mcp-session-id": crypto.randomUUID() }, status: 404 },
    { name: "GET without session", method: "GET", headers: { accept: "text/event-stream", "mcp-protocol-version": "2025-11-25" } },
    { name: "GET stateless era", method: "GET", headers: { ...m, accept: "text/event-stream" } },
    { name: "GET accept JSON only", method: "GET", headers: { ...s, accept: "application/json" } },
    { name: "GET with a body", method: "GET", headers: s, body: valid },
    { name: "GET with a foreign Last-Event-ID", method: "GET", headers: { ...s, accept: "text/event-stream", "last-event-id": "nope_1" } },
    { name: "DELETE without session", method: "DELETE", headers: { "mcp-protocol-version": "2025-11-25" } },
    { name: "DELETE stateless era", method: "DELETE", headers: m },
    { name: "DELETE with a body", method: "DELETE", headers: { ...s, "mcp-session-id": crypto.randomUUID() }, body: valid }
  ]
}

/** Valid requests of both eras, for the mutator to start from. */
const validRequests = (): Array<{ headers: Record<string, string>; body: Record<string, unknown> }> => {
  const bodies = [
    echo("hello"),
    request(2, "tools/list"),
    request(3, "ping"),
    request(4, "resources/list"),
    request(5, "prompts/list"),
    request(6, "tools/call", { name: "fx_structured", arguments: { a: 1, b: 2 } }),
    { jsonrpc: "2.0", method: "notifications/initialized" },
    { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 1 } }
  ]
  return [
    ...bodies.map((body) => ({ headers: session, body })),
    ...bodies.map((body) => ({
      headers: modernHeaders(body),
      body: { ...body, params: { ...(body as { params?: object }).params, _meta: modernMeta } }
    }))
  ]
}

/** A seeded stream of mutations of valid requests (values, keys, headers, raw bytes). */
const generatedCorpus = (): Array<Case> => {
  const bases = validRequests()
  const weird = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.constantFrom(null, true, -1, 0, 2 ** 53 + 1, 1e308, "", "\u0000", "\r\n", "💥".repeat(50), "x".repeat(70_000), [], {})
  )
  const keys = fc.constantFrom("jsonrpc", "id", "method", "params", "result", "error", "name", "arguments", "_meta", "cursor", "__proto__")
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant("set" as const), key: keys, value: weird }),
    fc.record({ kind: fc.constant("delete" as const), key: keys }),
    fc.record({ kind: fc.constant("setParam" as const), key: keys, value: weird }),
    fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
    fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), text: fc.constantFrom("{", "}", "[", "]", ",", ":", '"', "\\", "\u0000", "\uFEFF", "NaN", "1e999") }),
    fc.record({ kind: fc.constant("header" as const), name: fc.constantFrom("mcp-protocol-version", "mcp-session-id", "accept", "content-type", "last-event-id"), value: fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom("", "2026-07-28", "2025-11-25", "2025-03-26", "application/json", "text/event-stream")) }),
    fc.record({ kind: fc.constant("batch" as const), copies: fc.integer({ min: 0, max: 5 }) })
  )
  const cases = fc.sample(fc.tuple(fc.nat({ max: bases.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 3 })), { seed: SEED, numRuns: GENERATED_CASES })
  return cases.map(([which, mutations], n) => {
    const base = bases[which]!
    const body: Record<string, unknown> = structuredClone(base.body)
    const headers: Record<string, string> = { ...base.headers }
    let raw: string | undefined
    let batch: number | undefined
    for (const mutation of mutations) {
      switch (mutation.kind) {
        case "set":
          body[mutation.key] = mutation.value
          break
        case "delete":
          delete body[mutation.key]
          break
        case "setParam": {
          const params = typeof body["params"] === "object" && body["params"] !== null ? body["params"] as Record<string, unknown> : {}
          params[mutation.key] = mutation.value
          body["params"] = params
          break
        }
        case "truncate":
          raw = (raw ?? json(body)).slice(0, mutation.at % (json(body).length + 1))
          break
        case "insert": {
          const text = raw ?? json(body)
          const at = mutation.at % (text.length + 1)
          raw = text.slice(0, at) + mutation.text + text.slice(at)
          break
        }
        case "header":
          // Header values must be sendable bytes: control characters are the socket's business, not the gateway's.
          headers[mutation.name] = mutation.value.replace(/[^\x20-\x7e]/g, "")
          break
        case "batch":
          batch = mutation.copies
      }
    }
    // The session's own sessions must not run out: generated cases never open new ones.
    if (body["method"] === "initialize") body["method"] = "ping"
    const text = raw ?? (batch === undefined ? json(body) : json(Array.from({ length: batch }, () => body)))
    return { name: `generated #${n} ${JSON.stringify(mutations).slice(0, 200)}`, headers, body: text }
  })
}

describe("the /v1/mcp abuse corpus", () => {
  it("answers every fixed case in time with a well-formed error or result, never a 5xx", async () => {
    for (const c of fixedCorpus()) await check(c)
  })

  it(`answers ${GENERATED_CASES} seeded mutations of valid requests the same way`, async () => {
    const corpus = generatedCorpus()
    // A few at a time: loopback is fast, and concurrency is part of abuse.
    for (let i = 0; i < corpus.length; i += 4) await Promise.all(corpus.slice(i, i + 4).map(check))
  })

  it("still serves real clients of both SDK lines afterwards, and logged no crash", async () => {
    const v2 = await connectV2(gateway.url)
    try {
      expect((await v2.listTools()).tools.map((t) => t.name)).toContain("fx_echo")
      expect((await v2.callTool({ name: "fx_echo", arguments: { message: "after" } })).content).toEqual([{ type: "text", text: "echo: after" }])
    } finally {
      await v2.close()
    }
    const v1 = await connectV1(gateway.url)
    try {
      expect((await v1.client.listTools()).tools.map((t) => t.name)).toContain("fx_echo")
      expect((await v1.client.callTool({ name: "fx_echo", arguments: { message: "after" } })).content).toEqual([{ type: "text", text: "echo: after" }])
    } finally {
      await v1.client.close()
    }
    // The first session still works too.
    const listed = await boundedRequest(gateway.url, { method: "POST", headers: session, body: json(request(9, "tools/list")) })
    expect(listed.body).toContain("fx_echo")
    const crashes = gateway.captured.logs.filter((line) =>
      /\n\s+at\s|Fiber terminated|unhandled|defect|Maximum call stack|TypeError|RangeError/i.test(line)
    )
    expect(crashes).toEqual([])
  })
})
