/**
 * Config decoding: the DSL and the original's JSON shape, every error class with its path.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Either, Redacted } from "effect"
import { ConfigInvalid } from "../src/config/decode.js"
import { grant, http, mcp, stdio } from "../src/config/dsl.js"
import { decodeApertureJson, decodeConfig } from "../src/Aperture.js"
import { parseJsonc } from "../src/config/jsonc.js"
import { checkReport } from "../src/cli/checkReport.js"
import type { ApertureConfig } from "../src/config/model.js"
import { env } from "../src/config/secret.js"
import { bearer, clientCredentials, loopback } from "../src/index.js"

const withEnv = (vars: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars))))

const decode = (input: unknown, vars: Record<string, string> = {}) =>
  decodeConfig(input).pipe(withEnv(vars), Effect.either)

const issuesOf = (input: unknown, vars: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const result = yield* decode(input, vars)
    if (Either.isRight(result)) throw new Error("expected the config to be invalid")
    return result.left.issues.map((i) => `${i.path}: ${i.message}`)
  })

const valid = (input: unknown, vars: Record<string, string> = {}): Effect.Effect<ApertureConfig> =>
  Effect.gen(function*() {
    const result = yield* decode(input, vars)
    if (Either.isLeft(result)) throw new Error(result.left.message)
    return result.right
  })

describe("the TS DSL", () => {
  it.effect("decodes the DESIGN example with defaults applied and secrets redacted", () =>
    Effect.gen(function*() {
      const config = yield* valid({
        server: { host: "127.0.0.1", port: 8080 },
        connectors: {
          snowflake: mcp({ url: "https://mcp.example.com/v1/mcp", auth: bearer({ secret: env("SNOWFLAKE_TOKEN") }) }),
          analytics: mcp({
            url: "https://analytics.example.com/v1/mcp",
            auth: clientCredentials({
              clientId: "aperture-analytics",
              clientSecret: env("ANALYTICS_SECRET"),
              tokenUrl: "https://auth.example.com/oauth2/token",
              scopes: ["read:data"]
            })
          }),
          everything: stdio({ command: "npx", args: ["@modelcontextprotocol/server-everything"] }),
          github: http({ url: "https://api.github.com", auth: bearer({ secret: env("GH_TOKEN") }) })
        },
        identity: [loopback({ login: "local" })],
        grants: [
          grant({ src: ["local"], connectors: ["**"] }),
          grant({ src: ["group:analysts"], connectors: ["analytics/tools/*", "snowflake/resources/**"] })
        ]
      }, { SNOWFLAKE_TOKEN: "sf-secret-1", ANALYTICS_SECRET: "an-secret-2", GH_TOKEN: "gh-secret-3" })
      expect(config.connectors.map((c) => `${c.id}:${c.kind}`)).toEqual([
        "snowflake:mcp",
        "analytics:mcp",
        "everything:stdio",
        "github:http"
      ])
      const snowflake = config.connectors[0]!
      expect(snowflake.kind === "mcp" && snowflake.prefix).toBe(true)
      expect(Duration.toMillis(snowflake.timeout)).toBe(60_000)
      const options = snowflake.kind === "mcp" ? snowflake.auth?.options as { secret: Redacted.Redacted<string> } : undefined
      expect(Redacted.isRedacted(options?.secret)).toBe(true)
      expect(Redacted.value(options!.secret)).toBe("sf-secret-1")
      expect(String(options!.secret)).not.toContain("sf-secret-1")
      const github = config.connectors[3]!
      expect(github.kind === "http" && github.methods).toEqual(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
      expect(config.grants).toHaveLength(2)
      expect(config.warnings).toEqual([])
      // Nothing in the decoded config prints a secret.
      expect(JSON.stringify(config)).not.toMatch(/sf-secret-1|an-secret-2|gh-secret-3/)
    }))

  it.effect("defaults identity to loopback({ login: \"local\" }) and listens on 127.0.0.1:8080", () =>
    Effect.gen(function*() {
      const config = yield* valid({ connectors: {} })
      expect(config.server).toMatchObject({ host: "127.0.0.1", port: 8080 })
      expect(config.identity.map((i) => i.spec.name)).toEqual(["loopback"])
      expect(config.identity[0]!.options).toEqual({ login: "local", groups: [] })
    }))

  it.effect("reports every problem in one run, each with its path", () =>
    Effect.gen(function*() {
      const issues = yield* issuesOf({
        connectors: {
          "my-db": mcp({ url: "https://db.example.com/mcp" }),
          "under_score": mcp({ url: "https://x.example.com/mcp" }),
          aperture: mcp({ url: "https://x.example.com/mcp" }),
          github: http({ url: "https://api.github.com", auth: bearer({ secert: "x" } as never) }),
          bad: mcp({ url: "ftp://files.example.com", timeout: -5 }),
          noenv: mcp({ url: "https://x.example.com/mcp", auth: bearer({ secret: env("NOT_SET_ANYWHERE") }) }),
          creds: mcp({ url: "https://user:pw@x.example.com/mcp" }),
          proc: stdio({ command: "", args: [1 as never] }),
          notaconnector: { url: "https://x" } as never,
          labelled: mcp({ url: "https://x.example.com/mcp", labels: ["system", "bad label"] })
        },
        grants: [
          grant({ src: ["local"], connectors: ["github/tool/*", "github", "label:", "a/**b", "github/tools"] }),
          grant({ src: [], connectors: [] }),
          { src: ["bad user"], connectors: ["**"], extra: true } as never
        ],
        identity: [{ name: "not a plugin" } as never],
        sever: {}
      } as never)
      expect(issues).toEqual(expect.arrayContaining([
        "sever: unexpected field (expected one of: server, connectors, identity, grants, audit, cluster, secretKey, telemetry)",
        expect.stringMatching(/^connectors\.my-db: connector ID must match \^\[A-Za-z\]\[A-Za-z0-9\]\*\$/),
        expect.stringMatching(/^connectors\.under_score: connector ID must match/),
        "connectors.aperture: connector ID \"aperture\" is reserved",
        "connectors.github.auth.secert: unexpected field (expected one of: secret)",
        "connectors.github.auth.secret: is required",
        "connectors.bad.url: unsupported scheme \"ftp:\"; expected http, https, ws, wss",
        expect.stringMatching(/^connectors\.bad\.timeout: expected a positive number of milliseconds/),
        "connectors.noenv.auth.secret: environment variable NOT_SET_ANYWHERE is not set",
        expect.stringMatching(/^connectors\.creds\.url: credentials in the URL are not allowed/),
        "connectors.proc.command: expected a non-empty command",
        expect.stringMatching(/^connectors\.proc\.args\.0: expected string/),
        expect.stringMatching(/^connectors\.notaconnector: expected a connector made with mcp/),
        expect.stringMatching(/^connectors\.labelled\.labels\.0: label "system" is reserved/),
        expect.stringMatching(/^connectors\.labelled\.labels\.1: labels are letters/),
        expect.stringMatching(/^grants\.0\.connectors\.0: unknown category "tool"/),
        expect.stringMatching(/^grants\.0\.connectors\.1: expected connectorID\/category\/name; did you mean "github\/\*\*"\?/),
        expect.stringMatching(/^grants\.0\.connectors\.2: invalid label/),
        expect.stringMatching(/^grants\.0\.connectors\.3: "\*\*" must be a whole segment/),
        expect.stringMatching(/^grants\.0\.connectors\.4: missing name after the category; did you mean "github\/tools\/\*"\?/),
        "grants.1.src: needs at least one src",
        "grants.2.extra: unexpected field (expected one of: src, connectors, role, readMetrics)",
        expect.stringMatching(/^grants\.2\.src\.0: invalid src "bad user"/),
        expect.stringMatching(/^identity\.0: expected an identity plugin/)
      ]))
    }))

  it.effect("never puts a secret in an error", () =>
    Effect.gen(function*() {
      const result = yield* decode({
        connectors: { a: mcp({ url: "https://user:hunter2-secret@x.example.com/mcp", auth: bearer({ secret: 42 as never }) }) }
      })
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) expect(result.left.message).not.toContain("hunter2-secret")
    }))

  it.effect("warns, without failing, about a connector without url and a grant naming no connector", () =>
    Effect.gen(function*() {
      const config = yield* valid({
        connectors: { nourl: mcp({}) },
        grants: [grant({ src: ["*"], connectors: ["nourl/**", "gihub/tools/*"] })]
      })
      expect(config.warnings.map((w) => `${w.path}: ${w.message}`)).toEqual([
        "connectors.nourl.url: no url configured; this connector stays down",
        "grants.0.connectors.1: no connector \"gihub\" is configured; \"gihub/tools/*\" matches nothing"
      ])
    }))

  it.effect("accepts durations as milliseconds or text, and prefix: false", () =>
    Effect.gen(function*() {
      const config = yield* valid({
        connectors: {
          a: mcp({ url: "https://a.example.com/mcp", timeout: 1500, prefix: false }),
          b: mcp({ url: "https://b.example.com/mcp", timeout: "2 minutes" })
        }
      })
      const [a, b] = config.connectors
      expect(a?.kind === "mcp" && a.prefix).toBe(false)
      expect(Duration.toMillis(a!.timeout)).toBe(1500)
      expect(Duration.toMillis(b!.timeout)).toBe(120_000)
    }))

  it.effect("isolates callers by default on mcp() and stdio(), and checks the setting", () =>
    Effect.gen(function*() {
      const config = yield* valid({
        connectors: {
          a: mcp({ url: "https://a.example.com/mcp" }),
          b: mcp({ url: "https://b.example.com/mcp", isolation: "shared" }),
          c: stdio({ command: "server" }),
          d: stdio({ command: "server", isolation: "caller" })
        }
      })
      expect(config.connectors.map((c) => c.kind !== "http" && c.isolation)).toEqual(["caller", "shared", "caller", "caller"])
      const issues = yield* issuesOf({ connectors: { e: mcp({ url: "https://e.example.com/mcp", isolation: "session" as never }) } })
      expect(issues).toEqual([expect.stringMatching(/^connectors\.e\.isolation: expected "caller" .* or "shared"/)])
    }))
})

const json = (value: unknown, vars: Record<string, string> = {}) =>
  decodeApertureJson(value, "aperture.json").pipe(withEnv(vars), Effect.either)

describe("the original's JSON shape", () => {
  // The two connector examples from the original's documentation.
  const original = {
    connectors: {
      servers: {
        snowflake: {
          protocol: "mcp",
          url: "https://snowflake.example.com/mcp",
          auth: { type: "bearer_token", secret: "sf-token" }
        },
        analytics: {
          protocol: "mcp",
          url: "https://analytics.example.com/v1/mcp",
          auth: {
            type: "oauth2_client_credentials",
            client_id: "aperture-analytics",
            client_secret: "s3cr3t",
            token_url: "https://auth.example.com/oauth2/token",
            scopes: ["read:data"]
          }
        }
      }
    },
    grants: [{
      src: ["group:ai-users"],
      app: { "tailscale.com/cap/aperture": [{ role: "user" }, { models: "anthropic/**" }, { connectors: ["snowflake/**", "analytics/tools/*"] }] }
    }]
  }

  it.effect("decodes the bearer_token and oauth2_client_credentials examples to the same internal config as the DSL", () =>
    Effect.gen(function*() {
      const fromJson = yield* json(original)
      if (Either.isLeft(fromJson)) throw new Error(fromJson.left.message)
      const fromDsl = yield* valid({
        connectors: {
          snowflake: mcp({ url: "https://snowflake.example.com/mcp", auth: bearer({ secret: "sf-token" }) }),
          analytics: mcp({
            url: "https://analytics.example.com/v1/mcp",
            auth: clientCredentials({
              clientId: "aperture-analytics",
              clientSecret: "s3cr3t",
              tokenUrl: "https://auth.example.com/oauth2/token",
              scopes: ["read:data"]
            })
          })
        },
        grants: [grant({ src: ["group:ai-users"], connectors: ["snowflake/**", "analytics/tools/*"] })]
      })
      const shape = (c: ApertureConfig) =>
        c.connectors.map((x) => ({
          id: x.id,
          kind: x.kind,
          url: x.kind === "stdio" ? undefined : x.url?.href,
          auth: x.kind === "stdio" ? undefined : x.auth?.spec.name,
          options: x.kind === "stdio" ? undefined : JSON.stringify(x.auth?.options, (_k, v) => Redacted.isRedacted(v) ? `R:${Redacted.value(v)}` : v)
        }))
      expect(shape(fromJson.right)).toEqual(shape(fromDsl))
      expect(fromJson.right.grants.map((g) => [g.src, g.connectors.map((p) => p.source)])).toEqual([
        [["group:ai-users"], ["snowflake/**", "analytics/tools/*"]]
      ])
    }))

  it.effect("fails on a typo in an auth block, naming the field", () =>
    Effect.gen(function*() {
      const result = yield* json({
        connectors: { servers: { snowflake: { protocol: "mcp", url: "https://s.example.com/mcp", auth: { type: "bearer_token", secert: "x" } } } }
      })
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) {
        expect(result.left.issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
          "connectors.servers.snowflake.auth.secert: unexpected field",
          "connectors.servers.snowflake.auth.secret: is required"
        ])
      }
    }))

  it.effect("takes isolation on an mcp server, checked as in the DSL", () =>
    Effect.gen(function*() {
      const ok = yield* json({ connectors: { servers: { a: { protocol: "mcp", url: "https://a/mcp", isolation: "shared" } } } })
      if (Either.isLeft(ok)) throw new Error(ok.left.message)
      expect(ok.right.connectors[0]?.kind === "mcp" && ok.right.connectors[0].isolation).toBe("shared")
      const bad = yield* json({ connectors: { servers: { a: { protocol: "mcp", url: "https://a/mcp", isolation: "nobody" } } } })
      if (Either.isRight(bad)) throw new Error("expected failure")
      expect(bad.left.issues.map((i) => i.path)).toEqual(["connectors.servers.a.isolation"])
    }))

  it.effect("reports pattern and field errors at their JSON paths", () =>
    Effect.gen(function*() {
      const result = yield* json({
        connectors: { servers: { "bad-id": { protocol: "mcp", url: "https://x/mcp" }, x: { protocol: "grpc" } } },
        grants: [{ src: ["*"], app: { "tailscale.com/cap/aperture": [{ connectors: ["x/nope/y"] }] } }]
      })
      if (Either.isRight(result)) throw new Error("expected failure")
      const lines = result.left.issues.map((i) => `${i.path}: ${i.message}`)
      expect(lines).toEqual(expect.arrayContaining([
        expect.stringMatching(/^connectors\.servers\.x\.protocol: /),
        expect.stringMatching(/^connectors\.servers\.bad-id: connector ID must match/),
        expect.stringMatching(/^grants\.0\.app\["tailscale\.com\/cap\/aperture"\]\.0\.connectors\.0: unknown category "nope"/)
      ]))
    }))

  it.effect("loads the original's other sections with a warning, and takes { env } secrets", () =>
    Effect.gen(function*() {
      const result = yield* json({
        ...original,
        providers: { anthropic: {} },
        flags: { connectors: { value: true } },
        connectors: { servers: { s: { protocol: "http", url: "https://api.example.com", auth: { type: "api_key", secret: { env: "K" }, name: "X-Key", in: "header" } } } }
      }, { K: "key-from-env" })
      if (Either.isLeft(result)) throw new Error(result.left.message)
      // The grants still name snowflake and analytics, which this variant replaced: warned at their JSON paths.
      expect(result.right.warnings.map((w) => w.path)).toEqual([
        "providers",
        "flags",
        "grants.0.app[\"tailscale.com/cap/aperture\"].0.role",
        "grants.0.app[\"tailscale.com/cap/aperture\"].1.models",
        "grants.0.app[\"tailscale.com/cap/aperture\"].2.connectors.0",
        "grants.0.app[\"tailscale.com/cap/aperture\"].2.connectors.1"
      ])
      const s = result.right.connectors[0]!
      expect(s.kind === "http" && s.auth?.spec.name).toBe("apiKey")
    }))

  it.effect("warns, at its JSON path, about every grant field it ignores", () =>
    Effect.gen(function*() {
      const result = yield* json({
        connectors: original.connectors,
        grants: [
          { src: ["admin@example.com"], app: { "tailscale.com/cap/aperture": [{ role: "admin" }] } },
          {
            src: ["*"],
            dst: ["*"],
            app: {
              "tailscale.com/cap/aperture": [{ connectors: ["snowflake/**"], models: "anthropic/**", quota: 5 }, "everything"],
              "example.com/cap/other": [{}]
            }
          }
        ]
      })
      if (Either.isLeft(result)) throw new Error(result.left.message)
      // { role: "admin" } is not ignored: it makes grant 0's src admins.
      expect(result.right.warnings.map((w) => `${w.path}: ${w.message}`)).toEqual([
        "grants.1.dst: ignored: a tailnet policy-file field; only src and app apply here",
        "grants.1.app[\"tailscale.com/cap/aperture\"].0.models: ignored: model access belongs to the original's LLM gateway, not to connectors",
        "grants.1.app[\"tailscale.com/cap/aperture\"].0.quota: ignored: only \"connectors\", \"role\" and \"read_metrics\" have an effect here",
        "grants.1.app[\"tailscale.com/cap/aperture\"].1: ignored: expected an object with \"connectors\", \"role\" or \"read_metrics\"",
        "grants.1.app[\"example.com/cap/other\"]: ignored: only \"tailscale.com/cap/aperture\" grants connectors"
      ])
      // What was ignored grants nothing; what was not still does.
      expect(result.right.grants.map((g) => g.connectors.map((p) => p.source))).toEqual([[], ["snowflake/**"]])
      expect(result.right.grants.map((g) => g.admin)).toEqual([true, false])
    }))

  it("parses JSONC: comments and trailing commas, with line and column on errors", () => {
    expect(parseJsonc("{ // c\n \"a\": [1, 2,], /* b */ \"s\": \"// not a comment\", }")).toEqual({
      ok: true,
      value: { a: [1, 2], s: "// not a comment" }
    })
    const bad = parseJsonc("{\n  \"a\": 1\n  \"b\": 2\n}")
    expect(bad.ok).toBe(false)
    if (!bad.ok) expect(bad.message).toMatch(/line 4, column 3|line 3/)
  })
})

describe("admin grants", () => {
  it.effect("takes role admin and readMetrics with or without connectors, and refuses a grant that gives nothing", () =>
    Effect.gen(function*() {
      const config = yield* valid({
        grants: [
          grant({ src: ["ops"], role: "admin" }),
          grant({ src: ["prometheus"], readMetrics: true }),
          grant({ src: ["local"], connectors: ["**"] })
        ]
      })
      expect(config.grants.map((g) => [g.admin, g.readMetrics])).toEqual([[true, false], [false, true], [false, false]])
      expect(checkReport(config)).toContain("admin: grants 0")
      expect(checkReport(yield* valid({ grants: [grant({ src: ["local"], connectors: ["**"] })] })))
        .toContain("admin: loopback callers (no grant has role \"admin\")")
      expect(yield* issuesOf({ grants: [grant({ src: ["local"], connectors: ["**"] }), grant({ src: ["ops"] })] }))
        .toEqual(["grants.1: a grant needs connectors, role or readMetrics"])
      expect(yield* issuesOf({ grants: [{ src: ["ops"], role: "owner" }] })).toEqual([expect.stringMatching(/^grants\.0\.role: /)])
    }))

  it.effect("reads the original's role and read_metrics capabilities", () =>
    Effect.gen(function*() {
      const result = yield* json({
        grants: [
          { src: ["ops@example.com"], app: { "tailscale.com/cap/aperture": [{ role: "admin" }] } },
          { src: ["*"], app: { "tailscale.com/cap/aperture": [{ role: "user" }] } },
          { src: ["prom@example.com"], app: { "tailscale.com/cap/aperture": [{ read_metrics: true }] } }
        ]
      })
      if (Either.isLeft(result)) throw new Error(result.left.message)
      expect(result.right.grants.map((g) => [g.admin, g.readMetrics])).toEqual([[true, false], [false, false], [false, true]])
      expect(result.right.warnings.map((w) => `${w.path}: ${w.message}`)).toEqual([
        "grants.1.app[\"tailscale.com/cap/aperture\"].0.role: ignored: every identified caller is a user here; connectors come from connectors grants"
      ])
    }))
})

describe("ConfigInvalid", () => {
  it("formats one line per issue, with the source", () => {
    const error = new ConfigInvalid({ source: "/x/aperture.config.ts", issues: [{ path: "a.b", message: "bad" }] })
    expect(error.message).toBe("invalid config /x/aperture.config.ts:\na.b: bad")
  })
})
