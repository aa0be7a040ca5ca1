/**
 * `jwt({ issuer, audience, jwksUrl?, groupsClaim?, loginClaim?, resource? })`: callers present
 * an OAuth access token that is a signed JWT (`Authorization: Bearer …`) from your IdP.
 *
 * Checked: the signature against the issuer's JWKS (fetched on first use — from `jwksUrl`, or
 * found through the issuer's RFC 8414 / OpenID metadata — cached, and fetched again when a
 * token names a key it does not hold, at most once per {@link JWKS_COOLDOWN_MS}), `iss`, `aud`,
 * and `exp`/`nbf` with {@link LEEWAY_SECONDS} of leeway. A verified token is remembered until it
 * expires (bounded LRU), so a client sending the same token again costs a map lookup, not a
 * signature check. A token from another issuer is not this plugin's: the next plugin may take it.
 * @module
 */
import { discoverAuthorizationServerMetadata } from "@modelcontextprotocol/client"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import {
  createRemoteJWKSet,
  decodeJwt,
  errors,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey
} from "jose"
import { endpointProblem } from "../../src/config/endpointUrl.js"
import { bearerToken, looksLikeJwt } from "../../src/identity/bearerToken.js"
import { defineIdentityPlugin, type Identity, IdentityRejected } from "../../src/plugin/IdentityPlugin.js"
import { VerifiedTokens } from "../../src/identity/verifiedTokens.js"

/** Clock skew tolerated on `exp` and `nbf`. */
export const LEEWAY_SECONDS = 30
/** After fetching the JWKS, an unknown `kid` waits this long before the next fetch (a flood of made-up kids costs one fetch per period). */
export const JWKS_COOLDOWN_MS = 5_000
/** The JWKS is fetched again after this long even when every kid is known (keys get revoked). */
export const JWKS_MAX_AGE_MS = 10 * 60_000
/**
 * A verified token is re-verified after this long even if it expires later: with the JWKS
 * refreshed every {@link JWKS_MAX_AGE_MS}, a withdrawn key stops being honoured within 20 minutes.
 */
export const VERIFIED_TOKEN_MAX_AGE_SECONDS = JWKS_MAX_AGE_MS / 1000
/** After a failed discovery, requests fail at once for this long instead of each trying again. */
const DISCOVERY_BACKOFF_MS = 5_000
/** Verified tokens remembered at most. */
export const MAX_CACHED_TOKENS = 10_000

/** Public-key algorithms only: a JWKS publishes public keys, and `none` or HMAC must never verify. */
const ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"]

const absoluteUrl = (what: string) =>
  Schema.String.pipe(
    Schema.filter((s) => {
      try {
        const url = new URL(s)
        return url.protocol === "https:" || url.protocol === "http:" || `${what} must be an http(s) URL`
      } catch {
        return `${what} must be an absolute URL`
      }
    })
  )

const keysFrom = (what: string) =>
  absoluteUrl(what).pipe(
    Schema.filter((s) => {
      const problem = endpointProblem(new URL(s))
      return problem === undefined || `${what}: ${problem} (signing keys fetched in clear could be swapped on the way)`
    })
  )

const ClaimName = Schema.NonEmptyString.annotations({ message: () => "expected a claim name" })

export const JwtOptions = Schema.Struct({
  /** The `iss` tokens must carry; also where the JWKS is discovered when `jwksUrl` is not given. */
  issuer: Schema.NonEmptyString,
  /** The `aud` tokens must carry (one of them, when a list). */
  audience: Schema.Union(
    Schema.NonEmptyString,
    Schema.NonEmptyArray(Schema.NonEmptyString)
  ).annotations({ message: () => ({ message: "expected a non-empty string or a non-empty list of them", override: true }) }),
  jwksUrl: Schema.optionalWith(keysFrom("jwksUrl"), { exact: true }),
  /** The claim holding the caller's groups (a list, or a space-separated string). Default `groups`. */
  groupsClaim: Schema.optionalWith(ClaimName, { default: () => "groups" }),
  /** The claim holding the caller's login. Default `sub`. */
  loginClaim: Schema.optionalWith(ClaimName, { default: () => "sub" }),
  /** The gateway's public MCP URL, advertised in its protected-resource metadata. Default: from the request's Host. */
  resource: Schema.optionalWith(absoluteUrl("resource"), { exact: true })
}).pipe(
  Schema.filter((o) => {
    if (o.jwksUrl !== undefined) return true
    let url: URL
    try {
      url = new URL(o.issuer)
    } catch {
      return { path: ["issuer"], message: "issuer must be a URL to discover its keys from; or give jwksUrl" }
    }
    const problem = endpointProblem(url)
    return problem === undefined ||
      { path: ["issuer"], message: `keys are discovered from the issuer, and ${problem}; or give jwksUrl` }
  })
)

/** The keys could not be fetched: the IdP (or the way to it) is down, not the caller's fault. */
class KeysUnavailable extends Error {}

const noRedirects: typeof fetch = (input, init) => fetch(input, { ...init, redirect: "manual" })

const discoverJwksUri = async (issuer: string): Promise<URL> => {
  const metadata = await discoverAuthorizationServerMetadata(issuer, { fetchFn: noRedirects })
  const uri = metadata?.jwks_uri
  if (typeof uri !== "string") throw new Error(`no jwks_uri in the metadata of ${issuer}`)
  const url = new URL(uri)
  const problem = endpointProblem(url)
  if (problem !== undefined) throw new Error(`jwks_uri ${uri}: ${problem}`)
  return url
}

/** Why a token was refused, in words a client's user can act on. Never includes the token. */
const reasonOf = (error: unknown, audience: string | ReadonlyArray<string>): string => {
  if (error instanceof IdentityRejected) return error.message
  if (error instanceof KeysUnavailable) return error.message
  if (error instanceof errors.JWTExpired) return "the token has expired"
  if (error instanceof errors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case "aud":
        return `the token is not for this gateway (aud must be ${typeof audience === "string" ? audience : audience.join(" or ")})`
      case "nbf":
        return "the token is not valid yet (nbf)"
      case "exp":
        return "the token has no expiry (exp)"
      default:
        return `claim ${error.claim}: ${error.reason}`
    }
  }
  if (error instanceof errors.JWKSNoMatchingKey) return "the token is signed with a key its issuer does not publish"
  if (error instanceof errors.JWSSignatureVerificationFailed) return "the token's signature is invalid"
  if (error instanceof errors.JOSEAlgNotAllowed) return "the token's signing algorithm is not accepted"
  if (error instanceof errors.JOSEError) return `invalid token (${error.code})`
  return "invalid token"
}

/** A claim holding a list: a JSON array of strings, or a space-separated string (as `scope`). */
const claimList = (value: unknown): ReadonlyArray<string> => {
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === "string" && v !== "")
  if (typeof value === "string") return value.split(/\s+/).filter((v) => v !== "")
  return []
}

export const jwt = defineIdentityPlugin({
  name: "jwt",
  options: JwtOptions,
  consumes: ["authorization"],
  make: (options) =>
    Effect.sync(() => {
      const { audience, groupsClaim, issuer, loginClaim } = options
      const verified = new VerifiedTokens(MAX_CACHED_TOKENS, VERIFIED_TOKEN_MAX_AGE_SECONDS)
      // Tokens being verified now: the same token arriving twice at once is verified once.
      const verifying = new Map<string, Promise<Identity>>()

      let keySet: Promise<JWTVerifyGetKey> | undefined
      let failedDiscovery: { readonly at: number; readonly error: KeysUnavailable } | undefined
      const keys = (): Promise<JWTVerifyGetKey> => {
        if (keySet !== undefined) return keySet
        if (failedDiscovery !== undefined && Date.now() - failedDiscovery.at < DISCOVERY_BACKOFF_MS) {
          return Promise.reject(failedDiscovery.error)
        }
        const url = options.jwksUrl !== undefined ? Promise.resolve(new URL(options.jwksUrl)) : discoverJwksUri(issuer)
        const pending = url.then(
          (jwksUrl) =>
            createRemoteJWKSet(jwksUrl, {
              cooldownDuration: JWKS_COOLDOWN_MS,
              cacheMaxAge: JWKS_MAX_AGE_MS,
              timeoutDuration: 5_000
            }),
          (cause: unknown) => {
            keySet = undefined
            const error = new KeysUnavailable(
              `could not find the signing keys of ${issuer}: ${cause instanceof Error ? cause.message : String(cause)}`
            )
            failedDiscovery = { at: Date.now(), error }
            throw error
          }
        )
        keySet = pending
        return pending
      }

      const verify = async (token: string): Promise<Identity> => {
        const keyOf = await keys()
        let payload: JWTPayload
        try {
          ;({ payload } = await jwtVerify(token, keyOf, {
            issuer,
            audience: typeof audience === "string" ? audience : [...audience],
            clockTolerance: LEEWAY_SECONDS,
            algorithms: ALGORITHMS,
            requiredClaims: ["exp"]
          }))
        } catch (error) {
          // A JWKS that cannot be fetched is the IdP's trouble, reported as such.
          if (error instanceof errors.JWKSTimeout || (error instanceof Error && !(error instanceof errors.JOSEError))) {
            throw new KeysUnavailable(`could not fetch the signing keys of ${issuer}: ${error.message}`)
          }
          throw error
        }
        const login = payload[loginClaim]
        if (typeof login !== "string" || login === "") {
          throw new IdentityRejected({ plugin: "jwt", message: `the token has no ${loginClaim} claim to name the caller` })
        }
        const identity: Identity = { login, groups: claimList(payload[groupsClaim]), tags: [], via: "jwt" }
        verified.set(token, identity, payload.exp! + LEEWAY_SECONDS, Date.now() / 1000)
        return identity
      }

      const verifyOnce = (token: string): Promise<Identity> => {
        let pending = verifying.get(token)
        if (pending === undefined) {
          pending = verify(token).finally(() => verifying.delete(token))
          verifying.set(token, pending)
        }
        return pending
      }

      return {
        authorizationServer: { issuer, resource: options.resource },
        identify: (request) => {
          const token = bearerToken(request.headers["authorization"])
          if (token === undefined || !looksLikeJwt(token)) return Effect.succeed(undefined)
          const known = verified.get(token, Date.now() / 1000)
          if (known !== undefined) return Effect.succeed(known)
          let claimedIssuer: unknown
          try {
            claimedIssuer = decodeJwt(token).iss
          } catch {
            return Effect.succeed(undefined) // shaped like a JWT, but not one: not ours
          }
          if (claimedIssuer !== issuer) return Effect.succeed(undefined)
          return Effect.tryPromise({ try: () => verifyOnce(token), catch: (error) => error }).pipe(
            Effect.catchAll((error) => {
              const rejected = new IdentityRejected({ plugin: "jwt", message: reasonOf(error, audience) })
              return error instanceof KeysUnavailable
                ? Effect.zipRight(Effect.logWarning(`jwt: ${error.message}`), Effect.fail(rejected))
                : Effect.fail(rejected)
            })
          )
        }
      }
    }),
  describe: (options) =>
    `jwt (issuer ${options.issuer}, audience ${typeof options.audience === "string" ? options.audience : options.audience.join(", ")}${
      options.jwksUrl !== undefined ? `, keys ${options.jwksUrl}` : ""
    })`
})
