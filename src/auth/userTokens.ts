/**
 * Per-user OAuth grants (issue 21): for each (user login, connector) the tokens that user granted
 * the gateway, and for each connector the client it registered by dynamic client registration.
 *
 * Everything is sealed at rest with AES-256-GCM under a key derived from the config's
 * `secretKey` (HKDF-SHA256), a random 96-bit IV per write, and associated data naming whose it
 * is (`<connector>\n<login>`), so a value copied to another user or connector does not open. A
 * value that does not open (another key, rotated, altered) reads as absent: the user connects
 * again; it is never an error. Two stores implement {@link UserTokens}: SQLite in a state
 * directory (./sqliteUserTokens.ts) and the cluster's Redis (../cluster/redisUserTokens.ts).
 * @module
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

/** The tokens one user granted for one connector. */
export const UserGrant = Schema.Struct({
  accessToken: Schema.Redacted(Schema.String),
  refreshToken: Schema.optional(Schema.Redacted(Schema.String)),
  /** When the access token expires, epoch ms; absent: the provider did not say. */
  expiresAt: Schema.optional(Schema.Number),
  /** The scope the provider granted (space-separated), when it said. */
  scope: Schema.optional(Schema.String),
  tokenType: Schema.optional(Schema.String)
})
export type UserGrant = typeof UserGrant.Type

/** The client a connector registered at its authorization server (RFC 7591), shared by all users. */
export const ClientRegistration = Schema.Struct({
  clientId: Schema.String,
  clientSecret: Schema.optional(Schema.Redacted(Schema.String)),
  /** Epoch ms. */
  registeredAt: Schema.Number
})
export type ClientRegistration = typeof ClientRegistration.Type

/** The store could not be read or written now (Redis away, the database file failing). */
export class UserTokensUnavailable extends Data.TaggedError("UserTokensUnavailable")<{
  readonly reason: string
}> {
  override get message(): string {
    return `per-user token store unavailable: ${this.reason}`
  }
}

export interface UserTokensService {
  /** Where grants are kept, for messages: `sqlite` (a file) or `redis`. */
  readonly kind: "sqlite" | "redis"
  /** The user's grant for the connector; `undefined` when none (never granted, forgotten, or not decryptable). */
  readonly get: (login: string, connectorId: string) => Effect.Effect<UserGrant | undefined, UserTokensUnavailable>
  /** Stores (replaces) the user's grant for the connector. */
  readonly put: (login: string, connectorId: string, grant: UserGrant) => Effect.Effect<void, UserTokensUnavailable>
  /** Forgets the user's grant for the connector (nothing to forget is fine). */
  readonly delete: (login: string, connectorId: string) => Effect.Effect<void, UserTokensUnavailable>
  /** Which of `connectorIds` the user holds a usable (decryptable) grant for, in the given order. */
  readonly connectorsOf: (
    login: string,
    connectorIds: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<string>, UserTokensUnavailable>
  /** The users who hold a grant for the connector (decryptable or not: `get` tells), most recently stored first. */
  readonly usersOf: (connectorId: string) => Effect.Effect<ReadonlyArray<string>, UserTokensUnavailable>
  /** The connector's registered client, or `undefined` when it has none (or it does not decrypt). */
  readonly getRegistration: (connectorId: string) => Effect.Effect<ClientRegistration | undefined, UserTokensUnavailable>
  readonly putRegistration: (connectorId: string, registration: ClientRegistration) => Effect.Effect<void, UserTokensUnavailable>
}

export class UserTokens extends Context.Tag("aperture/UserTokens")<UserTokens, UserTokensService>() {}

const IV_BYTES = 12
const TAG_BYTES = 16

/** A sealed value: the IV and the ciphertext with the GCM tag appended. */
export interface Sealed {
  readonly iv: Buffer
  readonly body: Buffer
}

const encodeGrant = Schema.encodeSync(Schema.parseJson(UserGrant))
const decodeGrant = Schema.decodeUnknownOption(Schema.parseJson(UserGrant))
const encodeRegistration = Schema.encodeSync(Schema.parseJson(ClientRegistration))
const decodeRegistration = Schema.decodeUnknownOption(Schema.parseJson(ClientRegistration))

const seal = (key: Buffer, aad: string, plaintext: string): Sealed => {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv("aes-256-gcm", key, iv)
  cipher.setAAD(Buffer.from(aad, "utf8"))
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()])
  return { iv, body }
}

const open = (key: Buffer, aad: string, sealed: Sealed): string | undefined => {
  if (sealed.iv.length !== IV_BYTES || sealed.body.length < TAG_BYTES) return undefined
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, sealed.iv)
    decipher.setAAD(Buffer.from(aad, "utf8"))
    decipher.setAuthTag(sealed.body.subarray(sealed.body.length - TAG_BYTES))
    return Buffer.concat([decipher.update(sealed.body.subarray(0, sealed.body.length - TAG_BYTES)), decipher.final()]).toString("utf8")
  } catch {
    return undefined
  }
}

/** Seals and opens grants and registrations under keys derived from `secretKey`. */
export interface TokenSeal {
  readonly sealGrant: (login: string, connectorId: string, grant: UserGrant) => Sealed
  readonly openGrant: (login: string, connectorId: string, sealed: Sealed) => UserGrant | undefined
  readonly sealRegistration: (connectorId: string, registration: ClientRegistration) => Sealed
  readonly openRegistration: (connectorId: string, sealed: Sealed) => ClientRegistration | undefined
  /** A started authorization kept where other replicas read it (a cluster), bound to its state. */
  readonly sealPending: (state: string, json: string) => Sealed
  readonly openPending: (state: string, sealed: Sealed) => string | undefined
  /**
   * Logs, once per connector, that something stored for it did not decrypt: the key changed (or
   * the value was altered or moved), and its users will connect again. Never names a secret.
   */
  readonly warnUndecryptable: (connectorId: string) => Effect.Effect<void>
}

export const makeTokenSeal = (secretKey: Redacted.Redacted<string>): TokenSeal => {
  // Separate keys (HKDF info) for grants and registrations: one can never be read as the other.
  const grantKey = Buffer.from(hkdfSync("sha256", Redacted.value(secretKey), "aperture", "aperture user tokens v1", 32))
  const registrationKey = Buffer.from(
    hkdfSync("sha256", Redacted.value(secretKey), "aperture", "aperture connector registrations v1", 32)
  )
  const pendingKey = Buffer.from(hkdfSync("sha256", Redacted.value(secretKey), "aperture", "aperture pending authorizations v1", 32))
  const grantAad = (login: string, connectorId: string) => `${connectorId}\n${login}`
  const warned = new Set<string>()
  return {
    sealGrant: (login, connectorId, grant) => seal(grantKey, grantAad(login, connectorId), encodeGrant(grant)),
    openGrant: (login, connectorId, sealed) => {
      const text = open(grantKey, grantAad(login, connectorId), sealed)
      return text === undefined ? undefined : Option.getOrUndefined(decodeGrant(text))
    },
    sealRegistration: (connectorId, registration) => seal(registrationKey, connectorId, encodeRegistration(registration)),
    openRegistration: (connectorId, sealed) => {
      const text = open(registrationKey, connectorId, sealed)
      return text === undefined ? undefined : Option.getOrUndefined(decodeRegistration(text))
    },
    sealPending: (state, json) => seal(pendingKey, state, json),
    openPending: (state, sealed) => open(pendingKey, state, sealed),
    warnUndecryptable: (connectorId) =>
      Effect.suspend(() => {
        if (warned.has(connectorId)) return Effect.void
        warned.add(connectorId)
        return Effect.logWarning(
          `stored tokens for connector ${connectorId} could not be decrypted with the configured secretKey; users will reconnect`
        )
      })
  }
}
