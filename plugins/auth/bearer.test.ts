/** The built-in `bearer` auth plugin: what it adds to a request, its JSON form, its description (end to end: test/authPlugins.test.ts). */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { decodeApertureJson } from "../../src/Aperture.js"
import { env } from "../../src/config/secret.js"
import { authorizationOf, withEnv } from "../../test/helpers/authPlugins.js"
import { bearer } from "./bearer.js"

describe("bearer", () => {
  it.effect("sends Authorization: Bearer <secret>, the secret read from the environment when env()", () =>
    Effect.gen(function*() {
      expect(yield* authorizationOf(bearer({ secret: "s3cret" }))).toEqual({ headers: { authorization: "Bearer s3cret" } })
      expect(yield* authorizationOf(bearer({ secret: env("BEARER_VAR") }), { BEARER_VAR: "from-env" }))
        .toEqual({ headers: { authorization: "Bearer from-env" } })
    }))

  it.effect("is the JSON config's bearer_token, described without its secret", () =>
    Effect.gen(function*() {
      const config = yield* decodeApertureJson(
        { connectors: { servers: { x: { protocol: "mcp", url: "https://a.example.com/mcp", auth: { type: "bearer_token", secret: { env: "BEARER_VAR" } } } } } },
        undefined
      ).pipe(withEnv({ BEARER_VAR: "from-env" }))
      expect(config.describe.auth["x"]).toBe("bearer (secret: env BEARER_VAR)")
      expect(JSON.stringify(config.describe)).not.toContain("from-env")
    }))
})
