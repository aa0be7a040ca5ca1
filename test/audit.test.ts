/**
 * The audit line on its own: its fields for each category (the HTTP proxy's included), arguments
 * left out by default and redacted on request, and the `audit` config section's errors; through a
 * gateway, a call to a connector that is not serving says so rather than reading as a denial.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { type AuditEvent, auditLine } from "../src/audit/AuditLog.js"
import { isSecretKey, REDACTED, redact } from "../src/audit/redact.js"
import { decodeApertureJson, decodeConfig } from "../src/Aperture.js"
import { grant, mcp } from "../src/index.js"
import { connectV2, eventually, startGateway, statusOf } from "./helpers/gateway.js"
import { freePort } from "./helpers/processes.js"

const alice = { login: "alice", groups: [], tags: [], via: "jwt" }
const call: AuditEvent = {
  identity: alice,
  connector: "github",
  category: "tools",
  exposed: "github_create_issue",
  upstream: "create_issue",
  grant: { grantIndex: 2, pattern: "github/tools/*" },
  startedAt: 1000,
  outcome: "ok",
  arguments: { title: "Bug", token: "abc" }
}

describe("audit lines", () => {
  it("name who, what, the grant, how long and how it ended; no arguments unless asked", () => {
    const line = auditLine(call, false, 1012.5)
    expect(line).toEqual({
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      login: "alice",
      via: "jwt",
      connector: "github",
      category: "tools",
      exposed: "github_create_issue",
      upstream: "create_issue",
      decision: "allowed",
      grant: { index: 2, pattern: "github/tools/*" },
      durationMs: 12.5,
      outcome: "ok"
    })
    expect(auditLine(call, true, 1012.5).arguments).toEqual({ title: "Bug", token: REDACTED })
  })

  it("describe a proxied request: method, path and status", () => {
    const line = auditLine({
      identity: alice,
      connector: "github",
      category: "proxy",
      exposed: "repos/o/r/issues",
      upstream: "repos/o/r/issues",
      grant: undefined,
      startedAt: 0,
      outcome: "denied",
      method: "POST",
      status: 403
    }, false, 0)
    expect(line).toMatchObject({ category: "proxy", decision: "denied", grant: null, method: "POST", status: 403, outcome: "denied" })
  })
})

describe("audit lines from a gateway", () => {
  it("a granted call to a down or misconfigured connector is unavailable, with the reason; a denied one stays denied", async () => {
    const dir = mkdtempSync(join(tmpdir(), "aperture-audit-"))
    const file = join(dir, "audit.jsonl")
    const closed = await freePort()
    const gateway = await startGateway({
      connectors: {
        dead: mcp({ url: `http://127.0.0.1:${closed}/mcp` }),
        nourl: mcp({}),
        hidden: mcp({ url: `http://127.0.0.1:${closed}/mcp` })
      },
      grants: [grant({ src: ["local"], connectors: ["dead/**", "nourl/tools/*"] })],
      audit: { to: { file } }
    })
    try {
      await eventually(async () => (await statusOf(gateway, "dead")) === "down", 20_000, "dead down")
      const client = await connectV2(gateway.url)
      for (const name of ["dead_echo", "nourl_search", "hidden_echo", "nosuch_echo"]) {
        await expect(client.callTool({ name, arguments: {} })).rejects.toThrow(/not found/)
      }
      await client.close()
      const lines = await eventually(() => {
        const written = readFileSync(file, "utf8").trim().split("\n").filter((l) => l !== "")
        return written.length === 4 ? written.map((l) => JSON.parse(l) as Record<string, unknown>) : undefined
      }, 5_000, "four audit lines")
      expect(lines[0]).toMatchObject({
        connector: "dead",
        exposed: "dead_echo",
        upstream: "echo",
        decision: "allowed",
        grant: { index: 0, pattern: "dead/**" },
        outcome: "unavailable",
        reason: `connector dead is down: connection refused (127.0.0.1:${closed}): nothing is listening there`
      })
      expect(lines[1]).toMatchObject({ connector: "nourl", decision: "allowed", outcome: "unavailable", reason: expect.stringMatching(/^connector nourl is \w+: .*url/) })
      for (const denied of [lines[2], lines[3]]) {
        expect(denied).toMatchObject({ connector: null, decision: "denied", outcome: "denied" })
        expect(denied).not.toHaveProperty("reason")
      }
    } finally {
      await gateway.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("redaction", () => {
  it("replaces values under secret-looking keys, at any depth", () => {
    expect(redact({
      password: "hunter2",
      clientSecret: "x",
      "X-Api-Key": "k",
      Authorization: "Bearer x",
      session_id: "s",
      signingKey: "p",
      author: "Ada",
      query: "select 1",
      nested: [{ refresh_token: "r", keep: 1 }]
    })).toEqual({
      password: REDACTED,
      clientSecret: REDACTED,
      "X-Api-Key": REDACTED,
      Authorization: REDACTED,
      session_id: REDACTED,
      signingKey: REDACTED,
      author: "Ada",
      query: "select 1",
      nested: [{ refresh_token: REDACTED, keep: 1 }]
    })
  })

  it("replaces long opaque strings and known credential shapes wherever they are", () => {
    const values = [
      "ghp_0123456789abcdefABCDEF0123456789",
      "sk-proj-abcdefghijklmnop1234",
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
      "AKIAIOSFODNN7EXAMPLE",
      "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    ]
    expect(redact(values)).toEqual(values.map(() => REDACTED))
    expect(redact(["a sentence with 40 characters and spaces in it", "short1", 42, true, null])).toEqual([
      "a sentence with 40 characters and spaces in it",
      "short1",
      42,
      true,
      null
    ])
  })

  it("bounds what it writes: long strings cut, deep structures and long lists stopped", () => {
    const long = "word ".repeat(100)
    expect(redact(long)).toMatch(/…\(\+244 chars\)$/)
    expect(JSON.stringify(redact({ a: { b: { c: { d: { e: { f: { g: 1 } } } } } } }))).toContain("[…]")
    expect((redact(Array.from({ length: 60 }, (_, i) => i)) as Array<unknown>).at(-1)).toBe("…(+10 items)")
    expect(isSecretKey("monkey")).toBe(true) // over-redacting a key name costs little
  })
})

describe("audit config", () => {
  it.effect("decodes stdout and files (relative to the config), and reports mistakes with paths", () =>
    Effect.gen(function*() {
      const ok = yield* decodeConfig({ audit: { to: { file: "logs/audit.jsonl" }, arguments: "redacted" } }, { source: "/srv/aperture.config.ts" })
      expect(ok.audit).toEqual({ to: { kind: "file", path: "/srv/logs/audit.jsonl" }, arguments: "redacted" })
      const stdout = yield* decodeConfig({ audit: { to: "stdout" } })
      expect(stdout.audit).toEqual({ to: { kind: "stdout" }, arguments: "omit" })
      expect((yield* decodeConfig({})).audit).toBeUndefined()
      const bad = yield* Effect.either(decodeConfig({ audit: { to: "stderr", arguments: true } }))
      if (Either.isRight(bad)) throw new Error("expected errors")
      expect(bad.left.issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
        "audit.to: expected \"stdout\" or { file: \"…\" }",
        "audit.arguments: expected false or \"redacted\""
      ])
    }))
})

describe("audit in the original's JSON shape", () => {
  it.effect("takes the same audit block as an extension", () =>
    Effect.gen(function*() {
      const decoded = yield* decodeApertureJson({
        connectors: { servers: {} },
        grants: [{ src: ["*"], app: { "tailscale.com/cap/aperture": [{ connectors: ["**"] }] } }],
        audit: { to: { file: "audit.jsonl" }, arguments: "redacted" }
      }, "/etc/aperture/aperture.json")
      expect(decoded.audit).toEqual({ to: { kind: "file", path: "/etc/aperture/audit.jsonl" }, arguments: "redacted" })
    }))
})
