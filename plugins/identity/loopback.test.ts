/** The built-in `loopback` identity plugin, through the gateway's decode-then-make path. */
import { describe, expect, it } from "vitest"
import { identifierOf, outcome, request } from "../../test/helpers/identityPlugins.js"
import { loopback } from "./loopback.js"

describe("loopback", () => {
  it("recognises direct local connections only, not ones a local proxy relays", async () => {
    const identifier = await identifierOf(loopback({ login: "me", groups: ["admins"] }))
    expect(await outcome(identifier, request({ remoteAddress: "127.0.0.1" }))).toBe("me")
    expect(await outcome(identifier, request({ remoteAddress: "127.8.9.10" }))).toBe("me")
    expect(await outcome(identifier, request({ remoteAddress: "::1" }))).toBe("me")
    expect(await outcome(identifier, request({ remoteAddress: "192.168.1.2" }))).toBeUndefined()
    expect(await outcome(identifier, request({ remoteAddress: "127.0.0.1", headers: { "x-forwarded-for": "100.64.0.7" } }))).toBeUndefined()
    expect(await outcome(identifier, request({ remoteAddress: "127.0.0.1", headers: { forwarded: "for=100.64.0.7" } }))).toBeUndefined()
  })
})
