/**
 * Started per-user authorizations in the cluster's Redis, so the provider's callback may land on
 * any replica (`auth/pendingAuthorizations.ts` is the one-process store). Each entry is sealed
 * under the `secretKey` (it holds the PKCE verifier), keyed by a hash of its state, and kept until
 * a while after its expiry; claiming it swaps it for a "used" mark in one script, so two callbacks
 * with one state cannot both get it.
 * @module
 */
import { createHash } from "node:crypto"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { Claim, PendingAuthorization, PendingAuthorizations } from "../auth/pendingAuthorizations.js"
import type { TokenSeal } from "../auth/userTokens.js"
import { fromStored, toStored } from "./redisUserTokens.js"
import { type CommandClient, sharedCommand } from "./sharedCommand.js"

/** As the one-process store: a used or expired state is recognised this long after its expiry. */
const REMEMBER_AFTER_EXPIRY_MS = 15 * 60_000
const USED = "used"

/** KEYS[1] the entry. Returns the entry and leaves the used mark, or the mark, or nil. */
const CLAIM = `local v = redis.call('GET', KEYS[1])
if not v then return false end
if v == '${USED}' then return v end
redis.call('SET', KEYS[1], '${USED}', 'KEEPTTL')
return v`

interface StoredEntry extends Omit<PendingAuthorization, "codeVerifier"> {
  readonly codeVerifier: string
}

export const makeRedisPendingAuthorizations = (options: {
  readonly client: CommandClient
  readonly keyPrefix: string
  readonly seal: TokenSeal
}): PendingAuthorizations => {
  const keyOf = (state: string) => `${options.keyPrefix}oauthstate:${createHash("sha256").update(state).digest("base64url")}`
  return {
    put: (state, entry) =>
      Effect.gen(function*() {
        const stored: StoredEntry = { ...entry, codeVerifier: Redacted.value(entry.codeVerifier) }
        const ttl = Math.max(1, entry.expiresAt + REMEMBER_AFTER_EXPIRY_MS - Date.now())
        const sealed = toStored(options.seal.sealPending(state, JSON.stringify(stored)))
        yield* sharedCommand(options.client, ["SET", keyOf(state), sealed, "PX", String(ttl)])
      }).pipe(
        // The user's callback then finds no state, and is told to connect again.
        Effect.catchAll((error) => Effect.logWarning(`could not keep a started authorization: ${error.message}`))
      ),
    claim: (state) =>
      sharedCommand(options.client, ["EVAL", CLAIM, "1", keyOf(state)]).pipe(
        Effect.map((reply): Claim => {
          if (reply === USED) return { _tag: "AlreadyUsed" }
          const sealed = fromStored(reply)
          const json = sealed === undefined ? undefined : options.seal.openPending(state, sealed)
          if (json === undefined) return { _tag: "Unknown" }
          const entry = JSON.parse(json) as StoredEntry
          return { _tag: "Claimed", entry: { ...entry, codeVerifier: Redacted.make(entry.codeVerifier) } }
        }),
        Effect.catchAll((error) => Effect.as(Effect.logWarning(`could not read a started authorization: ${error.message}`), { _tag: "Unknown" } as const))
      )
  }
}
