/**
 * The static credentials through the gateway, against upstreams that check them: bearer,
 * apiKey in a header and in the query, basic. The caller's own `Authorization` never reaches
 * an upstream. Each plugin's own cases are beside it (plugins/auth/*.test.ts).
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { grant, mcp } from "../src/config/dsl.js"
import { apiKey } from "../plugins/auth/apiKey.js"
import { basic } from "../plugins/auth/basic.js"
import { bearer } from "../plugins/auth/bearer.js"
import { connectorsOf, eventually, startGateway } from "./helpers/gateway.js"
import { type ProtectedUpstream, startProtectedUpstream } from "./fixtures/protectedUpstream.js"

const unique = (label: string) => `${label}-${crypto.randomUUID()}`
const BEARER = unique("bearer")
const HEADER_KEY = unique("header-key")
const QUERY_KEY = unique("query-key")
const PASSWORD = unique("pass:word")
const CALLER_TOKEN = unique("caller-token")

let upstreams: Record<"bearer" | "header" | "query" | "basic", ProtectedUpstream>
let gateway: RunningGateway

beforeAll(async () => {
  upstreams = {
    bearer: await startProtectedUpstream({ kind: "static", check: (r) => r.headers.get("authorization") === `Bearer ${BEARER}` }),
    header: await startProtectedUpstream({ kind: "static", check: (r) => r.headers.get("x-api-key") === HEADER_KEY }),
    query: await startProtectedUpstream({ kind: "static", check: (r) => new URL(r.url).searchParams.get("api_key") === QUERY_KEY }),
    basic: await startProtectedUpstream({
      kind: "static",
      check: (r) => r.headers.get("authorization") === `Basic ${Buffer.from(`svc:${PASSWORD}`).toString("base64")}`
    })
  }
  gateway = await startGateway({
    connectors: {
      bearer: mcp({ url: upstreams.bearer.url, auth: bearer({ secret: BEARER }) }),
      header: mcp({ url: upstreams.header.url, auth: apiKey({ secret: HEADER_KEY, name: "X-Api-Key", in: "header" }) }),
      query: mcp({ url: upstreams.query.url, auth: apiKey({ secret: QUERY_KEY, name: "api_key", in: "query" }) }),
      basic: mcp({ url: upstreams.basic.url, auth: basic({ username: "svc", password: PASSWORD }) }),
      unauthorized: mcp({ url: upstreams.bearer.url, auth: bearer({ secret: "wrong" }) })
    },
    grants: [grant({ src: ["local"], connectors: ["**"] })]
  })
  await eventually(async () => (await connectorsOf(gateway)).connectors.every((c) => c.status !== "connecting"), 30_000, "first attempts")
})

afterAll(async () => {
  await gateway?.close()
  for (const upstream of Object.values(upstreams ?? {})) await upstream.close()
})

describe("static credentials", () => {
  it("each upstream accepts its credential, and the caller can use every connector", async () => {
    const { connectors } = await connectorsOf(gateway)
    const status = Object.fromEntries(connectors.map((c) => [c.id, c.status]))
    expect(status).toMatchObject({ bearer: "ready", header: "ready", query: "ready", basic: "ready" })
    // The caller presents a token of its own; it must not travel on.
    const client = new Client({ name: "caller", version: "1" }, { versionNegotiation: { mode: "auto" } })
    await client.connect(
      new StreamableHTTPClientTransport(new URL(gateway.url), { requestInit: { headers: { authorization: `Bearer ${CALLER_TOKEN}` } } })
    )
    for (const id of ["bearer", "header", "query", "basic"]) {
      expect(await client.callTool({ name: `${id}_echo`, arguments: { message: id } })).toMatchObject({ content: [{ text: `echo: ${id}` }] })
    }
    await client.close()
    for (const upstream of Object.values(upstreams)) {
      expect(upstream.requests.length).toBeGreaterThan(0)
      for (const seen of upstream.requests) {
        expect(JSON.stringify(seen)).not.toContain(CALLER_TOKEN)
      }
    }
  })

  it("an upstream that refuses a static credential leaves that connector misconfigured and empty", async () => {
    const state = (await connectorsOf(gateway)).connectors.find((c) => c.id === "unauthorized")
    expect(state).toMatchObject({ status: "misconfigured", tools: [] })
    expect(state?.error).toMatch(/HTTP 401/)
  })

  it("apiKey in the query goes in the URL of every request, and a header key only in its header", () => {
    expect(upstreams.query.requests.every((r) => new URL(r.url).searchParams.get("api_key") === QUERY_KEY)).toBe(true)
    expect(upstreams.header.requests.every((r) => r.headers["x-api-key"] === HEADER_KEY && !r.url.includes(HEADER_KEY))).toBe(true)
  })
})
