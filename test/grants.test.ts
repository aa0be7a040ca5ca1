/**
 * The decision function on its own: pattern syntax, `*` vs `**`, labels, src matching, and
 * listing agreeing with calling.
 */
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { type CompiledPattern, type GrantTarget, parsePattern, patternMatches } from "../src/config/grantPattern.js"
import { callerPolicy, decide, type Grant } from "../src/grants/policy.js"
import type { Identity } from "../src/plugin/IdentityPlugin.js"

const p = (source: string): CompiledPattern => {
  const parsed = parsePattern(source)
  if (Either.isLeft(parsed)) throw new Error(parsed.left)
  return parsed.right
}
const target = (connectorId: string, category: GrantTarget["category"], name: string, labels: Array<string> = []): GrantTarget => ({
  connectorId,
  category,
  name,
  labels
})
const alice: Identity = { login: "alice@example.com", groups: ["analysts"], tags: [], via: "test" }
const ci: Identity = { login: "ci-bot", groups: [], tags: ["ci"], via: "test" }

describe("patterns", () => {
  it("* stays within one segment; ** spans any number", () => {
    expect(patternMatches(p("github/tools/*"), target("github", "tools", "list_repos"))).toBe(true)
    expect(patternMatches(p("github/*/x"), target("github", "tools", "x"))).toBe(true)
    expect(patternMatches(p("github/resources/*"), target("github", "resources", "repo://a/b"))).toBe(false)
    expect(patternMatches(p("github/resources/**"), target("github", "resources", "repo://a/b"))).toBe(true)
    expect(patternMatches(p("github/**"), target("github", "proxy", "repos/a/b/issues"))).toBe(true)
    expect(patternMatches(p("**"), target("anything", "prompts", "p"))).toBe(true)
    expect(patternMatches(p("*/tools/echo"), target("fx", "tools", "echo"))).toBe(true)
    expect(patternMatches(p("git*/tools/*"), target("github", "tools", "a"))).toBe(true)
    expect(patternMatches(p("github/proxy/repos/*/issues"), target("github", "proxy", "repos/a/issues"))).toBe(true)
    expect(patternMatches(p("github/proxy/repos/*/issues"), target("github", "proxy", "repos/a/b/issues"))).toBe(false)
    expect(patternMatches(p("github/proxy/repos/**/issues"), target("github", "proxy", "repos/a/b/issues"))).toBe(true)
  })

  it("a grant for one connector never reaches another", () => {
    expect(patternMatches(p("git/**"), target("github", "tools", "x"))).toBe(false)
    expect(patternMatches(p("github/tools/*"), target("githubx", "tools", "x"))).toBe(false)
    expect(patternMatches(p("github/tools/*"), target("github", "prompts", "x"))).toBe(false)
  })

  it("matches names literally, regex characters included", () => {
    expect(patternMatches(p("fx/tools/a.b"), target("fx", "tools", "a.b"))).toBe(true)
    expect(patternMatches(p("fx/tools/a.b"), target("fx", "tools", "aXb"))).toBe(false)
    expect(patternMatches(p("fx/resources/file:(x)"), target("fx", "resources", "file:(x)"))).toBe(true)
  })

  it("label:x matches every item of a connector carrying the label", () => {
    expect(patternMatches(p("label:public"), target("a", "tools", "t", ["public"]))).toBe(true)
    expect(patternMatches(p("label:public"), target("a", "proxy", "x/y", ["public"]))).toBe(true)
    expect(patternMatches(p("label:public"), target("a", "tools", "t", ["private"]))).toBe(false)
  })

  it("rejects malformed patterns with a reason", () => {
    for (const bad of ["", "github", "github/tool/x", "github/tools", "a/**x", "bad-id/**", "/tools/x", "label:"]) {
      expect(Either.isLeft(parsePattern(bad)), bad).toBe(true)
    }
  })
})

describe("decide", () => {
  const grants: ReadonlyArray<Grant> = [
    { src: ["alice@example.com"], connectors: [p("github/tools/list_repos")] },
    { src: ["group:analysts"], connectors: [p("analytics/tools/*")] },
    { src: ["tag:ci"], connectors: [p("label:ci")] },
    { src: ["*"], connectors: [p("public/**")] }
  ]

  it("allows by login, group, tag and *; denies everything else", () => {
    expect(decide(grants, alice, target("github", "tools", "list_repos"))).toEqual({ grantIndex: 0, pattern: "github/tools/list_repos" })
    expect(decide(grants, alice, target("github", "tools", "delete_repo"))).toBeUndefined()
    expect(decide(grants, alice, target("analytics", "tools", "q"))).toEqual({ grantIndex: 1, pattern: "analytics/tools/*" })
    expect(decide(grants, ci, target("analytics", "tools", "q"))).toBeUndefined()
    expect(decide(grants, ci, target("builds", "tools", "run", ["ci"]))).toEqual({ grantIndex: 2, pattern: "label:ci" })
    expect(decide(grants, ci, target("public", "prompts", "p"))).toEqual({ grantIndex: 3, pattern: "public/**" })
    expect(decide([], alice, target("public", "prompts", "p"))).toBeUndefined()
  })

  it("is additive: any one grant suffices", () => {
    const more: ReadonlyArray<Grant> = [...grants, { src: ["alice@example.com"], connectors: [p("github/**")] }]
    expect(decide(more, alice, target("github", "tools", "delete_repo"))).toEqual({ grantIndex: 4, pattern: "github/**" })
  })

  it("callers holding the same grants share a policy key; different grants, different keys", () => {
    const bob: Identity = { ...alice, login: "bob@example.com" }
    expect(callerPolicy(grants, { ...alice, login: "carol", groups: ["analysts"] }).key).toBe(callerPolicy(grants, { ...bob, groups: ["analysts"] }).key)
    expect(callerPolicy(grants, alice).key).not.toBe(callerPolicy(grants, bob).key)
  })

  it("touches tells whether a caller can reach a connector at all", () => {
    const policy = callerPolicy(grants, alice)
    expect(policy.touches("github", [])).toBe(true)
    expect(policy.touches("public", [])).toBe(true)
    expect(policy.touches("builds", ["ci"])).toBe(false)
  })
})
