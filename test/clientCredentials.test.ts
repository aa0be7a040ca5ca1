/**
 * OAuth 2.0 client credentials against a real authorization server (oidc-provider) and an
 * upstream that verifies the JWT access tokens it issues: the three client authentication
 * methods, discovery, expiry and early refresh, single-flight, 401 → refresh → retry (and no
 * replay of tools/call), redirect refusal, and a failing token endpoint → misconfigured → recovery.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Schema, TestClock } from "effect"
import { clientCredentials } from "../plugins/auth/clientCredentials.js"
import type { Credential } from "../src/plugin/AuthPlugin.js"
import { AuthPluginTypeId, isAuthPlugin } from "../src/plugin/AuthPlugin.js"
import { grant, mcp } from "../src/config/dsl.js"
import { startCapturingGateway } from "./helpers/capture.js"
import { connectorsOf, connectV2, eventually } from "./helpers/gateway.js"
import { type OAuthServer, startOAuthServer } from "./fixtures/oauthServer.js"
import { type ProtectedUpstream, startProtectedUpstream } from "./fixtures/protectedUpstream.js"

let as: OAuthServer
let upstream: ProtectedUpstream

beforeAll(async () => {
  as = await startOAuthServer()
  upstream = await startProtectedUpstream({ kind: "oauth", issuer: as.issuer, jwksUrl: as.jwksUrl })
})

afterAll(async () => {
  await upstream?.close()
  await as?.close()
})

type Method = "client_secret_basic" | "client_secret_post" | "private_key_jwt"

/** clientCredentials options for one of the authorization server's clients. */
const optionsFor = (method: Method) =>
  method === "client_secret_basic"
    ? { clientId: as.clients.basic.id, clientSecret: as.clients.basic.secret }
    : method === "client_secret_post"
    ? { clientId: as.clients.post.id, clientSecret: as.clients.post.secret, authMethod: method }
    : { clientId: as.clients.jwt.id, privateKey: as.clients.jwt.privateKeyPem, authMethod: method }

const everything = [grant({ src: ["local"], connectors: ["**"] })]

/** Makes the credential directly, as a connector does, in a scope the test closes. */
const makeCredential = (options: Parameters<typeof clientCredentials>[0], upstreamUrl?: string) =>
  Effect.gen(function*() {
    const plugin = clientCredentials(options)
    if (!isAuthPlugin(plugin)) throw new Error("not a plugin")
    const spec = plugin[AuthPluginTypeId]
    const decoded = yield* Schema.decodeUnknown(spec.options)(plugin.options)
    return (yield* spec.make(decoded, {
      connectorId: "test",
      upstreamUrl: upstreamUrl === undefined ? undefined : new URL(upstreamUrl)
    })) as Credential
  })

const request = () => ({ url: new URL(upstream.url), method: "POST", headers: new Headers(), body: undefined })
const bearerOf = (credential: Credential) =>
  Effect.map(credential.authorize(request()), (a) => a.headers?.["authorization"] ?? "")

const tokenRequestsOf = (clientId: string) => as.requests.filter((r) => r.clientId === clientId)

describe("client authentication at the token endpoint", () => {
  it("client_secret_basic (form-encoded before Base64), client_secret_post and private_key_jwt all get tokens the upstream accepts", async () => {
    const before = as.requests.length
    const gateway = await startCapturingGateway({
      connectors: {
        basic: mcp({ url: upstream.url, auth: clientCredentials({ ...optionsFor("client_secret_basic"), tokenUrl: as.tokenUrl, resource: upstream.url, scopes: ["read"], audience: "aperture-test-api" }) }),
        post: mcp({ url: upstream.url, auth: clientCredentials({ ...optionsFor("client_secret_post"), tokenUrl: as.tokenUrl, resource: upstream.url, scopes: ["read"] }) }),
        jwt: mcp({ url: upstream.url, auth: clientCredentials({ ...optionsFor("private_key_jwt"), tokenUrl: as.tokenUrl, resource: upstream.url, scopes: ["read"] }) })
      },
      grants: everything
    })
    try {
      await eventually(async () => (await connectorsOf(gateway)).connectors.every((c) => c.status === "ready"), 30_000, "all ready")
      const client = await connectV2(gateway.url)
      for (const id of ["basic", "post", "jwt"]) {
        expect(await client.callTool({ name: `${id}_echo`, arguments: { message: id } })).toMatchObject({
          content: [{ type: "text", text: `echo: ${id}` }]
        })
      }
      await client.close()
      const requests = as.requests.slice(before).filter((r) => r.ok)
      expect(new Set(requests.map((r) => `${r.clientId} ${r.authMethod}`))).toEqual(
        new Set([
          `${as.clients.basic.id} client_secret_basic`,
          `${as.clients.post.id} client_secret_post`,
          `${as.clients.jwt.id} private_key_jwt`
        ])
      )
      expect(requests.every((r) => r.scope === "read" && r.resource === upstream.url)).toBe(true)
      expect(requests.find((r) => r.clientId === as.clients.basic.id)?.audience).toBe("aperture-test-api")
      // Each token request has a span, and the spans hold no secret.
      const spans = gateway.captured.spans.filter((s) => s.startsWith("oauth.tokenRequest"))
      expect(spans.length).toBeGreaterThanOrEqual(3)
      expect(spans.join("\n")).not.toContain(as.clients.basic.secret)
      // One token each, however many requests the connection made.
      expect(requests).toHaveLength(3)
    } finally {
      await gateway.close()
    }
  })
})

describe("discovery", () => {
  it("finds the token endpoint from the upstream's 401 and metadata, and sends the upstream as resource", async () => {
    const before = as.requests.length
    const prmFetches = () => upstream.requests.length
    const gateway = await startCapturingGateway({
      connectors: { found: mcp({ url: upstream.url, auth: clientCredentials({ ...optionsFor("private_key_jwt") }) }) },
      grants: everything
    })
    try {
      await eventually(async () => (await connectorsOf(gateway)).connectors[0]?.status === "ready", 30_000, "ready")
      const client = await connectV2(gateway.url)
      expect(await client.callTool({ name: "found_echo", arguments: { message: "hi" } })).toMatchObject({ content: [{ text: "echo: hi" }] })
      await client.close()
      const requests = as.requests.slice(before)
      expect(requests.filter((r) => r.ok)).toHaveLength(1)
      expect(requests[0]).toMatchObject({ clientId: as.clients.jwt.id, authMethod: "private_key_jwt", resource: upstream.url })
      expect(prmFetches()).toBeGreaterThan(0)
    } finally {
      await gateway.close()
    }
  })
})

// Token requests go to a real authorization server over real sockets; time, where a case moves it,
// is the test clock (it.scoped), so expiry and backoff are exact and instant.
describe("token cache", () => {
  it.scopedLive("50 concurrent calls on a cold cache make one token request, and all get that token", () =>
    Effect.gen(function*() {
      const before = tokenRequestsOf(as.clients.post.id).length
      const credential = yield* makeCredential({ ...optionsFor("client_secret_post"), tokenUrl: as.tokenUrl })
      const tokens = yield* Effect.all(Array.from({ length: 50 }, () => bearerOf(credential)), { concurrency: "unbounded" })
      expect(tokenRequestsOf(as.clients.post.id).length - before).toBe(1)
      expect(new Set(tokens).size).toBe(1)
      expect(tokens[0]).toMatch(/^Bearer ey/)
    }))

  it.scoped("a failure reaches every waiter from one request, and the next attempt waits for the backoff", () =>
    Effect.gen(function*() {
      const before = as.requests.length
      const credential = yield* makeCredential({ clientId: as.clients.post.id, clientSecret: "wrong", authMethod: "client_secret_post", tokenUrl: as.tokenUrl })
      const first = yield* Effect.all(Array.from({ length: 20 }, () => Effect.flip(bearerOf(credential))), { concurrency: "unbounded" })
      const afterBurst = as.requests.length - before
      yield* Effect.flip(bearerOf(credential))
      const withinBackoff = as.requests.length - before
      yield* TestClock.adjust(Duration.seconds(1))
      yield* Effect.flip(bearerOf(credential))
      const afterBackoff = as.requests.length - before
      expect([...new Set(first.map((e) => e.message))]).toEqual(["token endpoint returned 401 invalid_client: client authentication failed"])
      expect(afterBurst).toBe(1)
      expect(withinBackoff).toBe(1)
      expect(afterBackoff).toBe(2)
    }))

  it.effect("keeps a token until expires_at − min(60 s, 10 % of lifetime), then fetches a new one", () =>
    Effect.gen(function*() {
      const cases = [
        // lifetime, last moment still cached, first moment refreshed (seconds after issue)
        { ttl: 100, keep: 89, refresh: 90 }, // 10 % = 10 s
        { ttl: 3600, keep: 3539, refresh: 3540 } // capped at 60 s
      ]
      for (const { keep, refresh, ttl } of cases) {
        as.ttlSeconds = ttl
        const before = tokenRequestsOf(as.clients.basic.id).length
        // Each case's credential in its own scope, closed before the next case moves the clock.
        const seen = yield* Effect.scoped(Effect.gen(function*() {
          const credential = yield* makeCredential({ ...optionsFor("client_secret_basic"), tokenUrl: as.tokenUrl })
          const first = yield* bearerOf(credential)
          yield* TestClock.adjust(Duration.seconds(keep))
          const kept = yield* bearerOf(credential)
          yield* TestClock.adjust(Duration.seconds(refresh - keep))
          const renewed = yield* bearerOf(credential)
          return { first, kept, renewed }
        }))
        expect(seen.kept).toBe(seen.first)
        expect(seen.renewed).not.toBe(seen.first)
        expect(tokenRequestsOf(as.clients.basic.id).length - before).toBe(2)
      }
    }).pipe(Effect.ensuring(Effect.sync(() => (as.ttlSeconds = 3600)))))

  it.scoped("without expires_in, the configured default lifetime applies", () =>
    Effect.gen(function*() {
      as.omitExpiresIn = true
      yield* Effect.addFinalizer(() => Effect.sync(() => (as.omitExpiresIn = false)))
      const before = tokenRequestsOf(as.clients.basic.id).length
      const credential = yield* makeCredential({ ...optionsFor("client_secret_basic"), tokenUrl: as.tokenUrl, defaultLifetime: "10 minutes" })
      const first = yield* bearerOf(credential)
      yield* TestClock.adjust(Duration.seconds(539)) // refresh at 600 − 60 s
      const kept = yield* bearerOf(credential)
      yield* TestClock.adjust(Duration.seconds(1))
      const renewed = yield* bearerOf(credential)
      expect(kept).toBe(first)
      expect(renewed).not.toBe(first)
      expect(tokenRequestsOf(as.clients.basic.id).length - before).toBe(2)
    }))
})

describe("through the gateway", () => {
  const statusOf = async (gateway: { origin: string }, id: string) =>
    (await connectorsOf(gateway as never)).connectors.find((c) => c.id === id)

  it("keeps working across many short token lifetimes (refreshed before expiry, never a stale token)", async () => {
    as.ttlSeconds = 3
    const before = tokenRequestsOf(as.clients.jwt.id).filter((r) => r.ok).length
    const gateway = await startCapturingGateway({
      connectors: { short: mcp({ url: upstream.url, auth: clientCredentials({ ...optionsFor("private_key_jwt"), tokenUrl: as.tokenUrl, resource: upstream.url }) }) },
      grants: everything
    })
    try {
      await eventually(async () => (await statusOf(gateway, "short"))?.status === "ready", 30_000, "ready")
      const client = await connectV2(gateway.url)
      const until = Date.now() + 8_000
      let calls = 0
      while (Date.now() < until) {
        const result = await client.readResource({ uri: "short-fixture://status" })
        expect(result.contents[0]).toMatchObject({ text: "ok" })
        calls++
        await new Promise((r) => setTimeout(r, 200))
      }
      await client.close()
      expect(calls).toBeGreaterThan(5)
      // 8 s of 3 s tokens refreshed at 2.7 s: at least three tokens.
      expect(tokenRequestsOf(as.clients.jwt.id).filter((r) => r.ok).length - before).toBeGreaterThanOrEqual(3)
    } finally {
      as.ttlSeconds = 3600
      await gateway.close()
    }
  })

  it("on a 401 drops the token, fetches one and sends the request once more, a tools/call included", async () => {
    const gateway = await startCapturingGateway({
      connectors: { rev: mcp({ url: upstream.url, auth: clientCredentials({ ...optionsFor("client_secret_post"), tokenUrl: as.tokenUrl, resource: upstream.url }) }) },
      grants: everything
    })
    try {
      await eventually(async () => (await statusOf(gateway, "rev"))?.status === "ready", 30_000, "ready")
      const client = await connectV2(gateway.url)
      const tokens = () => tokenRequestsOf(as.clients.post.id).filter((r) => r.ok).length

      // A read is safe to send twice: the caller never sees the 401.
      upstream.revokeIssuedTokens()
      let seen = upstream.requests.length
      let issued = tokens()
      expect((await client.readResource({ uri: "rev-fixture://status" })).contents[0]).toMatchObject({ text: "ok" })
      const reads = upstream.requests.slice(seen).filter((r) => r.method === "resources/read")
      expect(reads.map((r) => r.authorized)).toEqual([false, true])
      expect(tokens() - issued).toBe(1)

      // So is a tool call: the refused one never ran (a 401 is "not applied"), the retry runs it once.
      upstream.revokeIssuedTokens()
      seen = upstream.requests.length
      issued = tokens()
      const runs = upstream.toolRuns()
      expect(await client.callTool({ name: "rev_count", arguments: {} })).toMatchObject({ content: [{ text: String(runs + 1) }] })
      expect(upstream.requests.slice(seen).filter((r) => r.method === "tools/call").map((r) => r.authorized)).toEqual([false, true])
      expect(upstream.toolRuns()).toBe(runs + 1)
      expect(tokens() - issued).toBe(1)
      expect((await statusOf(gateway, "rev"))?.status).toBe("ready")
      await client.close()
    } finally {
      await gateway.close()
    }
  })

  it("shows a connector without auth whose upstream answers 401 as needs_auth", async () => {
    const gateway = await startCapturingGateway({ connectors: { bare: mcp({ url: upstream.url }) }, grants: everything })
    try {
      await eventually(async () => (await statusOf(gateway, "bare"))?.status === "needs_auth", 30_000, "needs_auth")
      expect((await statusOf(gateway, "bare"))?.error).toMatch(/requires authorization \(HTTP 401\).*no auth/)
      expect(gateway.captured.logs.join("\n")).toContain("connector bare needs_auth")
    } finally {
      await gateway.close()
    }
  })

  it("refuses a redirecting token endpoint and says so", async () => {
    const redirector = createServer((_req, res) => {
      res.writeHead(307, { location: as.tokenUrl })
      res.end()
    })
    await new Promise<void>((resolve) => redirector.listen(0, "127.0.0.1", resolve))
    const redirectUrl = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}/token`
    const before = as.requests.length
    const gateway = await startCapturingGateway({
      connectors: { moved: mcp({ url: upstream.url, auth: clientCredentials({ ...optionsFor("client_secret_post"), tokenUrl: redirectUrl }) }) },
      grants: everything
    })
    try {
      const state = await eventually(async () => {
        const s = await statusOf(gateway, "moved")
        return s?.status === "misconfigured" ? s : undefined
      }, 30_000, "misconfigured")
      expect(state.error).toBe(`token endpoint ${redirectUrl} answered a redirect (HTTP 307); redirects are refused: set tokenUrl to the final URL`)
      expect(state.tools).toEqual([])
      // The credentials never reached the server the redirect pointed at.
      expect(as.requests.length).toBe(before)
    } finally {
      await gateway.close()
      redirector.close()
    }
  })

  it("a rejected client is misconfigured with the server's reason, logged once; other connectors serve on", async () => {
    const before = as.requests.length
    const gateway = await startCapturingGateway({
      connectors: {
        wrong: mcp({ url: upstream.url, auth: clientCredentials({ clientId: as.clients.post.id, clientSecret: "not-the-secret", authMethod: "client_secret_post", tokenUrl: as.tokenUrl }) }),
        fine: mcp({ url: upstream.url, auth: clientCredentials({ ...optionsFor("client_secret_basic"), tokenUrl: as.tokenUrl, resource: upstream.url }) })
      },
      grants: everything
    })
    try {
      await eventually(async () => (await statusOf(gateway, "fine"))?.status === "ready", 30_000, "fine ready")
      // Several attempts, each refused by the server…
      await eventually(() => as.requests.slice(before).filter((r) => r.error === "invalid_client").length >= 3, 45_000, "three attempts")
      const wrong = await statusOf(gateway, "wrong")
      expect(wrong).toMatchObject({ status: "misconfigured", error: "token endpoint returned 401 invalid_client: client authentication failed", tools: [] })
      // …and one log line about it.
      expect(gateway.captured.logs.filter((l) => l.includes("connector wrong misconfigured"))).toHaveLength(1)
      const client = await connectV2(gateway.url)
      const names = (await client.listTools()).tools.map((t) => t.name)
      expect(names).toContain("fine_echo")
      expect(names.filter((n) => n.startsWith("wrong_"))).toEqual([])
      await client.close()
    } finally {
      await gateway.close()
    }
  })

  it("token endpoint down → misconfigured with the reason; back up → ready again by itself", async () => {
    await as.stop()
    const gateway = await startCapturingGateway({
      connectors: { later: mcp({ url: upstream.url, auth: clientCredentials({ ...optionsFor("client_secret_basic"), tokenUrl: as.tokenUrl, resource: upstream.url }) }) },
      grants: everything
    })
    try {
      const down = await eventually(async () => {
        const s = await statusOf(gateway, "later")
        return s?.status === "misconfigured" ? s : undefined
      }, 30_000, "misconfigured")
      expect(down.error?.startsWith(`token endpoint ${as.tokenUrl} unreachable: `)).toBe(true)
      expect(down.tools).toEqual([])
      await as.start()
      await eventually(async () => (await statusOf(gateway, "later"))?.status === "ready", 60_000, "ready again")
      const client = await connectV2(gateway.url)
      expect(await client.callTool({ name: "later_echo", arguments: { message: "back" } })).toMatchObject({ content: [{ text: "echo: back" }] })
      await client.close()
    } finally {
      await as.start()
      await gateway.close()
    }
  })

  it("an upstream that refuses a fresh token makes the connector misconfigured until it accepts again", async () => {
    const gateway = await startCapturingGateway({
      connectors: { picky: mcp({ url: upstream.url, auth: clientCredentials({ ...optionsFor("client_secret_basic"), tokenUrl: as.tokenUrl, resource: upstream.url }) }) },
      grants: everything
    })
    try {
      await eventually(async () => (await statusOf(gateway, "picky"))?.status === "ready", 30_000, "ready")
      upstream.rejectAll = true
      const client = await connectV2(gateway.url)
      await client.readResource({ uri: "picky-fixture://status" }).catch(() => undefined)
      const refused = await eventually(async () => {
        const s = await statusOf(gateway, "picky")
        return s?.status === "misconfigured" ? s : undefined
      }, 30_000, "misconfigured")
      expect(refused.error).toBe("upstream refused the credential (HTTP 401), also after a refresh; check the connector's auth")
      expect(refused.tools).toEqual([])
      upstream.rejectAll = false
      await eventually(async () => (await statusOf(gateway, "picky"))?.status === "ready", 60_000, "ready again")
      await client.close()
    } finally {
      upstream.rejectAll = false
      await gateway.close()
    }
  })
})
