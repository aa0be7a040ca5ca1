/** The built-in `loopback` identity plugin, through the gateway's decode-then-make path. */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { identifierOf, outcome, request } from "../../test/helpers/identityPlugins.js"
import { loopback } from "./loopback.js"

describe("loopback", () => {
  it.effect("recognises direct local connections only, not ones a local proxy relays", () =>
    Effect.gen(function*() {
      const identifier = yield* identifierOf(loopback({ login: "me", groups: ["admins"] }))
      expect(yield* outcome(identifier, request({ remoteAddress: "127.0.0.1" }))).toBe("me")
      expect(yield* outcome(identifier, request({ remoteAddress: "127.8.9.10" }))).toBe("me")
      expect(yield* outcome(identifier, request({ remoteAddress: "::1" }))).toBe("me")
      expect(yield* outcome(identifier, request({ remoteAddress: "192.168.1.2" }))).toBeUndefined()
      expect(yield* outcome(identifier, request({ remoteAddress: "127.0.0.1", headers: { "x-forwarded-for": "100.64.0.7" } }))).toBeUndefined()
      expect(yield* outcome(identifier, request({ remoteAddress: "127.0.0.1", headers: { forwarded: "for=100.64.0.7" } }))).toBeUndefined()
    }))
})
