/**
 * Identity plugins together: the verified-token cache the token plugins share, and how
 * `Identities` sets `via` (each built-in plugin's own cases are beside it, plugins/identity/*.test.ts).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { decodeConfig } from "../src/Aperture.js"
import { GatewayConfig } from "../src/config/GatewayConfig.js"
import { makeGrantPolicy } from "../src/grants/GrantPolicy.js"
import { Identities } from "../src/identity/Identities.js"
import { VerifiedTokens } from "../src/identity/verifiedTokens.js"
import { type CallerRequest, defineIdentityPlugin, type IdentityPlugin } from "../src/plugin/IdentityPlugin.js"
import { loopback } from "../src/index.js"
import { request } from "./helpers/identityPlugins.js"

describe("verified tokens", () => {
  const who = (login: string) => ({ login, groups: [], tags: [], via: "jwt" })

  it("remembers a token until it expires", () => {
    const cache = new VerifiedTokens(10)
    cache.set("t", who("a"), 1000, 0)
    expect(cache.get("t", 999)?.login).toBe("a")
    expect(cache.get("t", 1000)).toBeUndefined()
    expect(cache.size).toBe(0)
  })

  it("uses a long-lived token at most maxAgeSeconds before verifying it again", () => {
    const cache = new VerifiedTokens(10, 600)
    cache.set("t", who("a"), 100_000, 1000)
    expect(cache.get("t", 1599)?.login).toBe("a")
    expect(cache.get("t", 1600)).toBeUndefined()
  })

  it("drops the least recently used token past its bound", () => {
    const cache = new VerifiedTokens(2)
    cache.set("a", who("a"), 1e12, 0)
    cache.set("b", who("b"), 1e12, 0)
    expect(cache.get("a", 0)?.login).toBe("a") // a is now the most recently used
    cache.set("c", who("c"), 1e12, 0)
    expect(cache.get("b", 0)).toBeUndefined()
    expect(cache.get("a", 0)?.login).toBe("a")
    expect(cache.get("c", 0)?.login).toBe("c")
    expect(cache.size).toBe(2)
  })
})

describe("via", () => {
  // Identities stamps `via` from the plugin's name, and the default admins are the callers of the
  // built-in loopback plugin by its mark, not by a name any plugin could claim.
  const identifyWith = (identity: ReadonlyArray<IdentityPlugin<any, any>>, req: CallerRequest) =>
    Effect.gen(function*() {
      const config = yield* decodeConfig({ identity })
      const caller = yield* Effect.flatMap(Identities, (identities) => identities.identify(req)).pipe(
        Effect.provide(Identities.Default),
        Effect.provideService(GatewayConfig, config)
      )
      return { caller, isAdmin: makeGrantPolicy(config.grants).isAdmin(caller) }
    })
  const impostor = defineIdentityPlugin({
    name: "impostor",
    options: Schema.Struct({}),
    make: () => Effect.succeed({ identify: () => Effect.succeed({ login: "mallory", groups: [], tags: [], via: "loopback" }) })
  })
  const namedLoopback = defineIdentityPlugin({
    name: "loopback",
    options: Schema.Struct({}),
    make: () => Effect.succeed({ identify: () => Effect.succeed({ login: "mallory", groups: [], tags: [], via: "loopback" }) })
  })
  const local = request({ remoteAddress: "127.0.0.1" })

  it.effect("is the recognising plugin's name, whatever the plugin claimed", () =>
    Effect.gen(function*() {
      const { caller, isAdmin } = yield* identifyWith([impostor({})], local)
      expect(caller).toMatchObject({ login: "mallory", via: "impostor" })
      expect(isAdmin).toBe(false)
    }))

  it.effect("makes the built-in loopback plugin's callers the default admins, and a custom plugin named loopback not", () =>
    Effect.gen(function*() {
      const builtIn = yield* identifyWith([loopback({ login: "local" })], local)
      expect(builtIn.caller).toMatchObject({ login: "local", via: "loopback" })
      expect(builtIn.isAdmin).toBe(true)
      const again = yield* identifyWith([loopback({ login: "local" })], local)
      expect(again.isAdmin).toBe(true)
      const named = yield* identifyWith([namedLoopback({})], local)
      expect(named.caller).toMatchObject({ login: "mallory", via: "loopback" })
      expect(named.isAdmin).toBe(false)
    }))
})
