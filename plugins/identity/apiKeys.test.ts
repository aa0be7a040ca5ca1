/** The built-in `apiKeys` identity plugin, through the gateway's decode-then-make path. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, Schema } from "effect"
import { env } from "../../src/config/secret.js"
import { IdentityPluginSchema } from "../../src/plugin/IdentityPlugin.js"
import { identifierOf, issuesOf, outcome, request } from "../../test/helpers/identityPlugins.js"
import { apiKeys, hashApiKey } from "./apiKeys.js"

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

  it.effect("recognises a key as Bearer or X-API-Key, live or given as its SHA-256", () =>
    Effect.gen(function*() {
      const identifier = yield* identifierOf(plugin)
      expect(yield* outcome(identifier, request({ headers: { authorization: `Bearer ${ALICE_KEY}` } }))).toBe("alice")
      expect(yield* outcome(identifier, request({ headers: { authorization: `bearer ${ALICE_KEY}` } }))).toBe("alice")
      expect(yield* outcome(identifier, request({ headers: { "x-api-key": CI_KEY } }))).toBe("ci")
      const ci = yield* identifier.identify(request({ headers: { "x-api-key": CI_KEY } }))
      expect(ci).toEqual({ login: "ci", groups: [], tags: ["ci"], via: "apiKeys" })
    }))

  it.effect("refuses an unknown key, leaves requests without one (and JWTs) to the next plugin", () =>
    Effect.gen(function*() {
      const identifier = yield* identifierOf(plugin)
      expect(yield* outcome(identifier, request({ headers: { "x-api-key": `${ALICE_KEY}x` } }))).toBe("refused: unknown API key")
      expect(yield* outcome(identifier, request({ headers: { authorization: `Bearer ${ALICE_KEY.slice(0, -1)}` } }))).toBe("refused: unknown API key")
      expect(yield* outcome(identifier, request({ headers: { authorization: `Basic ${ALICE_KEY}` } }))).toBeUndefined()
      expect(yield* outcome(identifier, request())).toBeUndefined()
      expect(yield* outcome(identifier, request({ headers: { authorization: "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln" } }))).toBeUndefined()
      // A key's hash is not a key: presenting the configured hash gets nowhere.
      expect(yield* outcome(identifier, request({ headers: { "x-api-key": hashApiKey(CI_KEY) } }))).toBe("refused: unknown API key")
    }))

  it.effect("takes keys from the environment in the list form", () =>
    Effect.gen(function*() {
      const identifier = yield* identifierOf(apiKeys({ keys: [{ key: env("CI_KEY_VAR"), login: "ci", tags: ["ci"] }] }), { CI_KEY_VAR: ENV_KEY })
      expect(yield* outcome(identifier, request({ headers: { "x-api-key": ENV_KEY } }))).toBe("ci")
    }))

  it.effect("reports bad keys with paths that never show the key", () =>
    Effect.gen(function*() {
      const issues = yield* issuesOf([
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
    }))

  it.effect("takes a short key, with a warning that names its holder and never the key", () =>
    Effect.gen(function*() {
      const short = "tooshort-31d2"
      const logged: Array<string> = []
      const identifier = yield* Schema.decodeUnknown(IdentityPluginSchema)(apiKeys({ keys: { [short]: { login: "dana" }, [ALICE_KEY]: { login: "alice" } } })).pipe(
        Effect.flatMap((resolved) => Effect.scoped(resolved.spec.make(resolved.options))),
        Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => logged.push(String(message)))))
      )
      expect(yield* outcome(identifier, request({ headers: { "x-api-key": short } }))).toBe("dana")
      expect(logged.join("\n")).toMatch(/the key of dana is shorter than 16 characters/)
      expect(logged.join("\n")).not.toContain(short)
      expect(logged.join("\n")).not.toContain("alice")
    }))
})
