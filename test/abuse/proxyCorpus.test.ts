/**
 * The HTTP proxy against a logging upstream (a real node:http server recording the raw request
 * line and headers of everything it gets), mounted at `/base/` with a grant for `public/**`
 * only. A wide corpus of traversal spellings is sent byte for byte over raw sockets (fetch and
 * `http.request` rewrite or refuse some); each is either refused before the upstream with a JSON
 * error naming why, or reaches the upstream at a path under `/base/public/`; none is a 5xx.
 * (test/proxyPaths.test.ts pins the `..;` family; this is the wider sweep.) Then header hygiene
 * with every kind of header a caller could smuggle at once, `?_method=` overrides, and cookies.
 */
import { connect } from "node:net"
import { Readable } from "node:stream"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../../src/Aperture.js"
import { apiKeys, bearer, grant, http, loopback, trustedHeaders } from "../../src/index.js"
import { type HttpUpstream, startHttpUpstream } from "../fixtures/httpUpstream.js"
import { startGateway } from "../helpers/gateway.js"
import { rawRequest } from "../helpers/http.js"

const UPSTREAM_TOKEN = `upstream-token-${crypto.randomUUID()}`
const API_KEY = `caller-key-${crypto.randomUUID()}`

let upstream: HttpUpstream
let gateway: RunningGateway

beforeAll(async () => {
  upstream = await startHttpUpstream()
  gateway = await startGateway({
    connectors: {
      api: http({
        url: `${upstream.origin}/base`,
        allowPrivate: true,
        methods: ["GET", "POST", "PUT", "DELETE"],
        auth: bearer({ secret: UPSTREAM_TOKEN })
      })
    },
    identity: [apiKeys({ keys: { [API_KEY]: { login: "keyed" } } }), trustedHeaders(), loopback({ login: "local" })],
    grants: [grant({ src: ["keyed", "ts-user@example.com", "local"], connectors: ["api/proxy/public/**"] })]
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

interface RawAnswer {
  readonly status: number
  readonly head: string
  readonly body: string
}

/** One request written byte for byte on its own socket (`Connection: close`); the answer read whole. */
const sendRaw = (target: string | Buffer, method = "GET"): Promise<RawAnswer> =>
  new Promise((resolve, reject) => {
    const { port } = new URL(gateway.origin)
    const socket = connect(Number(port), "127.0.0.1")
    const chunks: Array<Buffer> = []
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer for ${String(target)}`)))
    socket.on("data", (c: Buffer) => chunks.push(c))
    socket.on("error", reject)
    socket.on("close", () => {
      const all = Buffer.concat(chunks).toString("latin1")
      const split = all.indexOf("\r\n\r\n")
      const head = split === -1 ? all : all.slice(0, split)
      let body = split === -1 ? "" : all.slice(split + 4)
      if (/^transfer-encoding:\s*chunked/im.test(head)) {
        let decoded = ""
        for (let at = 0;;) {
          const eol = body.indexOf("\r\n", at)
          const size = parseInt(body.slice(at, eol), 16)
          if (!(size > 0)) break
          decoded += body.slice(eol + 2, eol + 2 + size)
          at = eol + 2 + size + 2
        }
        body = decoded
      }
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, body })
    })
    socket.write(Buffer.concat([
      Buffer.from(`${method} `, "latin1"),
      typeof target === "string" ? Buffer.from(target, "latin1") : target,
      Buffer.from(` HTTP/1.1\r\nHost: ${new URL(gateway.origin).host}\r\nX-API-Key: ${API_KEY}\r\nConnection: close\r\n\r\n`, "latin1")
    ]))
  })

const P = "/v1/connectors/api"

/** Spellings of a way out of `public/` (or out of the base), each sent after `/v1/connectors/api`. */
const corpus: ReadonlyArray<string> = [
  // plain and encoded dot segments
  "/public/../private",
  "/public/../../escape",
  "/public/./../private",
  "/../private",
  "/..",
  "/public/..",
  "/public/%2e%2e/private",
  "/public/%2E%2e/private",
  "/public/%2e%2E/%2e%2e/escape",
  "/public/.%2e/private",
  "/public/%2e./private",
  "/public/%2e/x",
  "/%2e%2e/private",
  // double and triple encoding
  "/public/%252e%252e/private",
  "/public/%25252e%25252e/private",
  "/public/%252e%252e%252fprivate",
  // path parameters on dot and empty segments
  "/public/..;/private",
  "/public/..;a=b/private",
  "/public/.;/private",
  "/public/;x/private",
  "/public/%3bx/../private",
  "/public/..%3b/private",
  "/public/..%00/private",
  // backslashes, raw and encoded
  "/public\\..\\private",
  "/public/..\\private",
  "/public/%5c..%5cprivate",
  "/public/%5C../private",
  "/public/..%5c..%5cescape",
  // encoded slashes
  "/public/..%2fprivate",
  "/public%2f..%2fprivate",
  "/public/%2F../private",
  "/public/x%2f%2e%2e%2f%2e%2e%2fprivate",
  // scheme-relative and absolute spellings after the connector
  "//evil.example/x",
  "/public//evil.example/x",
  "/\\evil.example/x",
  "/public/\\\\evil.example/x",
  "/http://evil.example/",
  "/public/http://evil.example/",
  "/public/http:%2f%2fevil.example/",
  // NUL and other control characters
  "/public/%00",
  "/public/x%00.json",
  "/public/%0d%0aX-Injected:%201",
  "/public/%09",
  "/public/%7f",
  // overlong UTF-8 and malformed escapes
  "/public/%c0%ae%c0%ae/private",
  "/public/%c0%af..%c0%afprivate",
  "/public/%e0%80%ae%e0%80%ae/private",
  "/public/%c1%9c../private",
  "/public/%zz/private",
  "/public/%",
  "/public/%2",
  // Unicode dots, percent-encoded (U+FF0E fullwidth, U+2024 one dot leader, U+2025 two dot leader, U+3002)
  "/public/%EF%BC%8E%EF%BC%8E/private",
  "/public/%E2%80%A4%E2%80%A4/private",
  "/public/%E2%80%A5/private",
  "/public/%E3%80%82%E3%80%82/private",
  // trailing dots and spaces (Windows servers strip them: `..` with one more dot, `.. `)
  "/public/.../private",
  "/public/..../private",
  "/public/x./y",
  "/public/.. /private",
  "/public/..%20/private",
  "/public/..%20%20/private",
  // mixed case: the grant is for `public`, not `PUBLIC`
  "/PUBLIC/x",
  "/Public/../private",
  "/public/%2E%2E/PRIVATE",
  // tricky but harmless names that must stay under public/
  "/public/..x",
  "/public/x..",
  "/public/.hidden",
  "/public/a;b=c",
  "/public/?../../private",
  "/public/#/../../private",
  // outside the grant altogether
  "/private",
  "/private/../public/x",
  ""
]

/** Sent as raw bytes: characters Node's `http.request` will not put in a path. */
const rawBytesCorpus: ReadonlyArray<Buffer> = [
  Buffer.from(`${P}/public/\uff0e\uff0e/private`, "utf8"),
  Buffer.from(`${P}/public/\u2024\u2024/private`, "utf8"),
  Buffer.from(`${P}/public/\u2025/private`, "utf8"),
  Buffer.from(`${P}/public/..\u00a0/private`, "utf8"),
  Buffer.concat([Buffer.from(`${P}/public/`), Buffer.from([0xc0, 0xae, 0xc0, 0xae]), Buffer.from("/private")]),
  Buffer.concat([Buffer.from(`${P}/public/`), Buffer.from([0x00]), Buffer.from("/private")])
]

/** Request targets that are not origin-form paths. */
const oddTargets: ReadonlyArray<string> = [
  "http://evil.example/",
  "http://evil.example/v1/connectors/api/public/x",
  `http://127.0.0.1/v1/connectors/api/private`,
  "*",
  "v1/connectors/api/public/x",
  "/v1/connectors/api%2fpublic/x",
  "/v1/connectors/%61pi/private",
  "/v1/connectors/./api/private",
  "/v1/connectors/../connectors/api/private",
  "/v1/connectors//api/public/x"
]

/** The raw path the upstream saw stays under `/base/public/`, also as a URL parser resolves it and decoded once. */
const staysInside = (rawUrl: string): boolean => {
  const rawPath = rawUrl.split("?", 1)[0] as string
  if (!rawPath.startsWith("/base/public/") && rawPath !== "/base/public") return false
  if (!new URL(rawUrl, "http://upstream").pathname.startsWith("/base/public")) return false
  const segments = rawPath.split("/").map((s) => {
    try {
      return decodeURIComponent(s)
    } catch {
      return s
    }
  })
  // Once decoded, no segment is a dot segment, in any spelling a server might normalise to one.
  return segments.every((s) => {
    const bare = s.split(";", 1)[0]!.normalize("NFKC").replace(/[\s.]+$/, (m) => m.replace(/\s/g, ""))
    return bare !== "." && bare !== ".." && !s.includes("\\") && !s.includes("/") && !/[\u0000-\u001f]/.test(s)
  })
}

/**
 * `proxied`: the target names the proxy, so an answer that did not reach the upstream must be a
 * refusal; an absolute-form or odd target may instead be served by another route (the status page).
 */
const judge = async (label: string, send: () => Promise<RawAnswer>, proxied = true) => {
  const before = upstream.seen.length
  const answer = await send()
  const reached = upstream.seen.slice(before)
  expect(answer.status, `${label}: ${answer.head}`).toBeGreaterThanOrEqual(200)
  expect(answer.status, `${label}: ${answer.head}\n${answer.body}`).toBeLessThan(500)
  if (reached.length === 0 && !proxied) return { label, outcome: `not proxied ${answer.status}` }
  if (reached.length === 0) {
    expect([400, 403, 404], `${label} → ${answer.status}`).toContain(answer.status)
    // Node's own parser refuses some bytes before the gateway sees them: its 400 has no body.
    if (answer.body !== "") {
      const body = JSON.parse(answer.body) as { error?: unknown; message?: unknown }
      expect(typeof body.error, `${label}: ${answer.body}`).toBe("string")
      expect(typeof body.message, `${label}: ${answer.body}`).toBe("string")
    } else {
      expect(answer.status, label).toBe(400)
    }
    return { label, outcome: `refused ${answer.status}` }
  }
  expect(reached.length, label).toBe(1)
  const url = reached[0]!.url
  expect(staysInside(url), `${label} reached the upstream as ${url}`).toBe(true)
  return { label, outcome: `forwarded ${answer.status} as ${url}` }
}

describe("the traversal corpus", () => {
  it("is refused with a JSON reason or reaches the upstream under /base/public/, never a 5xx", async () => {
    const outcomes: Array<{ label: string; outcome: string }> = []
    for (const path of corpus) {
      outcomes.push(await judge(path, () => sendRaw(`${P}${path}`)))
      outcomes.push(await judge(`POST ${path}`, () => sendRaw(`${P}${path}`, "POST")))
    }
    for (const bytes of rawBytesCorpus) outcomes.push(await judge(bytes.toString("latin1"), () => sendRaw(bytes)))
    for (const target of oddTargets) outcomes.push(await judge(target, () => sendRaw(target), false))
    if (process.env["PROXY_CORPUS_VERBOSE"] !== undefined) console.log(outcomes.map((o) => `${o.outcome}\t${o.label}`).join("\n"))
    // Each outcome is one of the two; the benign names did reach the upstream (the check can fail both ways).
    const forwarded = outcomes.filter((o) => o.outcome.startsWith("forwarded")).map((o) => o.label)
    expect(forwarded).toEqual(expect.arrayContaining(["/public/..x", "/public/x..", "/public/.hidden", "/public/a;b=c", "/public/x./y"]))
    expect(forwarded).not.toContain("/private")
    // And the gateway still serves.
    expect((await sendRaw(`${P}/public/still-here`)).status).toBe(200)
  }, 30_000)
})

describe("headers a caller sends", () => {
  it("none of the caller's credentials, hop-by-hop, framing or override headers reach the upstream; the connector's credential does, once", async () => {
    const smuggled: Record<string, string> = {
      authorization: "Bearer caller-own-token",
      "x-api-key": API_KEY,
      "tailscale-user-login": "ts-user@example.com",
      "tailscale-user-name": "TS User",
      "tailscale-user-profile-pic": "https://example.com/pic.png",
      cookie: "session=caller-cookie",
      "proxy-authorization": "Basic Y2FsbGVyOnB3",
      "proxy-connection": "keep-alive",
      connection: "keep-alive, x-named-hop, X-Other-Hop",
      "x-named-hop": "hop-1",
      "x-other-hop": "hop-2",
      "keep-alive": "timeout=99",
      te: "trailers",
      trailer: "x-trailer",
      "transfer-encoding": "chunked",
      upgrade: "h2c",
      "x-original-url": "/base/private",
      "x-rewrite-url": "/base/private",
      "x-http-method-override": "DELETE",
      "x-http-method": "DELETE",
      "x-method-override": "DELETE",
      "x-forwarded-for": "6.6.6.6",
      "x-forwarded-host": "evil.example",
      "x-forwarded-proto": "gopher",
      "x-forwarded-prefix": "/evil",
      forwarded: "for=6.6.6.6;host=evil.example;proto=https"
    }
    const before = upstream.seen.length
    const response = await rawRequest(gateway.origin, `${P}/public/echo`, { method: "POST", headers: smuggled, body: Readable.from(["{", "}"]) })
    expect(response.status, response.body).toBe(200)
    expect(upstream.seen.length).toBe(before + 1)
    const seen = upstream.seen.at(-1)!
    for (const name of Object.keys(smuggled)) {
      // Set by the gateway itself: its own framing of the streamed body, and its own X-Forwarded-*.
      if (name === "authorization" || name === "transfer-encoding" || name === "connection" || name.startsWith("x-forwarded-")) continue
      expect(seen.headers[name], name).toBeUndefined()
    }
    // The gateway's own keep-alive connection to the upstream, not the caller's Connection list.
    expect(seen.headers.connection).toBe("keep-alive")
    // Authorization is the connector's, sent once; X-Forwarded-* are the gateway's own values.
    expect(seen.headers.authorization).toBe(`Bearer ${UPSTREAM_TOKEN}`)
    expect(seen.rawHeaders.filter((h) => h.toLowerCase() === "authorization")).toHaveLength(1)
    expect(JSON.stringify(seen.headers)).not.toContain("caller-own-token")
    expect(seen.headers["x-forwarded-for"]).toBe("127.0.0.1")
    expect(seen.headers["x-forwarded-host"]).toBe(new URL(gateway.origin).host)
    expect(seen.headers["x-forwarded-proto"]).toBe("http")
    expect(seen.headers["x-forwarded-prefix"]).toBe(P)
    // The chunked upload arrived whole, framed by the gateway.
    expect(seen.body).toBe("{}")
  })
})

describe("method overrides in the query", () => {
  it.each([
    ["GET", "?_method=DELETE"],
    ["POST", "?_method=PUT"],
    ["POST", "?a=1&_method=delete"],
    ["POST", "?%5Fmethod=DELETE"],
    ["POST", "?_METHOD=PATCH"],
    ["POST", "?_method[]=DELETE"],
    ["POST", "?_method"]
  ])("%s %s is refused with a 400 naming the parameter, and not forwarded", async (method, query) => {
    const before = upstream.seen.length
    const response = await rawRequest(gateway.origin, `${P}/public/items${query}`, { method, headers: { "x-api-key": API_KEY } })
    expect(response.status, response.body).toBe(400)
    const body = JSON.parse(response.body) as { error: string; message: string; connector: string }
    expect(body).toMatchObject({ error: "method_override", connector: "api" })
    expect(body.message.toLowerCase()).toContain("_method")
    expect(upstream.seen.length).toBe(before)
  })

  it("parameters that only look alike go through", async () => {
    const before = upstream.seen.length
    const response = await rawRequest(gateway.origin, `${P}/public/items?method=x&x_method=1&_methods=2`, { headers: { "x-api-key": API_KEY } })
    expect(response.status, response.body).toBe(200)
    expect(upstream.seen[before]?.url).toBe("/base/public/items?method=x&x_method=1&_methods=2")
  })
})

describe("cookies from the upstream", () => {
  it("are not set on the gateway's origin", async () => {
    const response = await rawRequest(gateway.origin, `${P}/public/headers`, { headers: { "x-api-key": API_KEY } })
    expect(response.status).toBe(200)
    expect(response.body).toBe("headers")
    // The upstream did send one (the fixture's /headers answer), and other headers come through.
    expect(response.headers["x-kept"]).toBe("yes")
    expect(response.headers["set-cookie"]).toBeUndefined()
  })
})
