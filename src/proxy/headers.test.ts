import { describe, expect, it } from "vitest"
import { callerResponseHeaders, upstreamRequestHeaders } from "./headers.js"

const forwarded = { remoteAddress: "127.0.0.1", proto: "http", host: "gw:8080", prefix: "/v1/connectors/x" }

describe("upstreamRequestHeaders", () => {
  it("drops the caller's credentials, hop-by-hop and Connection-named headers, and sets Host and X-Forwarded-*", () => {
    const out = upstreamRequestHeaders({
      host: "gw:8080",
      authorization: "Bearer caller",
      cookie: "a=1",
      "proxy-authorization": "x",
      connection: "close, x-hop",
      "x-hop": "1",
      "transfer-encoding": "chunked",
      upgrade: "websocket",
      te: "trailers",
      trailer: "x",
      "x-forwarded-for": "6.6.6.6",
      forwarded: "for=6.6.6.6",
      x_forwarded_for: "6.6.6.6",
      expect: "100-continue",
      accept: "application/json",
      "content-length": "2"
    }, "api.example.com", forwarded)
    expect(out).toEqual({
      accept: "application/json",
      "content-length": "2",
      host: "api.example.com",
      "x-forwarded-for": "127.0.0.1",
      "x-forwarded-proto": "http",
      "x-forwarded-host": "gw:8080",
      "x-forwarded-prefix": "/v1/connectors/x"
    })
  })
})

describe("callerResponseHeaders", () => {
  it("drops cookies, challenges, hop-by-hop and origin-scoped headers and joins repeated values", () => {
    expect(callerResponseHeaders({
      "content-type": "text/plain",
      "set-cookie": ["a=1", "b=2"],
      "www-authenticate": "Bearer",
      connection: "x-hop",
      "x-hop": "1",
      "keep-alive": "timeout=5",
      "transfer-encoding": "chunked",
      "alt-svc": "h3=\":443\"",
      vary: "accept",
      link: "<a>; rel=next"
    })).toEqual({
      "content-type": "text/plain",
      vary: "accept",
      link: "<a>; rel=next",
      "content-security-policy": "sandbox",
      "x-content-type-options": "nosniff"
    })
  })
})
