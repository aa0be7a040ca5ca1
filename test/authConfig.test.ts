/**
 * Auth blocks in both config shapes: every option of every built-in, unknown fields as errors
 * naming the field, the JSON spelling in JSON paths, and descriptions that never hold a secret.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Redacted } from "effect"
import { mcp } from "../src/config/dsl.js"
import { decodeApertureJson, decodeConfig } from "../src/Aperture.js"
import type { ApertureConfig } from "../src/config/model.js"
import { env } from "../src/config/secret.js"
import { apiKey, basic, bearer, clientCredentials } from "../src/index.js"
import { checkReport } from "../src/cli/checkReport.js"

const withEnv = (vars: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars))))

const run = (effect: Effect.Effect<ApertureConfig, { issues: ReadonlyArray<{ path: string; message: string }> }>, vars: Record<string, string> = {}) =>
  effect.pipe(
    withEnv(vars),
    Effect.either,
    Effect.map((result) =>
      Either.isLeft(result)
        ? { issues: result.left.issues.map((i) => `${i.path}: ${i.message}`) }
        : { config: result.right }
    )
  )

const dsl = (auth: unknown, vars: Record<string, string> = {}) =>
  run(decodeConfig({ connectors: { x: mcp({ url: "https://mcp.example.com/mcp", auth: auth as never }) } }), vars)

const json = (auth: unknown, vars: Record<string, string> = {}) =>
  run(decodeApertureJson({ connectors: { servers: { x: { protocol: "mcp", url: "https://mcp.example.com/mcp", auth } } } }, undefined), vars)

const optionsOf = (config: ApertureConfig | undefined) => {
  const connector = config?.connectors[0]
  if (connector === undefined || connector.kind === "stdio") throw new Error("no connector")
  const reveal = (value: unknown): unknown =>
    Redacted.isRedacted(value)
      ? `<${Redacted.value(value)}>`
      : Array.isArray(value)
      ? value.map(reveal)
      : typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype
      ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reveal(v)]))
      : value
  return reveal(connector.auth?.options) as Record<string, unknown>
}

describe("the TS DSL", () => {
  it.effect("takes every clientCredentials option", () =>
    Effect.gen(function*() {
      const { config, issues } = yield* dsl(clientCredentials({
        tokenUrl: "https://auth.example.com/token",
        clientId: "c",
        clientSecret: env("CS"),
        scopes: ["a", "b"],
        audience: "https://api.example.com",
        resource: "https://mcp.example.com/mcp",
        authMethod: "client_secret_post",
        issuer: "https://auth.example.com",
        defaultLifetime: "15 minutes"
      }), { CS: "s3cret" })
      expect(issues).toBeUndefined()
      expect(optionsOf(config)).toMatchObject({ clientSecret: "<s3cret>", scopes: ["a", "b"], authMethod: "client_secret_post" })
    }))

  it.effect("reports unknown fields and missing requirements by name", () =>
    Effect.gen(function*() {
      expect((yield* dsl(bearer({ secert: "x" } as never))).issues).toEqual([
        "connectors.x.auth.secert: unexpected field (expected one of: secret)",
        "connectors.x.auth.secret: is required"
      ])
      expect((yield* dsl(clientCredentials({ clientId: "c", authMethod: "private_key_jwt", clientSecret: "s" }))).issues).toEqual([
        "connectors.x.auth.privateKey: is required for authMethod \"private_key_jwt\""
      ])
      expect((yield* dsl(clientCredentials({ clientId: "c", tokenUrl: "http://auth.example.com/token", clientSecret: "s" }))).issues).toEqual([
        "connectors.x.auth.tokenUrl: plain http is allowed only to localhost; use https"
      ])
      expect((yield* dsl(apiKey({ secret: "k", name: "bad name", in: "cookie" } as never))).issues).toEqual([
        "connectors.x.auth.name: must be a valid header or query parameter name",
        "connectors.x.auth.in: expected \"header\" or \"query\""
      ])
      expect((yield* dsl(basic({ username: "a:b", password: "p" }))).issues).toEqual([
        "connectors.x.auth.username: must not contain \":\" (RFC 7617)"
      ])
    }))
})

describe("the Aperture JSON shape", () => {
  it.effect("maps bearer_token, api_key (header and query), basic and oauth2_client_credentials", () =>
    Effect.gen(function*() {
      expect(optionsOf((yield* json({ type: "bearer_token", secret: "t" })).config)).toEqual({ secret: "<t>" })
      expect(optionsOf((yield* json({ type: "api_key", secret: "k", name: "key", in: "query" })).config)).toEqual({ secret: "<k>", name: "key", in: "query" })
      expect(optionsOf((yield* json({ type: "basic", username: "u", password: { env: "P" } }, { P: "pw" })).config)).toEqual({ username: "u", password: "<pw>" })
      expect(optionsOf((yield* json({
        type: "oauth2_client_credentials",
        client_id: "c",
        client_secret: "s",
        token_url: "https://auth.example.com/token",
        scopes: "read write",
        audience: "api",
        resource: "https://mcp.example.com/mcp",
        auth_method: "client_secret_basic",
        issuer: "https://auth.example.com",
        default_lifetime: 600000
      })).config)).toMatchObject({
        clientId: "c",
        clientSecret: "<s>",
        tokenUrl: "https://auth.example.com/token",
        scopes: ["read", "write"],
        audience: "api",
        resource: "https://mcp.example.com/mcp",
        issuer: "https://auth.example.com"
      })
    }))

  it.effect("rejects unknown fields in every auth type, naming the field", () =>
    Effect.gen(function*() {
      for (const auth of [
        { type: "bearer_token", secret: "t", secert: "x" },
        { type: "api_key", secret: "k", name: "key", in: "header", secert: "x" },
        { type: "basic", username: "u", password: "p", secert: "x" },
        { type: "oauth2_client_credentials", client_id: "c", client_secret: "s", token_url: "https://a.example.com/t", secert: "x" }
      ]) {
        expect((yield* json(auth)).issues).toEqual(["connectors.servers.x.auth.secert: unexpected field"])
      }
    }))

  it.effect("names JSON fields as written when the plugin rejects a value", () =>
    Effect.gen(function*() {
      expect((yield* json({ type: "oauth2_client_credentials", client_id: "c", client_secret: "s", token_url: "not a url" })).issues).toEqual([
        "connectors.servers.x.auth.token_url: not a valid URL: \"not a url\""
      ])
      expect((yield* json({ type: "oauth2_client_credentials", client_id: "c", auth_method: "private_key_jwt" })).issues).toEqual([
        "connectors.servers.x.auth.private_key: is required for authMethod \"private_key_jwt\""
      ])
    }))
})

describe("aperture check", () => {
  it.effect("describes each credential without its secret", () =>
    Effect.gen(function*() {
      const secrets = ["bearer-SECRET-1", "key-SECRET-2", "pw-SECRET-3", "client-SECRET-4", "-----BEGIN PRIVATE KEY-----SECRET-5"]
      const { config } = yield* run(decodeConfig({
        connectors: {
          a: mcp({ url: "https://a.example.com/mcp", auth: bearer({ secret: secrets[0]! }) }),
          b: mcp({ url: "https://b.example.com/mcp", auth: apiKey({ secret: env("KEY"), name: "X-Key", in: "header" }) }),
          c: mcp({ url: "https://c.example.com/mcp", auth: basic({ username: "u", password: secrets[2]! }) }),
          d: mcp({ url: "https://d.example.com/mcp", auth: clientCredentials({ clientId: "cid", clientSecret: secrets[3]!, scopes: ["r"] }) }),
          e: mcp({ url: "https://e.example.com/mcp", auth: clientCredentials({ clientId: "cid", authMethod: "private_key_jwt", privateKey: secrets[4]! }) })
        }
      }), { KEY: secrets[1]! })
      const report = checkReport(config!)
      expect(report).toContain("auth: bearer (secret: inline <redacted>)")
      expect(report).toContain("auth: apiKey (header X-Key, secret: env KEY)")
      expect(report).toContain("auth: clientCredentials (client cid, client_secret_basic, token endpoint discovered, scopes r, secret: inline <redacted>)")
      for (const secret of secrets) expect(report).not.toContain(secret)
    }))
})
