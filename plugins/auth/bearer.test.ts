/** The built-in `bearer` auth plugin: what it adds to a request, its JSON form, its description (end to end: test/authPlugins.test.ts). */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { decodeApertureJson } from "../../src/Aperture.js"
import { env } from "../../src/config/secret.js"
import { authorizationOf, withEnv } from "../../test/helpers/authPlugins.js"
import { bearer } from "./bearer.js"

describe("bearer", () => {
  it("sends Authorization: Bearer <secret>, the secret read from the environment when env()", async () => {
    expect(await authorizationOf(bearer({ secret: "s3cret" }))).toEqual({ headers: { authorization: "Bearer s3cret" } })
    expect(await authorizationOf(bearer({ secret: env("BEARER_VAR") }), { BEARER_VAR: "from-env" }))
      .toEqual({ headers: { authorization: "Bearer from-env" } })
  })

  it("is the JSON config's bearer_token, described without its secret", async () => {
    const config = await Effect.runPromise(
      decodeApertureJson({ connectors: { servers: { x: { protocol: "mcp", url: "https://a.example.com/mcp", auth: { type: "bearer_token", secret: { env: "BEARER_VAR" } } } } } }, undefined)
        .pipe(withEnv({ BEARER_VAR: "from-env" }))
    )
    expect(config.describe.auth["x"]).toBe("bearer (secret: env BEARER_VAR)")
    expect(JSON.stringify(config.describe)).not.toContain("from-env")
  })
})
