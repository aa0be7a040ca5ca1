import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { decodePath, methodOverrideParam, normalizeBase, splitTarget, upstreamUrl, withQueryParams } from "./upstreamPath.js"

const left = (e: Either.Either<unknown, string>) => (Either.isLeft(e) ? e.left : undefined)

describe("splitTarget", () => {
  it("splits connector, raw path and raw query", () => {
    expect(splitTarget("/v1/connectors/github/repos/a%20b?x=1&y")).toEqual({
      connectorId: "github",
      rawPath: "/repos/a%20b",
      rawQuery: "x=1&y"
    })
    expect(splitTarget("/v1/connectors/github")).toEqual({ connectorId: "github", rawPath: "", rawQuery: "" })
    expect(splitTarget("/v1/connectors/")).toBeUndefined()
    expect(splitTarget("/v1/mcp")).toBeUndefined()
  })
})

describe("decodePath", () => {
  it("decodes once into the grant name", () => {
    expect(decodePath("/repos/octo/hello%20world")).toEqual(Either.right("repos/octo/hello world"))
    expect(decodePath("/repos/")).toEqual(Either.right("repos/"))
    expect(decodePath("")).toEqual(Either.right(""))
    expect(decodePath("/100%25")).toEqual(Either.right("100%"))
    // Path parameters on ordinary segments (matrix parameters) are not dot segments.
    expect(decodePath("/cars;color=red/..a;b")).toEqual(Either.right("cars;color=red/..a;b"))
  })

  it.each([
    ["/..", "dot segment"],
    ["/a/../b", "dot segment"],
    ["/%2e%2E", "dot segment"],
    ["/.", "dot segment"],
    ["/public/..;/private", "dot segment with path parameters"],
    ["/public/..;x=1/private", "dot segment with path parameters"],
    ["/public/%2e%2e;x/private", "dot segment with path parameters"],
    ["/public/%2E.%3bx/private", "dot segment with path parameters"],
    ["/public/.;/x", "dot segment with path parameters"],
    ["/public/..;", "dot segment with path parameters"],
    ["/public/;x/private", "empty path segment with path parameters"],
    ["/%252e%252e", "double-encoded"],
    ["/100%2541", "double-encoded"],
    ["/a%2fb", "encoded slash"],
    ["/a%5Cb", "encoded slash"],
    ["/a\\b", "backslash"],
    ["//host/x", "empty path segment"],
    ["/https://host/", "empty path segment"],
    ["/a%00", "control character"],
    ["/a%7f", "control character"],
    ["/%e0%a4%a", "malformed"],
    ["relative", "must start with /"],
    ["/public/%EF%BC%8E%EF%BC%8E/x", "another spelling"],
    ["/public/%E2%80%A5/x", "another spelling"],
    ["/public/..%20/x", "another spelling"],
    ["/public/%E2%80%A4;x/x", "another spelling"]
  ])("refuses %s", (raw, reason) => {
    expect(left(decodePath(raw))).toContain(reason)
  })

  it("keeps names that only contain dots", () => {
    expect(decodePath("/public/.../x.y/..x/%E3%80%82")).toEqual(Either.right("public/.../x.y/..x/\u3002"))
  })
})

describe("methodOverrideParam", () => {
  it.each(["_method=DELETE", "a=1&_METHOD=put", "%5Fmethod=x", "_method[]=x", "_method", "+_method=x"])("finds it in %s", (query) => {
    expect(methodOverrideParam(query)?.trim().toLowerCase()).toMatch(/^_method/)
  })

  it.each(["", "method=DELETE", "x_method=1", "_methods=2", "a=_method"])("finds none in %s", (query) => {
    expect(methodOverrideParam(query)).toBeUndefined()
  })
})

describe("upstreamUrl", () => {
  const base = normalizeBase(new URL("https://api.example.com/v3"))

  it("joins under the base with one slash, keeping the path and query as sent", () => {
    expect(base.href).toBe("https://api.example.com/v3/")
    expect(Either.getOrThrow(upstreamUrl(base, "/repos/a%20b", "q=a+b&x=%2F")).href).toBe(
      "https://api.example.com/v3/repos/a%20b?q=a+b&x=%2F"
    )
    expect(Either.getOrThrow(upstreamUrl(base, "", "")).href).toBe("https://api.example.com/v3/")
  })

  it("keeps the base URL's own query first", () => {
    const withQuery = normalizeBase(new URL("http://h/api?version=2"))
    expect(Either.getOrThrow(upstreamUrl(withQuery, "/x", "a=1")).href).toBe("http://h/api/x?version=2&a=1")
  })

  it("refuses a result outside the base even if a dot segment slipped through", () => {
    expect(left(upstreamUrl(base, "/%2e%2e/%2e%2e/etc", ""))).toContain("leaves")
  })
})

describe("withQueryParams", () => {
  it("replaces the caller's parameter of the same name and leaves the rest byte for byte", () => {
    const url = new URL("http://h/x?api_key=mine&q=a%20b&api%5Fkey=sneaky")
    expect(withQueryParams(url, { api_key: "k&1" }).search).toBe("?q=a%20b&api_key=k%261")
  })
})
