/**
 * The built-in `clientCredentials` auth plugin's own rules: the refresh skew, which secret each
 * client authentication method requires, its JSON form. Token requests against real token
 * endpoints and through the gateway: test/clientCredentials.test.ts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { decodeApertureJson, decodeConfig } from "../../src/Aperture.js"
import { mcp } from "../../src/config/dsl.js"
import { clientCredentials, refreshSkewMillis } from "./clientCredentials.js"

const issuesOf = (auth: ReturnType<typeof clientCredentials>) =>
  Effect.either(decodeConfig({ connectors: { x: mcp({ url: "https://a.example.com/mcp", auth }) } })).pipe(
    Effect.map((result) => Either.isLeft(result) ? result.left.issues.map((i) => `${i.path}: ${i.message}`) : [])
  )

describe("clientCredentials", () => {
  it("refreshes min(60 s, 10 % of the lifetime) before expiry", () => {
    expect(refreshSkewMillis(3_600_000)).toBe(60_000)
    expect(refreshSkewMillis(100_000)).toBe(10_000)
  })

  it.effect("requires clientSecret, or privateKey for private_key_jwt, at its path", () =>
    Effect.gen(function*() {
      expect(yield* issuesOf(clientCredentials({ tokenUrl: "https://idp.example.com/token", clientId: "c" }))).toEqual([
        "connectors.x.auth.clientSecret: is required for authMethod \"client_secret_basic\""
      ])
      expect(yield* issuesOf(clientCredentials({ tokenUrl: "https://idp.example.com/token", clientId: "c", authMethod: "private_key_jwt" }))).toEqual([
        "connectors.x.auth.privateKey: is required for authMethod \"private_key_jwt\""
      ])
    }))

  it.effect("is the JSON config's oauth2_client_credentials, scopes as one space-separated string too", () =>
    Effect.gen(function*() {
      const config = yield* decodeApertureJson({
        connectors: {
          servers: {
            x: {
              protocol: "mcp",
              url: "https://a.example.com/mcp",
              auth: { type: "oauth2_client_credentials", client_id: "c", client_secret: "s", token_url: "https://idp.example.com/token", scopes: "read  write" }
            }
          }
        }
      }, undefined)
      expect(config.describe.auth["x"]).toBe(
        "clientCredentials (client c, client_secret_basic, token endpoint https://idp.example.com/token, scopes read write, secret: inline <redacted>)"
      )
    }))
})
