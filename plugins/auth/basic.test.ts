/** The built-in `basic` auth plugin: the header it sends (RFC 7617), its JSON form, its option checks (end to end: test/authPlugins.test.ts). */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { decodeApertureJson, decodeConfig } from "../../src/Aperture.js"
import { mcp } from "../../src/config/dsl.js"
import { authorizationOf } from "../../test/helpers/authPlugins.js"
import { basic } from "./basic.js"

describe("basic", () => {
  it.effect("sends Authorization: Basic base64(user:password), UTF-8, a \":\" in the password kept", () =>
    Effect.gen(function*() {
      const { headers } = yield* authorizationOf(basic({ username: "svc", password: "pa:ss wörd" }))
      expect(headers?.["authorization"]).toBe(`Basic ${Buffer.from("svc:pa:ss wörd", "utf8").toString("base64")}`)
    }))

  it.effect("refuses a \":\" in the username at its path, and is the JSON config's basic", () =>
    Effect.gen(function*() {
      const bad = yield* Effect.either(decodeConfig({ connectors: { x: mcp({ url: "https://a.example.com/mcp", auth: basic({ username: "a:b", password: "p" }) }) } }))
      expect(Either.isLeft(bad) && bad.left.issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
        "connectors.x.auth.username: must not contain \":\" (RFC 7617)"
      ])
      const json = yield* decodeApertureJson(
        { connectors: { servers: { x: { protocol: "mcp", url: "https://a.example.com/mcp", auth: { type: "basic", username: "svc", password: "p" } } } } },
        undefined
      )
      expect(json.describe.auth["x"]).toBe("basic (user svc, password: inline <redacted>)")
    }))
})
