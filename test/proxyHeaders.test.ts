/**
 * Header hygiene of the HTTP connector proxy, against a real node:http upstream that records
 * what it received: the caller's gateway credential (whatever header an identity plugin reads
 * it from) and path/method override headers never reach the upstream; every proxied response
 * is sandboxed and `nosniff`, since it is served on the gateway's origin.
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { apiKeys, bearer, defineIdentityPlugin, grant, http, loopback, trustedHeaders } from "../src/index.js"
import { type HttpUpstream, startHttpUpstream } from "./fixtures/httpUpstream.js"
import { rawRequest } from "./helpers/http.js"
import { startGateway } from "./helpers/gateway.js"

/** A third-party plugin naming its header in its options: `consumes` as a function of them. */
const headerUser = defineIdentityPlugin({
  name: "headerUser",
  options: Schema.Struct({ header: Schema.String }),
  consumes: ({ header }) => [header],
  make: ({ header }) =>
    Effect.succeed({
      identify: (request) => {
        const login = request.headers[header.toLowerCase()]
        return Effect.succeed(login === undefined ? undefined : { login, groups: [], tags: [], via: "headerUser" })
      }
    })
})

/** A plugin written before `consumes` existed still loads (and its header is forwarded, as before). */
const legacyUser = defineIdentityPlugin({
  name: "legacyUser",
  options: Schema.Struct({}),
  make: () =>
    Effect.succeed({
      identify: (request) => {
        const login = request.headers["x-legacy-user"]
        return Effect.succeed(login === undefined ? undefined : { login, groups: [], tags: [], via: "legacyUser" })
      }
    })
})

const API_KEY = "caller-gateway-key-0123456789"

let upstream: HttpUpstream
let gateway: RunningGateway
/** An upstream serving HTML with its own policy, allowing scripts, and asking for sniffing. */
let htmlUpstream: Server

beforeAll(async () => {
  upstream = await startHttpUpstream()
  htmlUpstream = createServer((_req, res) => {
    res.writeHead(200, {
      "content-type": "text/html",
      "content-security-policy": "default-src 'self' 'unsafe-inline'",
      "x-content-type-options": "none"
    })
    res.end("<script>fetch('/api/connectors')</script>")
  })
  await new Promise<void>((resolve) => htmlUpstream.listen(0, "127.0.0.1", resolve))
  const htmlOrigin = `http://127.0.0.1:${(htmlUpstream.address() as AddressInfo).port}`
  gateway = await startGateway({
    connectors: {
      api: http({ url: `${upstream.origin}/api`, allowPrivate: true, auth: bearer({ secret: "upstream-token" }) }),
      html: http({ url: htmlOrigin, allowPrivate: true })
    },
    identity: [
      apiKeys({ keys: { [API_KEY]: { login: "keyed" } } }),
      headerUser({ header: "X-Custom-Login" }),
      legacyUser({}),
      trustedHeaders(),
      loopback({ login: "local" })
    ],
    grants: [grant({ src: ["keyed", "custom", "legacy", "ts-user@example.com", "local"], connectors: ["api/proxy/**", "html/proxy/**"] })]
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await new Promise<void>((resolve) => htmlUpstream === undefined ? resolve() : htmlUpstream.close(() => resolve()))
})

/** What the upstream received for one proxied GET. */
const seenFor = async (headers: Record<string, string>) => {
  const before = upstream.seen.length
  const response = await rawRequest(gateway.origin, "/v1/connectors/api/echo", { headers })
  expect(response.status, response.body).toBe(200)
  expect(upstream.seen.length).toBe(before + 1)
  return upstream.seen.at(-1)!.headers
}

describe("the caller's gateway credential", () => {
  it("is not forwarded: X-API-Key", async () => {
    const seen = await seenFor({ "x-api-key": API_KEY, accept: "application/json" })
    expect(seen["x-api-key"]).toBeUndefined()
    expect(seen.authorization).toBe("Bearer upstream-token")
    expect(seen.accept).toBe("application/json")
  })

  it("is not forwarded: Tailscale-User-Login and -Name", async () => {
    const seen = await seenFor({ "tailscale-user-login": "ts-user@example.com", "tailscale-user-name": "TS User" })
    expect(seen["tailscale-user-login"]).toBeUndefined()
    expect(seen["tailscale-user-name"]).toBeUndefined()
  })

  it("is not forwarded when any configured plugin reads it, whoever identified the caller; a plugin without consumes still works", async () => {
    // Identified by X-API-Key; the header another configured plugin reads goes nowhere either.
    const seen = await seenFor({ "x-api-key": API_KEY, "x-custom-login": "custom" })
    expect(seen["x-custom-login"]).toBeUndefined()
    expect(seen["x-api-key"]).toBeUndefined()
    const legacy = await seenFor({ "x-legacy-user": "legacy" })
    expect(legacy["x-legacy-user"]).toBe("legacy")
  })
})

describe("path, method and client-address override headers", () => {
  const overrides: Record<string, string> = {
    "x-original-url": "/api/private",
    "x-original-uri": "/api/private",
    "x-original-method": "DELETE",
    "x-rewrite-url": "/api/private",
    "x-override-url": "/api/private",
    "x-http-method-override": "DELETE",
    "x-http-method": "DELETE",
    "x-method-override": "DELETE",
    "x-forwarded-path": "/api/private",
    "x-forwarded-uri": "/api/private",
    "x-forwarded-method": "DELETE",
    "x-forwarded-server": "evil.example",
    "x-forwarded-port": "1",
    "x-forwarded-ssl": "on",
    "x-forwarded-scheme": "https",
    "x-forwarded": "for=6.6.6.6",
    "x-host": "evil.example",
    "x-real-ip": "6.6.6.6",
    "x-client-ip": "6.6.6.6",
    "x-originating-ip": "6.6.6.6",
    "true-client-ip": "6.6.6.6",
    "cf-connecting-ip": "6.6.6.6"
  }

  it.each(Object.keys(overrides))("%s does not reach the upstream", async (name) => {
    // Named by X-API-Key: with Forwarded/X-Forwarded-For the request looks relayed, and loopback does not take it.
    const seen = await seenFor({ "x-api-key": API_KEY, [name]: overrides[name]! })
    expect(seen[name]).toBeUndefined()
  })

  it("all at once, while what REST clients send goes through", async () => {
    const kept: Record<string, string> = {
      "content-type": "application/json",
      accept: "application/json",
      "accept-encoding": "gzip",
      "accept-language": "en",
      "user-agent": "client/1.0",
      "if-match": "\"a\"",
      "if-none-match": "\"b\"",
      "if-modified-since": "Mon, 07 Dec 2026 00:00:00 GMT",
      range: "bytes=0-10",
      "x-request-id": "r-1",
      "x-github-api-version": "2022-11-28",
      "idempotency-key": "k-1"
    }
    const seen = await seenFor({ "x-api-key": API_KEY, ...overrides, ...kept })
    for (const name of Object.keys(overrides)) {
      // The gateway sets its own X-Forwarded-For/-Proto/-Host/-Prefix; none of the caller's values survive.
      expect(seen[name], name).toBeUndefined()
    }
    for (const [name, value] of Object.entries(kept)) expect(seen[name], name).toBe(value)
    expect(seen["x-forwarded-for"]).toBe("127.0.0.1")
  })
})

describe("proxied responses, served on the gateway's origin", () => {
  it.each([
    ["a JSON answer", "/v1/connectors/api/echo", 200],
    ["a text answer with hostile headers", "/v1/connectors/api/headers", 200],
    ["a redirect", "/v1/connectors/api/redirect", 302],
    ["an error page checked for the credential", "/v1/connectors/api/echo-error", 403]
  ])("are sandboxed and nosniff: %s", async (_label, path, status) => {
    const response = await rawRequest(gateway.origin, path, { headers: { "x-api-key": API_KEY } })
    expect(response.status).toBe(status)
    expect(response.headers["content-security-policy"]).toBe("sandbox")
    expect(response.headers["x-content-type-options"]).toBe("nosniff")
  })

  it("keep an upstream's own policy beside the gateway's sandbox, and nosniff in place of its value", async () => {
    const response = await rawRequest(gateway.origin, "/v1/connectors/html/page", { headers: { "x-api-key": API_KEY } })
    expect(response.status).toBe(200)
    expect(response.body).toContain("<script>")
    expect(response.headers["content-security-policy"]).toBe("default-src 'self' 'unsafe-inline', sandbox")
    expect(response.headers["x-content-type-options"]).toBe("nosniff")
  })
})
