/**
 * Authorizations a user has started and not yet finished: what the callback needs, found by
 * the `state` the provider sends back. Behind an interface so a cluster can keep them in Redis
 * (the callback may land on another replica than the one that began); in memory by default.
 * @module
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"

/** What `begin` remembers for the callback. Never holds a client secret. */
export interface PendingAuthorization {
  readonly login: string
  readonly connectorId: string
  readonly codeVerifier: Redacted.Redacted<string>
  readonly tokenUrl: string
  readonly clientId: string
  readonly redirectUri: string
  readonly resource: string | undefined
  /** Epoch millis after which the state is refused. */
  readonly expiresAt: number
}

/** The outcome of claiming a state: the entry (now used), or why there is none. */
export type Claim =
  | { readonly _tag: "Claimed"; readonly entry: PendingAuthorization }
  | { readonly _tag: "AlreadyUsed" }
  | { readonly _tag: "Unknown" }

export interface PendingAuthorizations {
  /** Keeps an entry under its state until `entry.expiresAt`. */
  readonly put: (state: string, entry: PendingAuthorization) => Effect.Effect<void>
  /**
   * Takes an entry atomically: the first claim gets it, every later one `AlreadyUsed` (until
   * the entry's expiry has long passed). An expired entry is still returned; the caller judges
   * expiry, so the user hears "expired" rather than "unknown".
   */
  readonly claim: (state: string) => Effect.Effect<Claim>
}

/** How long a used or expired state is still recognised (so a reused link says so) after its expiry. */
const REMEMBER_AFTER_EXPIRY_MS = 15 * 60_000

interface Slot {
  entry: PendingAuthorization | undefined
  readonly forgetAt: number
}

/**
 * In memory, bounded: at most `maxEntries` states (the oldest dropped first: a flood of
 * unfinished flows cannot grow memory), expired ones swept on each write.
 */
export const inMemoryPendingAuthorizations = (options: { readonly maxEntries?: number } = {}): PendingAuthorizations => {
  const maxEntries = options.maxEntries ?? 10_000
  // Insertion order is expiry order (one fixed lifetime), so the sweep stops at the first live slot.
  const slots = new Map<string, Slot>()
  const sweep = (at: number) => {
    for (const [state, slot] of slots) {
      if (slot.forgetAt > at && slots.size <= maxEntries) break
      slots.delete(state)
    }
  }
  return {
    put: (state, entry) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        slots.set(state, { entry, forgetAt: entry.expiresAt + REMEMBER_AFTER_EXPIRY_MS })
        sweep(now)
      }),
    claim: (state) =>
      Effect.map(Clock.currentTimeMillis, (now): Claim => {
        const slot = slots.get(state)
        if (slot === undefined || slot.forgetAt <= now) return { _tag: "Unknown" }
        const entry = slot.entry
        if (entry === undefined) return { _tag: "AlreadyUsed" }
        slot.entry = undefined
        return { _tag: "Claimed", entry }
      })
  }
}
