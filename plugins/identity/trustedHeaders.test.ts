/** The built-in `trustedHeaders` identity plugin, through the gateway's decode-then-make path. */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { identifierOf, issuesOf, outcome, request } from "../../test/helpers/identityPlugins.js"
import { decodeEncodedWord, trustedHeaders } from "./trustedHeaders.js"

describe("trustedHeaders", () => {
  const headers = { "tailscale-user-login": "alice@example.com", "tailscale-user-name": "=?utf-8?q?Alice_M=C3=BCller?=" }

  it.effect("believes Tailscale Serve's headers from loopback only, by default", () =>
    Effect.gen(function*() {
      const identifier = yield* identifierOf(trustedHeaders())
      for (const remoteAddress of ["127.0.0.1", "::1", "::ffff:127.0.0.1"]) {
        const identity = yield* identifier.identify(request({ remoteAddress, headers }))
        expect(identity).toEqual({ login: "alice@example.com", groups: [], tags: [], via: "trustedHeaders", displayName: "Alice Müller" })
      }
      // Forged from another host: ignored, so the caller is whoever the next plugin says (or nobody).
      expect(yield* outcome(identifier, request({ remoteAddress: "203.0.113.7", headers }))).toBeUndefined()
      expect(yield* outcome(identifier, request({ remoteAddress: "::ffff:203.0.113.7", headers }))).toBeUndefined()
      expect(yield* outcome(identifier, request({ remoteAddress: undefined, headers }))).toBeUndefined()
      expect(yield* outcome(identifier, request({ remoteAddress: "127.0.0.1" }))).toBeUndefined()
    }))

  it.effect("believes them from the configured ranges instead", () =>
    Effect.gen(function*() {
      const identifier = yield* identifierOf(trustedHeaders({ from: ["10.1.0.0/16", "fd7a:115c:a1e0::/48"] }))
      expect(yield* outcome(identifier, request({ remoteAddress: "10.1.2.3", headers }))).toBe("alice@example.com")
      expect(yield* outcome(identifier, request({ remoteAddress: "fd7a:115c:a1e0::5", headers }))).toBe("alice@example.com")
      expect(yield* outcome(identifier, request({ remoteAddress: "10.2.0.1", headers }))).toBeUndefined()
      expect(yield* outcome(identifier, request({ remoteAddress: "127.0.0.1", headers }))).toBeUndefined()
    }))

  it.effect("refuses a login that is not one, and rejects bad ranges at load", () =>
    Effect.gen(function*() {
      const identifier = yield* identifierOf(trustedHeaders())
      expect(yield* outcome(identifier, request({ remoteAddress: "127.0.0.1", headers: { "tailscale-user-login": "a b" } })))
        .toBe("refused: Tailscale-User-Login is not a login")
      expect(yield* issuesOf([trustedHeaders({ from: ["10.0.0.0/33", "banana"] })])).toEqual([
        "identity.0.from.0: invalid address range \"10.0.0.0/33\": expected an address or address/prefix, e.g. 10.0.0.0/8",
        "identity.0.from.1: invalid address range \"banana\": expected an address or address/prefix, e.g. 10.0.0.0/8"
      ])
    }))

  it("decodes RFC 2047 names and leaves plain ones alone", () => {
    expect(decodeEncodedWord("=?utf-8?b?w4lsb2lzZQ==?=")).toBe("Éloise")
    expect(decodeEncodedWord("Bob Smith")).toBe("Bob Smith")
  })
})
