/**
 * PKCE (RFC 7636) with the S256 method only: `plain` gives nothing against a stolen code.
 * @module
 */
import { createHash, randomBytes } from "node:crypto"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"

export interface Pkce {
  /** 43 characters of base64url from 32 random bytes (RFC 7636 §4.1 allows 43–128). */
  readonly verifier: Redacted.Redacted<string>
  /** BASE64URL(SHA256(verifier)), sent in the authorization request. */
  readonly challenge: string
  readonly method: "S256"
}

/** The S256 challenge of a verifier. */
export const s256Challenge = (verifier: string): string => createHash("sha256").update(verifier, "ascii").digest("base64url")

/** A new verifier and its challenge. */
export const makePkce: Effect.Effect<Pkce> = Effect.sync(() => {
  const verifier = randomBytes(32).toString("base64url")
  return { verifier: Redacted.make(verifier), challenge: s256Challenge(verifier), method: "S256" }
})
