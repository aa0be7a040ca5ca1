/**
 * The one decision function. Listing and calling both ask `decide`, so a denied item is absent
 * from lists and answers a call exactly as an unknown item does. Grants are allow-only and
 * additive: nothing is visible without one.
 * @module
 */
import { type Identity, LocalOperator } from "../plugin/IdentityPlugin.js"
import {
  type Category,
  type CompiledPattern,
  type GrantTarget,
  patternMatches,
  patternTouchesCategory,
  patternTouchesConnector
} from "../config/grantPattern.js"
import type { Grant } from "../config/grantPattern.js"

export type { Grant }


/** Why something was allowed: the grant (by index in `grants`) and the pattern that matched. */
export interface Decision {
  readonly grantIndex: number
  readonly pattern: string
}

/** Whether one `src` entry names this caller: a login, `group:x`, `tag:x` or `*`. */
export const srcMatches = (src: string, identity: Identity): boolean => {
  if (src === "*") return true
  if (src.startsWith("group:")) return identity.groups.includes(src.slice(6))
  if (src.startsWith("tag:")) return identity.tags.includes(src.slice(4))
  return src === identity.login
}

/** Who may read the admin surfaces, decided per request from that request's own identity. */
export interface AdminPolicy {
  /** Indexes of the grants with role admin; empty when loopback callers are the admins. */
  readonly adminGrants: ReadonlyArray<number>
  /** May see every connector in full at `/api/connectors`, and read `/metrics`. */
  readonly isAdmin: (identity: Identity) => boolean
  /** May read `/metrics`: an admin, or named by a grant with `readMetrics`. */
  readonly mayReadMetrics: (identity: Identity) => boolean
}

export const adminPolicy = (grants: ReadonlyArray<Grant>): AdminPolicy => {
  const adminGrants = grants.flatMap((grant, index) => grant.admin === true ? [index] : [])
  const named = (identity: Identity, holds: (grant: Grant) => boolean) =>
    grants.some((grant) => holds(grant) && grant.src.some((src) => srcMatches(src, identity)))
  const isAdmin = adminGrants.length === 0
    // No grant names an admin: the caller the built-in loopback plugin recognised is this
    // machine's own operator, who can read the config file (and every secret it names) anyway.
    // Once any grant names role admin, only the callers it names are admins.
    ? (identity: Identity) => identity[LocalOperator] === true
    : (identity: Identity) => named(identity, (grant) => grant.admin === true)
  return {
    adminGrants,
    isAdmin,
    mayReadMetrics: (identity) => isAdmin(identity) || named(identity, (grant) => grant.readMetrics === true)
  }
}

/** The patterns one caller holds, with the decision function bound to them. */
export interface CallerPolicy {
  /** Equal for callers who hold the same patterns, so per-caller caches can be shared. */
  readonly key: string
  readonly decide: (target: GrantTarget) => Decision | undefined
  /** Whether any of the caller's patterns reaches this connector (with `category`: can allow something of that category). */
  readonly touches: (connectorId: string, labels: ReadonlyArray<string>, category?: Category) => boolean
}

export const callerPolicy = (grants: ReadonlyArray<Grant>, identity: Identity): CallerPolicy => {
  const held: Array<{ readonly grantIndex: number; readonly pattern: CompiledPattern }> = []
  const grantIndexes: Array<number> = []
  grants.forEach((grant, grantIndex) => {
    if (grant.src.some((src) => srcMatches(src, identity))) {
      grantIndexes.push(grantIndex)
      for (const pattern of grant.connectors) held.push({ grantIndex, pattern })
    }
  })
  const touchesCategory = new Map<string, boolean>()
  return {
    key: grantIndexes.join(","),
    decide: (target) => {
      for (const { grantIndex, pattern } of held) {
        if (patternMatches(pattern, target)) return { grantIndex, pattern: pattern.source }
      }
      return undefined
    },
    touches: (connectorId, labels, category) => {
      if (category === undefined) return held.some(({ pattern }) => patternTouchesConnector(pattern, connectorId, labels))
      // Asked per proxied request: remembered per connector and category (labels are fixed per connector).
      const key = `${connectorId}\u0000${category}`
      let touched = touchesCategory.get(key)
      if (touched === undefined) {
        touched = held.some(({ pattern }) => patternTouchesCategory(pattern, connectorId, labels, category))
        touchesCategory.set(key, touched)
      }
      return touched
    }
  }
}

/** The decision for one caller and one target: the grant that allows it, or `undefined` (denied). */
export const decide = (grants: ReadonlyArray<Grant>, identity: Identity, target: GrantTarget): Decision | undefined =>
  callerPolicy(grants, identity).decide(target)

/**
 * Caches one {@link CallerPolicy} per identity, so a request does not re-scan the grants.
 * Bounded: past `max` distinct identities the oldest entry is dropped.
 */
export class PolicyCache {
  private readonly byIdentity = new Map<string, CallerPolicy>()
  constructor(private readonly grants: ReadonlyArray<Grant>, private readonly max = 10_000) {}

  get(identity: Identity): CallerPolicy {
    const key = `${identity.login}\u0000${identity.groups.join(",")}\u0000${identity.tags.join(",")}`
    let policy = this.byIdentity.get(key)
    if (policy === undefined) {
      policy = callerPolicy(this.grants, identity)
      if (this.byIdentity.size >= this.max) {
        const oldest = this.byIdentity.keys().next()
        if (!oldest.done) this.byIdentity.delete(oldest.value)
      }
      this.byIdentity.set(key, policy)
    }
    return policy
  }
}
