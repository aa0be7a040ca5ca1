import { describe, expect, it } from "vitest"
import { CallerBodyStalled, ProxyRequestRefused, UpstreamFailed } from "./ProxyError.js"

describe("proxy errors say how they answer HTTP", () => {
  it("a refusal answers its own status, code, connector and headers", () => {
    const refused = new ProxyRequestRefused({
      status: 401,
      code: "unauthorized",
      message: "unauthorized: no credential",
      headers: { "www-authenticate": "Bearer" }
    })
    expect(refused.httpAnswer).toEqual({
      status: 401,
      body: { error: "unauthorized", message: "unauthorized: no credential" },
      headers: { "www-authenticate": "Bearer" }
    })
    const unknown = new ProxyRequestRefused({ status: 404, code: "unknown_connector", message: "no such connector", connectorId: "x" })
    expect(unknown.httpAnswer).toEqual({
      status: 404,
      body: { error: "unknown_connector", message: "no such connector", connector: "x" },
      headers: undefined
    })
  })

  it("an upstream failure is 504 when it timed out, else 502, with its kind's code", () => {
    const answer = (kind: UpstreamFailed["kind"]) => new UpstreamFailed({ connectorId: "api", kind, message: "m" }).httpAnswer
    expect(answer("timeout")).toEqual({ status: 504, body: { error: "upstream_timeout", message: "m", connector: "api" } })
    expect(answer("unreachable")).toEqual({ status: 502, body: { error: "upstream_unreachable", message: "m", connector: "api" } })
    expect(answer("credential").body["error"]).toBe("credential_unavailable")
    expect(answer("private_address").body["error"]).toBe("upstream_address_refused")
    expect(answer("unchecked_error").body["error"]).toBe("upstream_error_unchecked")
  })

  it("a stalled caller body is the caller's 408, closing the connection", () => {
    expect(new CallerBodyStalled({ connectorId: "api", message: "m" }).httpAnswer).toEqual({
      status: 408,
      body: { error: "request_timeout", message: "m", connector: "api" },
      headers: { connection: "close" }
    })
  })
})
