/** The built-in `jwt` identity plugin's options and what it leaves to the next plugin (tokens against a real issuer: test/jwtIdentity.test.ts). */
import { describe, expect, it } from "vitest"
import { identifierOf, issuesOf, outcome, request } from "../../test/helpers/identityPlugins.js"
import { jwt } from "./jwt.js"
import { loopback } from "./loopback.js"

describe("jwt options", () => {
  it("reports problems with their paths", async () => {
    expect(await issuesOf([
      loopback({ login: "me" }),
      jwt({ issuer: "http://idp.example.com", audience: "aperture" }),
      jwt({ issuer: "https://idp.example.com", audience: [] as never, jwksUrl: "http://idp.example.com/jwks", extra: 1 } as never)
    ])).toEqual(expect.arrayContaining([
      "identity.1.issuer: keys are discovered from the issuer, and plain http is allowed only to localhost; use https; or give jwksUrl",
      "identity.2.audience: expected a non-empty string or a non-empty list of them",
      expect.stringMatching(/^identity\.2\.jwksUrl: jwksUrl: plain http is allowed only to localhost/),
      expect.stringMatching(/^identity\.2\.extra: unexpected field/)
    ]))
  })

  it("leaves requests without a JWT to the next plugin", async () => {
    const identifier = await identifierOf(jwt({ issuer: "https://idp.example.com", audience: "aperture" }))
    expect(await outcome(identifier, request())).toBeUndefined()
    expect(await outcome(identifier, request({ headers: { authorization: "Bearer not-a-jwt" } }))).toBeUndefined()
    expect(identifier.authorizationServer).toEqual({ issuer: "https://idp.example.com", resource: undefined })
  })
})
