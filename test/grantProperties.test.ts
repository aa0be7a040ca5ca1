/**
 * Properties of the grant matcher over random patterns and names (fast-check): `*` never
 * crosses a `/`, `**` matches any depth, a grant for one connector never allows another, and
 * what a caller is listed agrees with what it may call, for random grants and catalogs.
 */
import { Either } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { CATEGORIES, type Category, type CompiledPattern, type GrantTarget, parsePattern, patternMatches } from "../src/config/grantPattern.js"
import { callerPolicy, decide, type Grant } from "../src/grants/policy.js"
import type { Identity } from "../src/plugin/IdentityPlugin.js"
import type { CatalogSnapshot } from "../src/catalog/Catalog.js"
import type { IndexEntry } from "../src/catalog/index.js"
import type { McpConnector } from "../src/config/model.js"
import { allowed } from "../src/catalog/entryGrant.js"
import { callerView } from "../src/router/views.js"

const compile = (source: string): CompiledPattern => {
  const parsed = parsePattern(source)
  if (Either.isLeft(parsed)) throw new Error(`${source}: ${parsed.left}`)
  return parsed.right
}

// Small alphabets, so random patterns and names actually collide.
const connectorId = fc.constantFrom("a", "b", "ab", "gh", "github", "git")
const category = fc.constantFrom<Category>(...CATEGORIES)
/** A name segment: no "/" and no "*". */
const segment = fc.stringMatching(/^[a-z0-9_.:-]{1,6}$/)
const name = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => parts.join("/"))
const target = fc.record({ connectorId, category, name, labels: fc.subarray(["x", "y"]) }) as fc.Arbitrary<GrantTarget>

/** A pattern segment: literal, with a `*` inside, `*` alone, or `**`. */
const patternSegment = fc.oneof(
  segment,
  fc.tuple(fc.stringMatching(/^[a-z]{0,2}$/), fc.stringMatching(/^[a-z]{0,2}$/)).map(([a, b]) => `${a}*${b}`),
  fc.constant("*"),
  fc.constant("**")
)
const categorySegment = fc.oneof(category, fc.constant("*"), fc.constant("**"))
/** Any well-formed pattern: `connector/category/name...`, `connector/**`, `**`, or `label:x`. */
const pattern = fc.oneof(
  fc.tuple(fc.oneof(connectorId, fc.constant("*"), fc.constant("g*")), categorySegment, fc.array(patternSegment, { minLength: 1, maxLength: 3 }))
    .map(([c, cat, rest]) => cat === "**" ? `${c}/**` : `${c}/${cat}/${rest.join("/")}`),
  connectorId.map((c) => `${c}/**`),
  fc.constant("**"),
  fc.constantFrom("label:x", "label:y")
)

describe("pattern properties", () => {
  it("every generated pattern parses (the generator makes only well-formed ones)", () => {
    fc.assert(fc.property(pattern, (source) => Either.isRight(parsePattern(source))))
  })

  it("* never crosses a /: connector/category/* matches exactly the one-segment names", () => {
    fc.assert(fc.property(connectorId, category, name, (c, cat, n) => {
      const matches = patternMatches(compile(`${c}/${cat}/*`), { connectorId: c, category: cat, name: n, labels: [] })
      expect(matches).toBe(!n.includes("/"))
    }))
  })

  it("* inside a segment never crosses a / either", () => {
    fc.assert(fc.property(connectorId, category, segment, segment, (c, cat, left, right) => {
      const source = `${c}/${cat}/${left.slice(0, 1)}*`
      const inside = patternMatches(compile(source), { connectorId: c, category: cat, name: `${left}/${right}`, labels: [] })
      expect(inside).toBe(false)
    }))
  })

  it("** matches any depth: connector/category/** and connector/** take every name", () => {
    fc.assert(fc.property(connectorId, category, name, (c, cat, n) => {
      const t: GrantTarget = { connectorId: c, category: cat, name: n, labels: [] }
      expect(patternMatches(compile(`${c}/${cat}/**`), t)).toBe(true)
      expect(patternMatches(compile(`${c}/**`), t)).toBe(true)
      expect(patternMatches(compile("**"), t)).toBe(true)
    }))
  })

  it("** in the middle spans zero or more segments", () => {
    fc.assert(fc.property(connectorId, category, fc.array(segment, { maxLength: 4 }), segment, (c, cat, middle, last) => {
      const n = [...middle, last].join("/")
      expect(patternMatches(compile(`${c}/${cat}/**/${last}`), { connectorId: c, category: cat, name: n, labels: [] })).toBe(true)
    }))
  })

  it("a grant for one connector never allows another", () => {
    fc.assert(fc.property(pattern, target, (source, t) => {
      const p = compile(source)
      fc.pre(p.kind === "glob" && p.connectorLiteral !== undefined)
      if (p.kind === "glob" && p.connectorLiteral !== t.connectorId && patternMatches(p, t)) {
        throw new Error(`${source} allowed ${t.connectorId}/${t.category}/${t.name}`)
      }
    }))
  })

  it("a grant for one category never allows another", () => {
    fc.assert(fc.property(connectorId, category, category, name, (c, granted, asked, n) => {
      fc.pre(granted !== asked)
      expect(patternMatches(compile(`${c}/${granted}/**`), { connectorId: c, category: asked, name: n, labels: [] })).toBe(false)
    }))
  })

  it("names are matched literally: regex characters in a literal pattern match only themselves", () => {
    fc.assert(fc.property(connectorId, category, segment, segment, (c, cat, granted, asked) => {
      const t: GrantTarget = { connectorId: c, category: cat, name: asked, labels: [] }
      expect(patternMatches(compile(`${c}/${cat}/${granted}`), t)).toBe(granted === asked)
    }))
  })
})

// --- listing and calling agree -------------------------------------------------------------

const connectorOf = (id: string, labels: ReadonlyArray<string>): McpConnector => ({
  kind: "mcp",
  id,
  index: 0,
  labels,
  description: undefined,
  timeout: { _tag: "Duration" } as never,
  url: undefined,
  auth: undefined,
  userAuth: undefined,
  prefix: true,
  isolation: "caller"
})

type ListCategory = "tools" | "prompts" | "resources" | "templates"
const listCategory = fc.constantFrom<ListCategory>("tools", "prompts", "resources", "templates")

/** A catalog snapshot with just what `callerView` reads: the index lists. */
const snapshotOf = (items: ReadonlyArray<{ connectorId: string; labels: ReadonlyArray<string>; category: ListCategory; name: string }>) => {
  const entries: Array<IndexEntry> = items.map((item, i) => ({
    connector: connectorOf(item.connectorId, item.labels),
    category: item.category,
    upstreamName: item.name,
    exposed: { name: `${item.connectorId}_${i}`, uri: `${item.connectorId}-${item.name}` }
  }) as unknown as IndexEntry)
  const of = (cat: ListCategory) => entries.filter((e) => e.category === cat)
  return {
    entries,
    snapshot: { index: { tools: of("tools"), prompts: of("prompts"), resources: of("resources"), templates: of("templates") } } as unknown as CatalogSnapshot
  }
}

const src = fc.constantFrom("alice", "group:eng", "tag:ci", "*", "bob")
const grants: fc.Arbitrary<Array<Grant>> = fc.array(
  fc.record({ src: fc.array(src, { minLength: 1, maxLength: 2 }), connectors: fc.array(pattern.map(compile), { maxLength: 4 }) }),
  { maxLength: 5 }
)
const identity: fc.Arbitrary<Identity> = fc.record({
  login: fc.constantFrom("alice", "bob", "carol"),
  groups: fc.subarray(["eng", "ops"]),
  tags: fc.subarray(["ci"]),
  via: fc.constant("test")
})
const catalogItems = fc.array(
  fc.record({ connectorId, labels: fc.subarray(["x", "y"]), category: listCategory, name }),
  { maxLength: 12 }
)

describe("listing and calling agree", () => {
  it("an item is in the caller's list exactly when decide allows calling it", () => {
    fc.assert(fc.property(grants, identity, catalogItems, (gs, who, items) => {
      const policy = callerPolicy(gs, who)
      const { entries, snapshot } = snapshotOf(items)
      const view = callerView(snapshot, policy)
      const listed = new Set<unknown>([...view.tools, ...view.prompts, ...view.resources, ...view.templates])
      for (const entry of entries) {
        const callable = decide(gs, who, {
          connectorId: entry.connector.id,
          labels: entry.connector.labels,
          category: entry.category,
          name: entry.upstreamName
        }) !== undefined
        expect(listed.has(entry.exposed)).toBe(callable)
        expect(allowed(policy, entry)).toBe(callable)
      }
    }), { numRuns: 300 })
  })

  it("the grant decide names holds a pattern that matches, and is one the caller holds", () => {
    fc.assert(fc.property(grants, identity, target, (gs, who, t) => {
      const decision = decide(gs, who, t)
      if (decision === undefined) {
        // Denied: no grant naming this caller has a matching pattern.
        for (const g of gs) {
          const names = g.src.some((s) => s === "*" || s === who.login || (s.startsWith("group:") && who.groups.includes(s.slice(6))) || (s.startsWith("tag:") && who.tags.includes(s.slice(4))))
          if (names) expect(g.connectors.some((p) => patternMatches(p, t))).toBe(false)
        }
      } else {
        const g = gs[decision.grantIndex]!
        expect(g.connectors.some((p) => p.source === decision.pattern && patternMatches(p, t))).toBe(true)
      }
    }), { numRuns: 500 })
  })

  it("grants are additive: adding a grant never takes anything away", () => {
    fc.assert(fc.property(grants, grants, identity, target, (gs, more, who, t) => {
      if (decide(gs, who, t) !== undefined) expect(decide([...gs, ...more], who, t)).toBeDefined()
    }))
  })
})
