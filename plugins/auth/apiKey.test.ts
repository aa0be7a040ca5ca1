/** The built-in `apiKey` auth plugin: where the key goes, its JSON form, its option checks (end to end: test/authPlugins.test.ts). */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { decodeApertureJson } from "../../src/Aperture.js"
import { authorizationOf } from "../../test/helpers/authPlugins.js"
import { apiKey } from "./apiKey.js"

describe("apiKey", () => {
  it.effect("puts the key in the named header (lower-cased) or query parameter (as written), nowhere else", () =>
    Effect.gen(function*() {
      expect(yield* authorizationOf(apiKey({ secret: "k1", name: "X-Api-Key", in: "header" }))).toEqual({ headers: { "x-api-key": "k1" } })
      expect(yield* authorizationOf(apiKey({ secret: "k2", name: "api_Key", in: "query" }))).toEqual({ query: { api_Key: "k2" } })
    }))

  it.effect("is the JSON config's api_key, and its name and location are checked at their JSON paths", () =>
    Effect.gen(function*() {
      const json = (auth: unknown) =>
        Effect.either(decodeApertureJson({ connectors: { servers: { x: { protocol: "http", url: "https://api.example.com", auth } } } }, undefined))
      const ok = yield* json({ type: "api_key", secret: "k", name: "X-Key", in: "header" })
      expect(Either.getOrThrow(ok).describe.auth["x"]).toBe("apiKey (header X-Key, secret: inline <redacted>)")
      const bad = yield* json({ type: "api_key", secret: "k", name: "bad name", in: "body" })
      expect(Either.isLeft(bad) && bad.left.issues.map((i) => `${i.path}: ${i.message}`)).toEqual(expect.arrayContaining([
        "connectors.servers.x.auth.in: expected \"header\" or \"query\""
      ]))
    }))
})
