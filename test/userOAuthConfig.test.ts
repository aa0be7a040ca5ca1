/**
 * Per-user OAuth in the config: `userOAuth(…)` / `userOAuth.dynamic(…)` and the original's
 * `oauth2_authorization_code` / `oauth2_dcr` blocks decode to the model; every mistake is reported
 * at its path; `server.publicUrl` and `server.stateDir`; `secretKey` required; `aperture check`
 * shows no secret.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Redacted } from "effect"
import { builtInPlugins } from "../plugins/builtIns.js"
import { checkReport } from "../src/cli/checkReport.js"
import { decodeConfig } from "../src/config/decode.js"
import { grant, http, mcp, stdio, userOAuth } from "../src/config/dsl.js"
import { decodeApertureJson } from "../src/config/json.js"
import type { ApertureConfig, McpConnector } from "../src/config/model.js"
import { env } from "../src/config/secret.js"
import { userOAuthAuthType } from "../src/config/userOAuth.js"
import { bearer } from "../src/index.js"
import { repoRoot } from "./helpers/processes.js"

const KEY = "k".repeat(32)
const CLIENT_SECRET = "cs-3f9a1c7e5d2b"
const vars = { GH_SECRET: CLIENT_SECRET, APERTURE_SECRET_KEY: KEY }
const withEnv = Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars))))

const dsl = (input: unknown, source?: string) =>
  decodeConfig(input, { plugins: builtInPlugins, source }).pipe(withEnv, Effect.either)
const json = (input: unknown, source?: string) => decodeApertureJson(input, source, builtInPlugins).pipe(withEnv, Effect.either)

const valid = (result: Either.Either<ApertureConfig, { readonly message: string }>): ApertureConfig => {
  if (Either.isLeft(result)) throw new Error(result.left.message)
  return result.right
}
const issues = (result: Either.Either<ApertureConfig, { readonly issues: ReadonlyArray<{ path: string; message: string }> }>) => {
  if (Either.isRight(result)) throw new Error("expected the config to be invalid")
  return result.left.issues.map((i) => `${i.path}: ${i.message}`)
}
const mcpNamed = (config: ApertureConfig, id: string) => config.connectors.find((c) => c.id === id) as McpConnector

const github = userOAuth({
  clientId: "Iv1.abc",
  clientSecret: env("GH_SECRET"),
  authorizationUrl: "https://github.com/login/oauth/authorize",
  tokenUrl: "https://github.com/login/oauth/access_token",
  scopes: ["repo", "read:org"]
})

describe("userOAuth in the TS DSL", () => {
  it.effect("userOAuth(…) decodes to authorization-code settings: secret redacted, URLs parsed, isolation caller", () =>
    Effect.gen(function*() {
      const config = valid(yield* dsl({
        connectors: { github: mcp({ url: "https://api.githubcopilot.com/mcp/", auth: github }) },
        secretKey: env("APERTURE_SECRET_KEY")
      }))
      const c = mcpNamed(config, "github")
      expect(c.auth).toBeUndefined()
      expect(c.isolation).toBe("caller")
      const u = c.userAuth
      if (u?.kind !== "authorization_code") throw new Error(`expected authorization_code, got ${u?.kind}`)
      expect(u.clientId).toBe("Iv1.abc")
      expect(Redacted.isRedacted(u.clientSecret)).toBe(true)
      expect(Redacted.value(u.clientSecret!)).toBe(CLIENT_SECRET)
      expect(u.authorizationUrl.href).toBe("https://github.com/login/oauth/authorize")
      expect(u.tokenUrl.href).toBe("https://github.com/login/oauth/access_token")
      expect(u.scopes).toEqual(["repo", "read:org"])
      expect(u.audience).toBeUndefined()
      expect(u.resource).toBeUndefined()
      expect(userOAuthAuthType(u)).toBe("oauth2_authorization_code")
      expect(config.describe.auth["github"]).toBe(
        "per-user OAuth (authorization code + PKCE) client Iv1.abc at github.com, scopes repo read:org, secret: env GH_SECRET"
      )
      expect(JSON.stringify(config.describe)).not.toContain(CLIENT_SECRET)
    }))

  it.effect("a public client (no secret) with audience and resource; userOAuth.dynamic() with and without scopes", () =>
    Effect.gen(function*() {
      const config = valid(yield* dsl({
        connectors: {
          pub: mcp({
            url: "http://127.0.0.1:9/mcp",
            auth: userOAuth({
              clientId: "public-app",
              authorizationUrl: "http://localhost:4000/auth",
              tokenUrl: "http://127.0.0.1:4000/token",
              audience: "api://mcp",
              resource: "https://mcp.example.com/"
            })
          }),
          atlassian: mcp({ url: "https://mcp.atlassian.com/v1/sse", auth: userOAuth.dynamic() }),
          linear: mcp({ url: "https://mcp.linear.app/mcp", auth: userOAuth.dynamic({ scopes: ["read"] }) })
        },
        secretKey: KEY
      }))
      const pub = mcpNamed(config, "pub").userAuth
      expect(pub).toMatchObject({ kind: "authorization_code", clientId: "public-app", clientSecret: undefined, scopes: [], audience: "api://mcp", resource: "https://mcp.example.com/" })
      expect(config.describe.auth["pub"]).toBe("per-user OAuth (authorization code + PKCE) client public-app at localhost:4000, public client")
      expect(mcpNamed(config, "atlassian").userAuth).toEqual({ kind: "dynamic", scopes: [] })
      expect(mcpNamed(config, "linear").userAuth).toEqual({ kind: "dynamic", scopes: ["read"] })
      expect(userOAuthAuthType(mcpNamed(config, "linear").userAuth!)).toBe("oauth2_dcr")
      expect(config.describe.auth["atlassian"]).toBe("per-user OAuth (dynamic registration)")
      expect(config.describe.auth["linear"]).toBe("per-user OAuth (dynamic registration), scopes read")
    }))

  it.effect("shared-credential connectors keep userAuth undefined", () =>
    Effect.gen(function*() {
      const config = valid(yield* dsl({ connectors: { a: mcp({ url: "https://a.example.com/mcp", auth: bearer({ secret: "t" }) }) } }))
      expect(mcpNamed(config, "a").userAuth).toBeUndefined()
      expect(mcpNamed(config, "a").auth).toBeDefined()
    }))

  it.effect("missing and malformed fields are reported at their paths", () =>
    Effect.gen(function*() {
      const found = issues(yield* dsl({
        connectors: {
          a: mcp({ url: "https://a.example.com/mcp", auth: { _tag: "userOAuth" } as never }),
          b: mcp({
            url: "https://b.example.com/mcp",
            auth: userOAuth({ clientId: "c", authorizationUrl: "http://idp.example.com/auth", tokenUrl: "ftp://idp.example.com/token", resource: "https://r.example.com/#x" })
          }),
          c: mcp({ url: "https://c.example.com/mcp", auth: { ...userOAuth.dynamic(), clientId: "x" } as never }),
          d: mcp({ url: "https://d.example.com/mcp", auth: userOAuth({ clientId: "c", clientSecret: env("NOPE"), authorizationUrl: "https://i.example.com/a#frag", tokenUrl: "https://u:p@i.example.com/t" }) })
        },
        secretKey: KEY
      }))
      expect(found).toEqual(expect.arrayContaining([
        "connectors.a.auth.clientId: is required",
        "connectors.a.auth.authorizationUrl: is required",
        "connectors.a.auth.tokenUrl: is required",
        "connectors.b.auth.authorizationUrl: plain http is allowed only to localhost; use https",
        "connectors.b.auth.tokenUrl: unsupported scheme \"ftp:\"; expected https",
        "connectors.b.auth.resource: must not contain a fragment (RFC 8707)",
        expect.stringMatching(/^connectors\.c\.auth\.clientId: unexpected field/),
        "connectors.d.auth.clientSecret: environment variable NOPE is not set",
        "connectors.d.auth.authorizationUrl: must not contain a fragment",
        "connectors.d.auth.tokenUrl: credentials in the URL are not allowed; use clientSecret"
      ]))
      expect(found.join("\n")).not.toContain("u:p@")
    }))

  it.effect("secretKey is required with a per-user connector, naming why", () =>
    Effect.gen(function*() {
      const found = issues(yield* dsl({ connectors: { github: mcp({ url: "https://x.example.com/mcp", auth: github }), jira: mcp({ auth: userOAuth.dynamic() }) } }))
      expect(found).toEqual([
        "secretKey: required with per-user OAuth (connectors github, jira): per-user tokens are stored encrypted; set secretKey: env(\"APERTURE_SECRET_KEY\")"
      ])
    }))

  it.effect("isolation: \"shared\" with per-user OAuth is refused at its path; \"caller\" is accepted", () =>
    Effect.gen(function*() {
      const found = issues(yield* dsl({ connectors: { github: mcp({ url: "https://x.example.com/mcp", auth: github, isolation: "shared" }) }, secretKey: KEY }))
      expect(found).toEqual([
        "connectors.github.isolation: must be \"caller\" (or left out) with per-user OAuth: per-user OAuth connectors give each user their own upstream session"
      ])
      const ok = valid(yield* dsl({ connectors: { github: mcp({ url: "https://x.example.com/mcp", auth: github, isolation: "caller" }) }, secretKey: KEY }))
      expect(mcpNamed(ok, "github").isolation).toBe("caller")
    }))

  it.effect("http() and stdio() connectors refuse per-user OAuth at their auth path", () =>
    Effect.gen(function*() {
      const found = issues(yield* dsl({
        connectors: {
          api: http({ url: "https://api.example.com", auth: github as never }),
          local: stdio({ command: "node", auth: userOAuth.dynamic() } as never)
        },
        secretKey: KEY
      }))
      expect(found).toEqual([
        "connectors.api.auth: per-user OAuth is for MCP connectors (mcp({ url, auth: userOAuth(…) })), not http() ones",
        "connectors.local.auth: per-user OAuth is for MCP connectors (mcp({ url, auth: userOAuth.dynamic(…) })), not stdio() ones"
      ])
    }))
})

describe("server.publicUrl and server.stateDir", () => {
  it.effect("publicUrl is an http(s) origin; a path, query, credentials or other scheme is refused", () =>
    Effect.gen(function*() {
      const ok = valid(yield* dsl({ server: { publicUrl: "https://gw.example.com/" } }))
      expect(ok.server.publicUrl?.href).toBe("https://gw.example.com/")
      expect(valid(yield* dsl({ server: { publicUrl: "http://localhost:8080" } })).server.publicUrl?.origin).toBe("http://localhost:8080")
      expect(valid(yield* dsl({})).server.publicUrl).toBeUndefined()
      for (const [publicUrl, message] of [
        ["https://gw.example.com/aperture", "expected an origin only (such as https://gw.example.com): redirect URIs are <origin>/aperture/auth/<connector id>/callback"],
        ["https://gw.example.com/?x=1", "expected an origin only (such as https://gw.example.com): redirect URIs are <origin>/aperture/auth/<connector id>/callback"],
        ["ftp://gw.example.com", "unsupported scheme \"ftp:\"; expected http or https"],
        ["https://u:pw@gw.example.com", "credentials in the URL are not allowed"],
        ["gw.example.com", "not a valid URL: \"gw.example.com\" (expected an origin such as https://gw.example.com)"]
      ] as const) {
        expect(issues(yield* dsl({ server: { publicUrl } }))).toEqual([`server.publicUrl: ${message}`])
      }
    }))

  it.effect("stateDir defaults to .aperture beside the config file (or the working directory), and resolves relative to it", () =>
    Effect.gen(function*() {
      expect(valid(yield* dsl({}, "/srv/gw/aperture.config.ts")).server.stateDir).toBe("/srv/gw/.aperture")
      expect(valid(yield* dsl({})).server.stateDir).toBe(path.resolve(process.cwd(), ".aperture"))
      expect(valid(yield* dsl({ server: { stateDir: "state" } }, "/srv/gw/aperture.config.ts")).server.stateDir).toBe("/srv/gw/state")
      expect(valid(yield* dsl({ server: { stateDir: "/var/lib/aperture" } }, "/srv/gw/aperture.config.ts")).server.stateDir).toBe("/var/lib/aperture")
      expect(issues(yield* dsl({ server: { stateDir: "" } }))).toEqual([expect.stringMatching(/^server\.stateDir: /)])
    }))
})

describe("the original's JSON: oauth2_authorization_code and oauth2_dcr", () => {
  const server = (auth: unknown, protocol = "mcp") => ({
    connectors: { servers: { github: { protocol, url: "https://api.githubcopilot.com/mcp/", auth } } },
    secret_key: { env: "APERTURE_SECRET_KEY" }
  })

  it.effect("oauth2_authorization_code decodes to the same settings as userOAuth(…), scopes as array or string", () =>
    Effect.gen(function*() {
      const config = valid(yield* json({
        ...server({
          type: "oauth2_authorization_code",
          client_id: "Iv1.abc",
          client_secret: { env: "GH_SECRET" },
          auth_url: "https://github.com/login/oauth/authorize",
          token_url: "https://github.com/login/oauth/access_token",
          scopes: "repo  read:org",
          audience: "api",
          resource: "https://api.githubcopilot.com/mcp/"
        }),
        server: { publicUrl: "https://gw.example.com", stateDir: "/var/lib/aperture" }
      }))
      const c = mcpNamed(config, "github")
      expect(c.userAuth).toMatchObject({
        kind: "authorization_code",
        clientId: "Iv1.abc",
        scopes: ["repo", "read:org"],
        audience: "api",
        resource: "https://api.githubcopilot.com/mcp/"
      })
      if (c.userAuth?.kind !== "authorization_code") throw new Error("expected authorization_code")
      expect(Redacted.value(c.userAuth.clientSecret!)).toBe(CLIENT_SECRET)
      expect(c.userAuth.authorizationUrl.host).toBe("github.com")
      expect(c.isolation).toBe("caller")
      expect(config.server.publicUrl?.origin).toBe("https://gw.example.com")
      expect(config.server.stateDir).toBe("/var/lib/aperture")
    }))

  it.effect("oauth2_dcr decodes to dynamic registration, with and without scopes", () =>
    Effect.gen(function*() {
      expect(mcpNamed(valid(yield* json(server({ type: "oauth2_dcr" }))), "github").userAuth).toEqual({ kind: "dynamic", scopes: [] })
      expect(mcpNamed(valid(yield* json(server({ type: "oauth2_dcr", scopes: ["a", "b"] }))), "github").userAuth)
        .toEqual({ kind: "dynamic", scopes: ["a", "b"] })
    }))

  it.effect("unknown and missing fields, bad URLs and secrets are reported at their JSON paths", () =>
    Effect.gen(function*() {
      const at = "connectors.servers.github.auth"
      expect(issues(yield* json(server({ type: "oauth2_dcr", client_id: "x" })))).toEqual([`${at}.client_id: unexpected field`])
      expect(issues(yield* json(server({ type: "oauth2_authorization_code", client_id: "c", auth_url: "https://i.example.com/a", token_url: "https://i.example.com/t", secert: "x" }))))
        .toEqual([`${at}.secert: unexpected field`])
      expect(issues(yield* json(server({ type: "oauth2_authorization_code" })))).toEqual([
        `${at}.client_id: is required`,
        `${at}.auth_url: is required`,
        `${at}.token_url: is required`
      ])
      expect(issues(yield* json(server({ type: "oauth2_authorization_code", client_id: "c", client_secret: 5, auth_url: "http://idp.example.com/a", token_url: "https://i.example.com/t" }))))
        .toEqual([`${at}.client_secret: expected a non-empty string or { "env": "NAME" }`])
      expect(issues(yield* json(server({ type: "oauth2_authorization_code", client_id: "c", auth_url: "http://idp.example.com/a", token_url: "nope" })))).toEqual([
        `${at}.auth_url: plain http is allowed only to localhost; use https`,
        `${at}.token_url: not a valid URL: "nope"`
      ])
    }))

  it.effect("secret_key is required, http connectors and isolation \"shared\" are refused, at JSON paths", () =>
    Effect.gen(function*() {
      const { secret_key: _, ...withoutKey } = server({ type: "oauth2_dcr" })
      expect(issues(yield* json(withoutKey))).toEqual([
        "secret_key: required with per-user OAuth (connector github): per-user tokens are stored encrypted; set \"secret_key\": { \"env\": \"APERTURE_SECRET_KEY\" }"
      ])
      expect(issues(yield* json(server({ type: "oauth2_dcr" }, "http")))).toEqual([
        "connectors.servers.github.auth: per-user OAuth is for MCP connectors (mcp({ url, auth: userOAuth.dynamic(…) })), not http() ones"
      ])
      const shared = server({ type: "oauth2_dcr" })
      ;(shared.connectors.servers.github as Record<string, unknown>)["isolation"] = "shared"
      expect(issues(yield* json(shared))).toEqual([
        "connectors.servers.github.isolation: must be \"caller\" (or left out) with per-user OAuth: per-user OAuth connectors give each user their own upstream session"
      ])
    }))
})

describe("aperture check", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "aperture-useroauth-"))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it.effect("the report names the client, provider host, redirect URI and state dir, never the client secret", () =>
    Effect.gen(function*() {
      const config = valid(yield* dsl({
        server: { publicUrl: "https://gw.example.com" },
        connectors: { github: mcp({ url: "https://x.example.com/mcp", auth: userOAuth({ ...github, clientSecret: CLIENT_SECRET }) }) },
        grants: [grant({ src: ["*"], connectors: ["github/**"] })],
        secretKey: KEY
      }, path.join(dir, "aperture.config.ts")))
      const report = checkReport(config)
      expect(report).toContain("public url: https://gw.example.com")
      expect(report).toContain(`state dir: ${path.join(dir, ".aperture")}`)
      expect(report).toContain("auth: per-user OAuth (authorization code + PKCE) client Iv1.abc at github.com, scopes repo read:org, secret: inline <redacted>")
      expect(report).toContain("redirect uri: https://gw.example.com/aperture/auth/github/callback")
      expect(report).toContain("isolation: caller (per-user OAuth")
      expect(report).not.toContain(CLIENT_SECRET)
      expect(report).not.toContain(KEY)
    }))

  it("the CLI on a config file with both per-user types prints no secret", () => {
    const config = path.join(dir, "peruser.config.ts")
    writeFileSync(config, `
      import { defineConfig, mcp, userOAuth, env, grant } from "aperture"
      export default defineConfig({
        connectors: {
          github: mcp({ url: "https://x.example.com/mcp", auth: userOAuth({ clientId: "Iv1.abc", clientSecret: "${CLIENT_SECRET}",
            authorizationUrl: "https://github.com/login/oauth/authorize", tokenUrl: "https://github.com/login/oauth/access_token" }) }),
          jira: mcp({ url: "https://mcp.atlassian.com/v1/sse", auth: userOAuth.dynamic() }),
        },
        grants: [grant({ src: ["local"], connectors: ["github/**", "jira/**"] })],
        secretKey: env("APERTURE_SECRET_KEY"),
      })`)
    const result = spawnSync(process.execPath, [path.join(repoRoot, "bin/aperture.js"), "check", "--config", config], {
      env: { ...process.env, APERTURE_SECRET_KEY: KEY },
      encoding: "utf8",
      timeout: 30_000
    })
    const output = result.stdout + result.stderr
    expect(output).toContain("per-user OAuth (authorization code + PKCE) client Iv1.abc at github.com, secret: inline <redacted>")
    expect(output).toContain("per-user OAuth (dynamic registration)")
    expect(output).toContain("redirect uri: <public origin>/aperture/auth/jira/callback")
    expect(output).not.toContain(CLIENT_SECRET)
    expect(output).not.toContain(KEY)
    expect(result.status).toBe(0)
  })
})
