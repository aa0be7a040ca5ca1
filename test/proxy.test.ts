/**
 * HTTP connectors end to end: a real node:http upstream behind `/v1/connectors/<id>/<path>`.
 * Credential injected, the caller's credentials and hop-by-hop headers stripped both ways,
 * paths that would leave the base refused before any upstream sees them, grants per path,
 * methods per connector, 502/504 as JSON, the SSRF guard, and redirects returned unfollowed.
 */
import { request } from "node:http"
import { Readable } from "node:stream"
import { Effect, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { apiKey, bearer, defineAuthPlugin, grant, http, loopback, mcp } from "../src/index.js"
import { type HttpUpstream, startHttpUpstream } from "./fixtures/httpUpstream.js"
import { testUsers } from "./helpers/testUsers.js"
import { connectorsOf, eventually, startGateway } from "./helpers/gateway.js"
import { jsonOf, rawRequest } from "./helpers/http.js"
import { freePort } from "./helpers/processes.js"

/** A credential that hands out token-1, then token-2 after the upstream refuses it. */
const rotating = defineAuthPlugin({
  name: "rotating",
  options: Schema.Struct({}),
  make: () =>
    Effect.sync(() => {
      let version = 1
      return {
        authorize: () => Effect.sync(() => ({ headers: { authorization: `Bearer token-${version}` } })),
        onUnauthorized: () =>
          Effect.sync(() => {
            version++
            return true
          })
      }
    })
})

/** The contract's short form: `make` yields what to add to each request, no `authorize`. */
const fixedHeader = defineAuthPlugin({
  name: "fixedHeader",
  options: Schema.Struct({ value: Schema.String }),
  make: ({ value }) => Effect.succeed({ headers: { "x-fixed": value } })
})

/** A plugin whose `make` yields neither form. */
const shapeless = defineAuthPlugin({ name: "shapeless", options: Schema.Struct({}), make: () => Effect.succeed({} as never) })

let upstream: HttpUpstream
let gateway: RunningGateway
let deadPort: number

const api = (path: string) => `/v1/connectors/api${path}`

beforeAll(async () => {
  upstream = await startHttpUpstream()
  deadPort = await freePort()
  const base = `${upstream.origin}/api`
  gateway = await startGateway({
    connectors: {
      api: http({ url: base, allowPrivate: true, auth: bearer({ secret: "upstream-token" }), description: "The test API" }),
      keyed: http({ url: base, allowPrivate: true, auth: apiKey({ secret: "key-secret", name: "api_key", in: "query" }) }),
      readonly: http({ url: base, allowPrivate: true, methods: ["GET"] }),
      limited: http({ url: base, allowPrivate: true }),
      secret: http({ url: base, allowPrivate: true }),
      slow: http({ url: base, allowPrivate: true, timeout: 500 }),
      dead: http({ url: `http://127.0.0.1:${deadPort}/`, allowPrivate: true }),
      guarded: http({ url: base }),
      named: http({ url: `http://localhost:${upstream.port}/api` }),
      rotating: http({ url: base, allowPrivate: true, auth: rotating({}) }),
      rotatingPost: http({ url: base, allowPrivate: true, auth: rotating({}) }),
      rotatingStream: http({ url: base, allowPrivate: true, auth: rotating({}) }),
      fixed: http({ url: base, allowPrivate: true, auth: fixedHeader({ value: "fixed-value" }) }),
      shapeless: http({ url: base, allowPrivate: true, auth: shapeless({}) }),
      nowhere: http({ description: "no url yet" }),
      mcpish: mcp({ url: `http://127.0.0.1:${deadPort}/mcp` })
    },
    identity: [testUsers({}), loopback({ login: "local" })],
    grants: [
      grant({
        src: ["local"],
        connectors: [
          "api/proxy/**",
          "keyed/proxy/**",
          "readonly/proxy/**",
          "limited/proxy/public/**",
          "slow/proxy/**",
          "dead/proxy/**",
          "guarded/proxy/**",
          "named/proxy/**",
          "rotating/proxy/**",
          "rotatingPost/proxy/**",
          "rotatingStream/proxy/**",
          "fixed/proxy/**",
          "shapeless/proxy/**",
          "nowhere/proxy/**",
          "mcpish/**"
        ]
      }),
      grant({ src: ["toolsonly"], connectors: ["api/tools/*"] })
    ]
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

describe("forwarding", () => {
  it("sends method, path and query to <base>/<path>, with the connector's credential and nothing of the caller's", async () => {
    const response = await rawRequest(gateway.origin, api("/echo/a%20b%40c?x=1&y=%2F&z"), {
      headers: {
        // Named explicitly: with Forwarded/X-Forwarded-For the request looks relayed, and loopback does not take it.
        "x-test-user": "local",
        authorization: "Bearer caller-secret",
        cookie: "session=caller",
        "proxy-authorization": "Basic caller",
        "proxy-foo": "x",
        connection: "keep-alive, x-drop-me",
        "x-drop-me": "1",
        "keep-alive": "timeout=5",
        te: "trailers",
        "x-forwarded-for": "6.6.6.6",
        "x-forwarded-host": "evil.example",
        forwarded: "for=6.6.6.6",
        x_custom: "underscore",
        "x-kept": "yes"
      }
    })
    expect(response.status).toBe(200)
    const seen = upstream.seen.at(-1)!
    expect(seen.url).toBe("/api/echo/a%20b%40c?x=1&y=%2F&z")
    expect(seen.headers.authorization).toBe("Bearer upstream-token")
    expect(seen.headers.host).toBe(`127.0.0.1:${upstream.port}`)
    expect(seen.headers["x-kept"]).toBe("yes")
    expect(seen.headers["x-forwarded-for"]).toBe("127.0.0.1")
    expect(seen.headers["x-forwarded-host"]).toBe(new URL(gateway.origin).host)
    expect(seen.headers["x-forwarded-proto"]).toBe("http")
    expect(seen.headers["x-forwarded-prefix"]).toBe("/v1/connectors/api")
    for (const dropped of ["cookie", "proxy-authorization", "proxy-foo", "x-drop-me", "keep-alive", "te", "forwarded", "x_custom"]) {
      expect(seen.headers[dropped], dropped).toBeUndefined()
    }
    expect(JSON.stringify(seen.headers)).not.toContain("caller")
    expect(JSON.stringify(seen.headers)).not.toContain("6.6.6.6")
  })

  it("maps the connector root and a trailing slash to the base URL", async () => {
    expect((await rawRequest(gateway.origin, "/v1/connectors/api")).status).toBe(200)
    expect(upstream.seen.at(-1)!.url).toBe("/api/")
    expect((await rawRequest(gateway.origin, api("/items/"))).status).toBe(200)
    expect(upstream.seen.at(-1)!.url).toBe("/api/items/")
  })

  it("forwards every default method with its body, and answers HEAD without one", async () => {
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
      const response = await rawRequest(gateway.origin, api("/things/1"), {
        method,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ method })
      })
      expect(response.status, method).toBe(200)
      expect(jsonOf(response)).toMatchObject({ method, url: "/api/things/1", body: JSON.stringify({ method }) })
    }
    const head = await rawRequest(gateway.origin, api("/things/1"), { method: "HEAD" })
    expect(head.status).toBe(200)
    expect(head.body).toBe("")
    expect(upstream.seen.at(-1)!.method).toBe("HEAD")
  })

  it("puts a query credential in place of any parameter of the same name the caller sent", async () => {
    const response = await rawRequest(gateway.origin, "/v1/connectors/keyed/search?api_key=caller&q=a%20b")
    expect(response.status).toBe(200)
    expect(upstream.seen.at(-1)!.url).toBe("/api/search?q=a%20b&api_key=key-secret")
  })

  it("strips cookies, challenges and hop-by-hop headers from the upstream's response", async () => {
    const response = await rawRequest(gateway.origin, api("/headers"))
    expect(response.status).toBe(200)
    expect(response.body).toBe("headers")
    expect(response.headers["x-kept"]).toBe("yes")
    for (const dropped of ["set-cookie", "www-authenticate", "x-secret", "keep-alive", "proxy-authenticate"]) {
      expect(response.headers[dropped], dropped).toBeUndefined()
    }
  })

  it("returns redirects without following them", async () => {
    const response = await fetch(`${gateway.origin}${api("/redirect")}`, { redirect: "manual" })
    expect(response.status).toBe(302)
    expect(response.headers.get("location")).toBe(`http://127.0.0.1:${upstream.port}/api/elsewhere`)
    expect(upstream.seen.some((r) => r.url === "/api/elsewhere")).toBe(false)
  })

  it("takes the credential out of an upstream's error page that echoes it, compressed or not", async () => {
    for (const path of [api("/echo-error"), api("/echo-error?gzip")]) {
      const response = await rawRequest(gateway.origin, path)
      expect(response.status).toBe(403)
      expect(response.body).toContain("refused: authorization=<redacted> url=/api/echo-error")
      expect(response.body).not.toContain("upstream-token")
      expect(response.headers["content-encoding"]).toBeUndefined()
    }
    const keyed = await rawRequest(gateway.origin, "/v1/connectors/keyed/echo-error")
    expect(keyed.body).toBe("refused: authorization=undefined url=/api/echo-error?api_key=<redacted>")
    // An encoding the gateway cannot read: not passed on unchecked.
    const unreadable = await rawRequest(gateway.origin, api("/echo-error?encoding=zstd"))
    expect(unreadable.status).toBe(502)
    expect(JSON.parse(unreadable.body)).toMatchObject({ error: "upstream_error_unchecked", connector: "api" })
    expect(unreadable.body).not.toContain("upstream-token")
  })

  it("refreshes the credential once on a 401 and retries a request without a body", async () => {
    const response = await rawRequest(gateway.origin, "/v1/connectors/rotating/rotating")
    expect(response.status).toBe(200)
    const attempts = upstream.seen.filter((r) => r.url === "/api/rotating").map((r) => r.headers.authorization)
    expect(attempts).toEqual(["Bearer token-1", "Bearer token-2"])
    const metrics = await (await fetch(`${gateway.origin}/metrics`)).text()
    expect(metrics).toContain("aperture_token_refreshes_total{connector=\"rotating\"} 1\n")
  })

  it("takes a plugin whose make yields { headers } as a fixed credential, and says what is wrong with one that yields neither form", async () => {
    const response = await rawRequest(gateway.origin, "/v1/connectors/fixed/fixed-check")
    expect(response.status).toBe(200)
    expect(upstream.seen.find((r) => r.url === "/api/fixed-check")?.headers["x-fixed"]).toBe("fixed-value")
    const listed = (await connectorsOf(gateway)).connectors
    expect(listed.find((c) => c.id === "shapeless")).toMatchObject({
      status: "misconfigured",
      error: expect.stringContaining("make yielded neither a credential")
    })
  })

  it("keeps a small body for the retry after a 401; a chunked body streams, and its 401 goes back", async () => {
    const sent = JSON.stringify({ order: 42 })
    const posted = await rawRequest(gateway.origin, "/v1/connectors/rotatingPost/rotating", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: sent
    })
    expect(posted.status).toBe(200)
    expect(jsonOf(posted)).toMatchObject({ method: "POST", body: sent })
    const attempts = upstream.seen.filter((r) => r.url === "/api/rotating" && r.method === "POST" && r.body === sent)
    expect(attempts.map((r) => r.headers.authorization)).toEqual(["Bearer token-1", "Bearer token-2"])

    // No Content-Length: the body is not held, so the 401 is the caller's; the credential is fresh for the next request.
    const streamed = await rawRequest(gateway.origin, "/v1/connectors/rotatingStream/rotating", {
      method: "POST",
      body: Readable.from(["chunked ", "body"])
    })
    expect(streamed.status).toBe(401)
    const again = await rawRequest(gateway.origin, "/v1/connectors/rotatingStream/rotating", { method: "POST", body: "second" })
    expect(again.status).toBe(200)
    const streamedAttempts = upstream.seen.filter((r) => r.url === "/api/rotating" && ["chunked body", "second"].includes(r.body))
    expect(streamedAttempts.map((r) => [r.body, r.headers.authorization])).toEqual([
      ["chunked body", "Bearer token-1"],
      ["second", "Bearer token-2"]
    ])
  })
})

describe("refusals", () => {
  it("refuses paths that could leave the base, before any upstream sees them", async () => {
    const corpus = [
      "/../secret",
      "/a/../../secret",
      "/%2e%2e/secret",
      "/%2E%2E/secret",
      "/.%2e/secret",
      "/./secret",
      "/%252e%252e/secret",
      "/a%2fb",
      "/a%2F..%2Fb",
      "/a%5cb",
      "/a\\..\\b",
      "//evil.example/x",
      "/http://evil.example/",
      "/a//b",
      "/a%00b",
      "/a%0d%0aX-Injected:%201",
      "/%zz",
      "/a/%e0%a4%a/b"
    ]
    const before = upstream.seen.length
    for (const path of corpus) {
      const response = await rawRequest(gateway.origin, api(path))
      // Every one is a 400 saying why, malformed escapes included (the router cannot decode them).
      expect(response.status, path).toBe(400)
      expect(jsonOf(response), path).toMatchObject({ error: "invalid_path", connector: "api" })
    }
    expect(upstream.seen.length).toBe(before)
  })

  it("answers 405 with Allow for methods the connector does not allow", async () => {
    const options = await rawRequest(gateway.origin, api("/x"), { method: "OPTIONS" })
    expect(options.status).toBe(405)
    expect(options.headers["allow"]).toBe("GET, HEAD, POST, PUT, PATCH, DELETE")
    expect((await rawRequest(gateway.origin, api("/x"), { method: "TRACE" })).status).toBe(405)
    const post = await rawRequest(gateway.origin, "/v1/connectors/readonly/x", { method: "POST", body: "{}" })
    expect(post.status).toBe(405)
    expect(post.headers["allow"]).toBe("GET")
    expect((await rawRequest(gateway.origin, "/v1/connectors/readonly/x")).status).toBe(200)
  })

  it("allows only the granted paths: 403 elsewhere, and for callers without a proxy grant", async () => {
    const allowed = await rawRequest(gateway.origin, "/v1/connectors/limited/public/a/b", {
      headers: { authorization: "Bearer caller-secret" }
    })
    expect(allowed.status).toBe(200)
    expect(upstream.seen.at(-1)!.url).toBe("/api/public/a/b")
    // A connector without auth forwards no Authorization at all, never the caller's.
    expect(upstream.seen.at(-1)!.headers.authorization).toBeUndefined()
    const before = upstream.seen.length
    const denied = await rawRequest(gateway.origin, "/v1/connectors/limited/private/a")
    expect(denied.status).toBe(403)
    expect(jsonOf(denied)).toMatchObject({ error: "forbidden", connector: "limited" })
    expect((await rawRequest(gateway.origin, "/v1/connectors/secret/x")).status).toBe(403)
    expect((await rawRequest(gateway.origin, api("/x"), { headers: { "x-test-user": "toolsonly" } })).status).toBe(403)
    expect((await rawRequest(gateway.origin, api("/x"), { headers: { "x-test-user": "nobody" } })).status).toBe(403)
    expect(upstream.seen.length).toBe(before)
  })

  it("answers 404 for unknown connectors and MCP connectors", async () => {
    const unknown = await rawRequest(gateway.origin, "/v1/connectors/nosuch/x")
    expect(unknown.status).toBe(404)
    expect(jsonOf(unknown)).toMatchObject({ error: "unknown_connector" })
    expect((await rawRequest(gateway.origin, "/v1/connectors/mcpish/x")).status).toBe(404)
  })

  it("refuses a foreign Host (DNS rebinding) before identifying the caller", async () => {
    const response = await rawRequest(gateway.origin, api("/x"), { headers: { host: "evil.example" } })
    expect(response.status).toBe(403)
    const origin = await rawRequest(gateway.origin, api("/x"), { headers: { origin: "http://evil.example" } })
    expect(origin.status).toBe(403)
  })

  it("answers 503 for a connector without url", async () => {
    const response = await rawRequest(gateway.origin, "/v1/connectors/nowhere/x")
    expect(response.status).toBe(503)
    expect(jsonOf(response)).toMatchObject({ error: "connector_misconfigured" })
  })
})

describe("upstream failures", () => {
  it("answers 502 with a JSON body when the upstream refuses the connection, and marks the connector down", async () => {
    const response = await rawRequest(gateway.origin, "/v1/connectors/dead/x")
    expect(response.status).toBe(502)
    expect(response.headers["content-type"]).toContain("application/json")
    expect(jsonOf(response)).toMatchObject({ error: "upstream_unreachable", connector: "dead" })
    expect(jsonOf<{ message: string }>(response).message).toContain("refused the connection")
    const dead = (await connectorsOf(gateway)).connectors.find((c) => c.id === "dead")!
    expect(dead.status).toBe("down")
    expect(dead.error).toContain("refused the connection")
  })

  it("answers 504 when the upstream stays silent past the connector's timeout", async () => {
    const started = Date.now()
    const response = await rawRequest(gateway.origin, "/v1/connectors/slow/slow")
    expect(response.status).toBe(504)
    expect(jsonOf(response)).toMatchObject({ error: "upstream_timeout", connector: "slow" })
    expect(Date.now() - started).toBeGreaterThanOrEqual(450)
    expect((await connectorsOf(gateway)).connectors.find((c) => c.id === "slow")?.status).toBe("down")
  })

  it("ends an upload the caller stopped sending at the connector's timeout: 408, and the connector stays ready", async () => {
    expect((await rawRequest(gateway.origin, "/v1/connectors/slow/fine")).status).toBe(200)
    const body = new Readable({ read() {} })
    body.push("the first bytes of a thousand")
    const started = Date.now()
    try {
      const response = await rawRequest(gateway.origin, "/v1/connectors/slow/upload", {
        method: "POST",
        headers: { "content-length": "1000" },
        body
      })
      expect(response.status).toBe(408)
      expect(jsonOf(response)).toMatchObject({ error: "request_timeout", connector: "slow" })
      expect(Date.now() - started).toBeGreaterThanOrEqual(450)
      // The caller stalled, not the upstream.
      expect((await connectorsOf(gateway)).connectors.find((c) => c.id === "slow")?.status).toBe("ready")
    } finally {
      body.destroy()
    }
  })

  it("answers 504 when the upstream stops taking an upload (its backpressure is not the caller stalling)", async () => {
    const chunk = Buffer.alloc(64 * 1024, 120)
    const chunks = 1024 // 64 MiB: more than every socket and stream buffer on the way
    const body = Readable.from((function*() {
      for (let i = 0; i < chunks; i++) yield chunk
    })())
    try {
      const response = await rawRequest(gateway.origin, "/v1/connectors/slow/stuck-upload", {
        method: "POST",
        headers: { "content-length": String(chunk.length * chunks) },
        body
      })
      expect(response.status).toBe(504)
      expect(jsonOf(response)).toMatchObject({ error: "upstream_timeout", connector: "slow" })
    } finally {
      body.destroy()
    }
  })

  it("brings a connector back to ready with its next answer", async () => {
    await rawRequest(gateway.origin, "/v1/connectors/slow/slow")
    expect((await rawRequest(gateway.origin, "/v1/connectors/slow/fine")).status).toBe(200)
    expect((await connectorsOf(gateway)).connectors.find((c) => c.id === "slow")?.status).toBe("ready")
  })
})

describe("broken exchanges", () => {
  const inFlight = async () => {
    const text = await (await fetch(`${gateway.origin}/metrics`)).text()
    return Number(/aperture_in_flight_requests\{endpoint="proxy"\} (\d+)/.exec(text)?.[1])
  }

  it("cuts the caller's response when the upstream dies mid-body, instead of ending it cleanly", async () => {
    const outcome = await new Promise<string>((resolve) => {
      request(`${gateway.origin}${api("/truncated")}`, (res) => {
        let bytes = 0
        res.on("data", (c: Buffer) => (bytes += c.length))
        res.on("end", () => resolve(`ended after ${bytes} bytes`))
        res.on("error", () => resolve(`cut after ${bytes} bytes`))
        res.on("aborted", () => resolve(`cut after ${bytes} bytes`))
      }).on("error", (e) => resolve(`error ${e.message}`)).end()
    })
    expect(outcome).toBe("cut after 10 bytes")
    await eventually(async () => (await inFlight()) === 0, 10_000, "no proxied request in flight")
    expect((await rawRequest(gateway.origin, api("/after-truncation"))).status).toBe(200)
  })

  it("ends the upstream exchange when the caller leaves mid-download", async () => {
    const cutBefore = upstream.cutShort()
    await new Promise<void>((resolve, reject) => {
      const req = request(`${gateway.origin}${api("/big?bytes=1073741824")}`, (res) => {
        res.once("data", () => {
          req.destroy()
          resolve()
        })
      })
      req.on("error", () => {})
      req.on("close", () => resolve())
      setTimeout(() => reject(new Error("no data")), 30_000)
      req.end()
    })
    await eventually(async () => (await inFlight()) === 0, 10_000, "no proxied request in flight")
    // The gateway dropped its upstream connection too, instead of reading the rest of the GiB.
    await eventually(() => upstream.cutShort() === cutBefore + 1, 10_000, "upstream response cut short")
    expect((await rawRequest(gateway.origin, api("/after-abort"))).status).toBe(200)
  })
})

describe("SSRF guard", () => {
  it("refuses a loopback IP upstream without allowPrivate, and says so in /api/connectors", async () => {
    const guarded = (await connectorsOf(gateway)).connectors.find((c) => c.id === "guarded")!
    expect(guarded.status).toBe("misconfigured")
    expect(guarded.error).toContain("allowPrivate")
    const before = upstream.seen.length
    const response = await rawRequest(gateway.origin, "/v1/connectors/guarded/x")
    expect(response.status).toBe(502)
    expect(jsonOf(response)).toMatchObject({ error: "upstream_address_refused", connector: "guarded" })
    expect(upstream.seen.length).toBe(before)
  })

  it("checks the address DNS returns: a name resolving to loopback is refused too", async () => {
    const before = upstream.seen.length
    const response = await rawRequest(gateway.origin, "/v1/connectors/named/x")
    expect(response.status).toBe(502)
    expect(jsonOf(response)).toMatchObject({ error: "upstream_address_refused" })
    expect(jsonOf<{ message: string }>(response).message).toMatch(/localhost resolves to (127\.0\.0\.1|::1) \(loopback\)/)
    expect(upstream.seen.length).toBe(before)
    await eventually(async () => (await connectorsOf(gateway)).connectors.find((c) => c.id === "named")?.status === "misconfigured")
  })
})
