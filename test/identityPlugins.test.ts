/**
 * The built-in identity plugins on their own, through the same decode-then-make path the
 * gateway takes: which requests each recognises, refuses or leaves to the next plugin; config
 * errors with paths and without the keys; the verified-token cache.
 */
import { ConfigProvider, Effect, Either, Logger, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { decodeConfig } from "../src/Aperture.js"
import { env } from "../src/config/secret.js"
import { type CallerRequest, type Identifier, type IdentityPlugin, IdentityPluginSchema } from "../src/plugin/IdentityPlugin.js"
import { VerifiedTokens } from "../src/identity/verifiedTokens.js"
import { apiKeys, hashApiKey, jwt, loopback, trustedHeaders } from "../src/index.js"
import { decodeEncodedWord } from "../plugins/identity/trustedHeaders.js"
import { GatewayConfig } from "../src/config/GatewayConfig.js"
import { makeGrantPolicy } from "../src/grants/GrantPolicy.js"
import { Identities } from "../src/identity/Identities.js"
import { defineIdentityPlugin } from "../src/plugin/IdentityPlugin.js"

const withEnv = (vars: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars))))

const identifierOf = (plugin: IdentityPlugin<any, any>, vars: Record<string, string> = {}): Promise<Identifier> =>
  Effect.runPromise(
    Schema.decodeUnknown(IdentityPluginSchema)(plugin).pipe(
      Effect.flatMap((resolved) => Effect.scoped(resolved.spec.make(resolved.options))),
      withEnv(vars)
    )
  )

const request = (overrides: { remoteAddress?: string | undefined; headers?: Record<string, string> } = {}): CallerRequest => ({
  remoteAddress: "remoteAddress" in overrides ? overrides.remoteAddress : "203.0.113.7",
  headers: overrides.headers ?? {},
  url: new URL("http://gateway.example.com/v1/mcp")
})

/** `login` when recognised, `undefined` when left to the next plugin, `refused: …` when refused. */
const outcome = async (identifier: Identifier, req: CallerRequest) => {
  const result = await Effect.runPromise(Effect.either(identifier.identify(req)))
  if (Either.isLeft(result)) return `refused: ${result.left.message}`
  return result.right?.login
}

const issuesOf = async (identity: ReadonlyArray<unknown>, vars: Record<string, string> = {}) => {
  const result = await Effect.runPromise(decodeConfig({ identity }).pipe(withEnv(vars), Effect.either))
  if (Either.isRight(result)) throw new Error("expected the config to be invalid")
  return result.left.issues.map((i) => `${i.path}: ${i.message}`)
}

const ALICE_KEY = "alice-key-5f0c2d8e9b1a4c7d"
const CI_KEY = "ci-key-0a9b8c7d6e5f4a3b2c1d"
const ENV_KEY = "env-key-77c1e0d2f3a4b5c6"

describe("apiKeys", () => {
  const plugin = apiKeys({
    keys: {
      [ALICE_KEY]: { login: "alice", groups: ["eng"] },
      // The config holds only the hash of this one.
      [hashApiKey(CI_KEY)]: { login: "ci", tags: ["ci"] }
    }
  })

  it("recognises a key as Bearer or X-API-Key, live or given as its SHA-256", async () => {
    const identifier = await identifierOf(plugin)
    expect(await outcome(identifier, request({ headers: { authorization: `Bearer ${ALICE_KEY}` } }))).toBe("alice")
    expect(await outcome(identifier, request({ headers: { authorization: `bearer ${ALICE_KEY}` } }))).toBe("alice")
    expect(await outcome(identifier, request({ headers: { "x-api-key": CI_KEY } }))).toBe("ci")
    const ci = await Effect.runPromise(identifier.identify(request({ headers: { "x-api-key": CI_KEY } })))
    expect(ci).toEqual({ login: "ci", groups: [], tags: ["ci"], via: "apiKeys" })
  })

  it("refuses an unknown key, leaves requests without one (and JWTs) to the next plugin", async () => {
    const identifier = await identifierOf(plugin)
    expect(await outcome(identifier, request({ headers: { "x-api-key": `${ALICE_KEY}x` } }))).toBe("refused: unknown API key")
    expect(await outcome(identifier, request({ headers: { authorization: `Bearer ${ALICE_KEY.slice(0, -1)}` } }))).toBe("refused: unknown API key")
    expect(await outcome(identifier, request({ headers: { authorization: `Basic ${ALICE_KEY}` } }))).toBeUndefined()
    expect(await outcome(identifier, request())).toBeUndefined()
    expect(await outcome(identifier, request({ headers: { authorization: "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln" } }))).toBeUndefined()
    // A key's hash is not a key: presenting the configured hash gets nowhere.
    expect(await outcome(identifier, request({ headers: { "x-api-key": hashApiKey(CI_KEY) } }))).toBe("refused: unknown API key")
  })

  it("takes keys from the environment in the list form", async () => {
    const identifier = await identifierOf(apiKeys({ keys: [{ key: env("CI_KEY_VAR"), login: "ci", tags: ["ci"] }] }), { CI_KEY_VAR: ENV_KEY })
    expect(await outcome(identifier, request({ headers: { "x-api-key": ENV_KEY } }))).toBe("ci")
  })

  it("reports bad keys with paths that never show the key", async () => {
    const issues = await issuesOf([
      apiKeys({ keys: { "": { login: "a" }, [ALICE_KEY]: { login: "bad login" }, "sha256:abc": { login: "b" } } }),
      apiKeys({ keys: [{ key: env("MISSING_KEY_VAR"), login: "c" }, { key: "", login: "d" }] }),
      apiKeys({ keys: {} })
    ])
    expect(issues).toEqual(expect.arrayContaining([
      "identity.0.keys.<key 0>: a key must not be empty",
      expect.stringMatching(/^identity\.0\.keys\.<key 1>\.login: must be non-empty, without spaces/),
      expect.stringMatching(/^identity\.0\.keys\.<key 2>: a hashed key is sha256: and 64 hex digits/),
      "identity.1.keys.0.key: environment variable MISSING_KEY_VAR is not set",
      "identity.1.keys.1.key: must not be empty",
      "identity.2.keys: needs at least one key"
    ]))
    expect(issues.join("\n")).not.toContain(ALICE_KEY)
  })

  it("takes a short key, with a warning that names its holder and never the key", async () => {
    const short = "tooshort-31d2"
    const logged: Array<string> = []
    const identifier = await Effect.runPromise(
      Schema.decodeUnknown(IdentityPluginSchema)(apiKeys({ keys: { [short]: { login: "dana" }, [ALICE_KEY]: { login: "alice" } } })).pipe(
        Effect.flatMap((resolved) => Effect.scoped(resolved.spec.make(resolved.options))),
        Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => logged.push(String(message)))))
      )
    )
    expect(await outcome(identifier, request({ headers: { "x-api-key": short } }))).toBe("dana")
    expect(logged.join("\n")).toMatch(/the key of dana is shorter than 16 characters/)
    expect(logged.join("\n")).not.toContain(short)
    expect(logged.join("\n")).not.toContain("alice")
  })
})

describe("trustedHeaders", () => {
  const headers = { "tailscale-user-login": "alice@example.com", "tailscale-user-name": "=?utf-8?q?Alice_M=C3=BCller?=" }

  it("believes Tailscale Serve's headers from loopback only, by default", async () => {
    const identifier = await identifierOf(trustedHeaders())
    for (const remoteAddress of ["127.0.0.1", "::1", "::ffff:127.0.0.1"]) {
      const identity = await Effect.runPromise(identifier.identify(request({ remoteAddress, headers })))
      expect(identity).toEqual({ login: "alice@example.com", groups: [], tags: [], via: "trustedHeaders", displayName: "Alice Müller" })
    }
    // Forged from another host: ignored, so the caller is whoever the next plugin says (or nobody).
    expect(await outcome(identifier, request({ remoteAddress: "203.0.113.7", headers }))).toBeUndefined()
    expect(await outcome(identifier, request({ remoteAddress: "::ffff:203.0.113.7", headers }))).toBeUndefined()
    expect(await outcome(identifier, request({ remoteAddress: undefined, headers }))).toBeUndefined()
    expect(await outcome(identifier, request({ remoteAddress: "127.0.0.1" }))).toBeUndefined()
  })

  it("believes them from the configured ranges instead", async () => {
    const identifier = await identifierOf(trustedHeaders({ from: ["10.1.0.0/16", "fd7a:115c:a1e0::/48"] }))
    expect(await outcome(identifier, request({ remoteAddress: "10.1.2.3", headers }))).toBe("alice@example.com")
    expect(await outcome(identifier, request({ remoteAddress: "fd7a:115c:a1e0::5", headers }))).toBe("alice@example.com")
    expect(await outcome(identifier, request({ remoteAddress: "10.2.0.1", headers }))).toBeUndefined()
    expect(await outcome(identifier, request({ remoteAddress: "127.0.0.1", headers }))).toBeUndefined()
  })

  it("refuses a login that is not one, and rejects bad ranges at load", async () => {
    const identifier = await identifierOf(trustedHeaders())
    expect(await outcome(identifier, request({ remoteAddress: "127.0.0.1", headers: { "tailscale-user-login": "a b" } })))
      .toBe("refused: Tailscale-User-Login is not a login")
    expect(await issuesOf([trustedHeaders({ from: ["10.0.0.0/33", "banana"] })])).toEqual([
      "identity.0.from.0: invalid address range \"10.0.0.0/33\": expected an address or address/prefix, e.g. 10.0.0.0/8",
      "identity.0.from.1: invalid address range \"banana\": expected an address or address/prefix, e.g. 10.0.0.0/8"
    ])
  })

  it("decodes RFC 2047 names and leaves plain ones alone", () => {
    expect(decodeEncodedWord("=?utf-8?b?w4lsb2lzZQ==?=")).toBe("Éloise")
    expect(decodeEncodedWord("Bob Smith")).toBe("Bob Smith")
  })
})

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
    Effect.runPromise(
      Effect.gen(function*() {
        const config = yield* decodeConfig({ identity })
        const caller = yield* Effect.flatMap(Identities, (identities) => identities.identify(req)).pipe(
          Effect.provide(Identities.Default),
          Effect.provideService(GatewayConfig, config)
        )
        return { caller, isAdmin: makeGrantPolicy(config.grants).isAdmin(caller) }
      })
    )
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

  it("is the recognising plugin's name, whatever the plugin claimed", async () => {
    const { caller, isAdmin } = await identifyWith([impostor({})], local)
    expect(caller).toMatchObject({ login: "mallory", via: "impostor" })
    expect(isAdmin).toBe(false)
  })

  it("makes the built-in loopback plugin's callers the default admins, and a custom plugin named loopback not", async () => {
    const builtIn = await identifyWith([loopback({ login: "local" })], local)
    expect(builtIn.caller).toMatchObject({ login: "local", via: "loopback" })
    expect(builtIn.isAdmin).toBe(true)
    const again = await identifyWith([loopback({ login: "local" })], local)
    expect(again.isAdmin).toBe(true)
    const named = await identifyWith([namedLoopback({})], local)
    expect(named.caller).toMatchObject({ login: "mallory", via: "loopback" })
    expect(named.isAdmin).toBe(false)
  })
})
