/**
 * Verified bearer tokens, remembered until they expire: verifying a signature on every request
 * is the kind of hot-path work the gateway avoids, and a client sends the same token many times.
 * Bounded, least recently used first out; and no entry is used longer than `maxAgeSeconds`, so a
 * long-lived token is checked again now and then (its key may have been withdrawn meanwhile).
 * @module
 */
import type { Identity } from "../plugin/IdentityPlugin.js"

interface Entry {
  readonly identity: Identity
  /** Seconds since the epoch after which the entry is no longer used. */
  readonly until: number
}

export class VerifiedTokens {
  // A Map iterates in insertion order: re-inserting on a hit makes the first key the least recently used.
  private readonly entries = new Map<string, Entry>()
  constructor(readonly max: number, readonly maxAgeSeconds: number = Number.POSITIVE_INFINITY) {}

  /** The identity a token was verified as, while it is still valid at `nowSeconds`. */
  get(token: string, nowSeconds: number): Identity | undefined {
    const entry = this.entries.get(token)
    if (entry === undefined) return undefined
    this.entries.delete(token)
    if (nowSeconds >= entry.until) return undefined
    this.entries.set(token, entry)
    return entry.identity
  }

  /** Remembers a token verified at `nowSeconds` as valid until `untilSeconds`. */
  set(token: string, identity: Identity, untilSeconds: number, nowSeconds: number): void {
    this.entries.delete(token)
    if (this.entries.size >= this.max) {
      const oldest = this.entries.keys().next()
      if (!oldest.done) this.entries.delete(oldest.value)
    }
    this.entries.set(token, { identity, until: Math.min(untilSeconds, nowSeconds + this.maxAgeSeconds) })
  }

  get size(): number {
    return this.entries.size
  }
}
