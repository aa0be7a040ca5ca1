/**
 * `clientCredentials({ … })`: OAuth 2.0 client credentials. The token is cached until
 * `expires_at − min(60 s, 10 % of lifetime)`, fetched by one request however many calls wait
 * (single-flight; a call that stops waiting leaves it running for the others), dropped when the upstream answers 401, and never fetched through a
 * redirect; a failing token endpoint is retried with backoff. Without `tokenUrl`, an MCP
 * connector discovers it (`src/auth/discovery.ts`) and sends the upstream as `resource`.
 * @module
 */
import { createHash } from "node:crypto"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { AuthError, type AuthContext, type Credential, defineAuthPlugin } from "../../src/plugin/AuthPlugin.js"
import type { SharedTokens, SharedTokensUnavailable } from "../../src/plugin/sharedTokens.js"
import { discoverTokenEndpoint } from "../../src/auth/discovery.js"
import { endpointProblem } from "../../src/config/endpointUrl.js"
import { checkSigningKey, type ClientAuthMethod, requestToken, type SigningKey } from "../../src/auth/tokenEndpoint.js"
import { DurationSchema } from "../../src/config/duration.js"
import { jsonAuthForm, JsonSecret, toSecret } from "../../src/config/jsonAuth.js"
import { describeSecretInput, Secret } from "../../src/config/secret.js"

const urlString = (check: (url: URL) => string | undefined) =>
  Schema.String.pipe(
    Schema.filter((s) => {
      let url: URL
      try {
        url = new URL(s)
      } catch {
        return `not a valid URL: "${s}"`
      }
      return check(url) ?? true
    })
  )

/** Where a client secret may go: https, or http to localhost. */
const TokenEndpointUrl = urlString(endpointProblem)
/** An RFC 8707 resource indicator: an absolute URI without a fragment. */
const ResourceIndicator = urlString((url) => url.hash !== "" ? "must not contain a fragment (RFC 8707)" : undefined)

const opt = <A, I>(schema: Schema.Schema<A, I>) => Schema.optionalWith(schema, { exact: true })

/** JWS algorithms for `private_key_jwt` assertions. */
export const SigningAlg = Schema.Literal("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
  .annotations({ message: () => ({ message: "expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA", override: true }) })

/** Client authentication methods at the token endpoint. */
export const AuthMethod = Schema.Literal("client_secret_basic", "client_secret_post", "private_key_jwt")
  .annotations({ message: () => ({ message: "expected client_secret_basic, client_secret_post or private_key_jwt", override: true }) })

export const ClientCredentialsOptions = Schema.Struct({
  /** The token endpoint. Omitted on an MCP connector: discovered from the upstream (RFC 9728 → RFC 8414). */
  tokenUrl: opt(TokenEndpointUrl),
  clientId: Schema.NonEmptyString,
  clientSecret: opt(Secret),
  scopes: opt(Schema.Array(Schema.NonEmptyString)),
  /** Sent as `audience` (Auth0, Okta and others use it to pick the API). */
  audience: opt(Schema.NonEmptyString),
  /** Sent as `resource` (RFC 8707). Default when discovered: the upstream's resource. */
  resource: opt(ResourceIndicator),
  /** How the client authenticates at the token endpoint. Default `client_secret_basic`. */
  authMethod: opt(AuthMethod),
  /** A PKCS#8 PEM private key, for `private_key_jwt`. */
  privateKey: opt(Secret),
  /** JWS algorithm for `private_key_jwt`; default from the key (RS256, ES256/384/512, EdDSA). */
  signingAlg: opt(SigningAlg),
  /** The authorization server's issuer, the `aud` of `private_key_jwt` assertions. Default: discovered, else tokenUrl. */
  issuer: opt(Schema.NonEmptyString),
  /** Lifetime assumed when a token response has no `expires_in`. Default 1 hour. */
  defaultLifetime: opt(DurationSchema)
}).pipe(
  Schema.filter((o) => {
    const method = o.authMethod ?? "client_secret_basic"
    if (method === "private_key_jwt") {
      return o.privateKey !== undefined || { path: ["privateKey"], message: "is required for authMethod \"private_key_jwt\"" }
    }
    return o.clientSecret !== undefined || { path: ["clientSecret"], message: `is required for authMethod "${method}"` }
  })
)

/** Refresh this long before expiry: min(60 s, 10 % of the lifetime). */
export const refreshSkewMillis = (lifetimeMillis: number) => Math.min(60_000, lifetimeMillis * 0.1)

const TOKEN_REQUEST_TIMEOUT = Duration.seconds(30)
/** In a cluster, the refresh lock outlives the token request it covers by this margin. */
const LOCK_TTL_MS = Duration.toMillis(TOKEN_REQUEST_TIMEOUT) + 5_000
/** How often a replica waiting for another's refresh looks for the shared token. */
const SHARED_POLL = Duration.millis(100)
const DEFAULT_LIFETIME = Duration.hours(1)
/** Failure backoff: 1 s doubling, at most 30 s (the reconnect schedule's cap). */
const FIRST_BACKOFF = 1_000
const MAX_BACKOFF = 30_000

interface CachedToken {
  readonly authorization: { readonly headers: Readonly<Record<string, string>> }
  /** When to fetch a new one (before it expires). */
  readonly refreshAt: number
}

const cachedToken = (accessToken: string, refreshAt: number): CachedToken => ({
  authorization: { headers: { authorization: `Bearer ${accessToken}` } },
  refreshAt
})
const bearerOf = (token: CachedToken) => token.authorization.headers["authorization"]!.slice("Bearer ".length)

interface TokenServer {
  readonly tokenUrl: URL
  readonly assertionAudience: string
  readonly resource: string | undefined
}

export const clientCredentials = defineAuthPlugin({
  name: "clientCredentials",
  type: "oauth2_client_credentials",
  options: ClientCredentialsOptions,
  make: (options, context: AuthContext) =>
    Effect.gen(function*() {
      const plugin = "clientCredentials"
      const authMethod: ClientAuthMethod = options.authMethod ?? "client_secret_basic"
      // A bad key is a configuration problem: report it now, not at the first request.
      const signingKey: SigningKey | undefined = authMethod === "private_key_jwt" && options.privateKey !== undefined
        ? yield* checkSigningKey(plugin, options.privateKey, options.signingAlg)
        : undefined
      const defaultLifetime = Duration.toMillis(options.defaultLifetime ?? DEFAULT_LIFETIME)
      const scope = yield* Effect.scope
      /** The token request in flight, which every caller needing a token waits for. */
      let pending: Deferred.Deferred<CachedToken, AuthError> | undefined
      let cached: CachedToken | undefined
      /** The shared key `cached` came from or went to, in a cluster. */
      let cachedKey: string | undefined
      /**
       * Tokens an upstream refused lately. In a cluster a shared read in flight when a token is
       * refused can bring that very token back (another replica still shares it, or the read
       * started before the drop): such a value is never taken again. A few suffice.
       */
      const refused: Array<string> = []
      const noteRefused = (bearer: string) => {
        if (refused.includes(bearer)) return
        refused.push(bearer)
        if (refused.length > 8) refused.shift()
      }
      /** Whether Redis was away at the last try (said once per outage, not per token). */
      let sharingIsDown = false
      const sharingDown = (e: SharedTokensUnavailable) =>
        sharingIsDown ? Effect.void : Effect.zipRight(
          Effect.sync(() => (sharingIsDown = true)),
          Effect.logWarning(`connector ${context.connectorId}: shared tokens unavailable (${e.message}); fetching tokens on this replica until it is back`)
        )
      const sharingUp = Effect.suspend(() =>
        sharingIsDown
          ? Effect.zipRight(Effect.sync(() => (sharingIsDown = false)), Effect.logInfo(`connector ${context.connectorId}: shared tokens available again`))
          : Effect.void
      )
      /** The key of this credential's shared token: what it is for, so a changed config never reads another's. */
      const sharedKeyOf = (found: TokenServer) =>
        createHash("sha256").update(JSON.stringify([
          found.tokenUrl.href,
          options.clientId,
          [...(options.scopes ?? [])].sort(),
          options.audience ?? null,
          found.resource ?? null,
          authMethod
        ])).digest("base64url").slice(0, 32)
      let failure: { readonly error: AuthError; readonly until: number; readonly backoff: number } | undefined
      let server: TokenServer | undefined = options.tokenUrl === undefined ? undefined : {
        tokenUrl: new URL(options.tokenUrl),
        assertionAudience: options.issuer ?? options.tokenUrl,
        resource: options.resource
      }

      const resolveServer: Effect.Effect<TokenServer, AuthError> = Effect.suspend(() => {
        if (server !== undefined) return Effect.succeed(server)
        if (context.upstreamUrl === undefined || !/^https?:$/.test(context.upstreamUrl.protocol)) {
          return Effect.fail(
            new AuthError({ plugin, message: "tokenUrl is required (it can only be discovered from an MCP connector's http(s) url)" })
          )
        }
        return Effect.map(discoverTokenEndpoint(plugin, context.upstreamUrl), (found) => {
          server = {
            tokenUrl: found.tokenUrl,
            assertionAudience: options.issuer ?? found.issuer,
            resource: options.resource ?? found.resource
          }
          return server
        })
      })

      /** A token from the token endpoint, cached here. */
      const requestNewToken = (found: TokenServer, now: number) =>
        Effect.gen(function*() {
          const { assertionAudience, resource, tokenUrl } = found
          const issued = yield* requestToken({
            plugin,
            tokenUrl,
            clientId: options.clientId,
            clientSecret: options.clientSecret,
            authMethod,
            signingKey,
            assertionAudience,
            scopes: options.scopes ?? [],
            audience: options.audience,
            resource,
            timeout: TOKEN_REQUEST_TIMEOUT
          })
          const lifetime = issued.expiresIn === undefined ? defaultLifetime : issued.expiresIn * 1000
          const token = cachedToken(Redacted.value(issued.accessToken), now + lifetime - refreshSkewMillis(lifetime))
          cached = token
          yield* Effect.logDebug(
            `connector ${context.connectorId}: new access token from ${tokenUrl.origin}${tokenUrl.pathname}, ${
              issued.expiresIn === undefined ? `no expires_in (assumed ${lifetime / 1000} s)` : `expires in ${issued.expiresIn} s`
            }`
          )
          return { token, lifetime }
        })

      /**
       * In a cluster: the shared token when it is fresh; else the replica that takes the lock
       * fetches and shares one while the others wait for it (a lock left by a replica that died
       * expires). Redis away: fetched here, as without a cluster.
       */
      const sharedOrNewToken = (shared: SharedTokens, found: TokenServer) => {
        const key = sharedKeyOf(found)
        const fetchAndShare = Effect.gen(function*() {
          const { lifetime, token } = yield* requestNewToken(found, yield* Clock.currentTimeMillis)
          cachedKey = key
          yield* shared.write(key, bearerOf(token), token.refreshAt, lifetime).pipe(Effect.catchAll(sharingDown))
          return token
        }).pipe(Effect.ensuring(shared.unlock(key).pipe(Effect.catchAll(sharingDown))))
        const attempt = (deadline: number): Effect.Effect<CachedToken, AuthError | SharedTokensUnavailable> =>
          Effect.gen(function*() {
            const now = yield* Clock.currentTimeMillis
            const found = yield* shared.read(key)
            yield* sharingUp
            if (found !== undefined && now < found.refreshAt && !refused.includes(found.value)) {
              cached = cachedToken(found.value, found.refreshAt)
              cachedKey = key
              return cached
            }
            if (now >= deadline || (yield* shared.lock(key, LOCK_TTL_MS))) return yield* fetchAndShare
            yield* Effect.sleep(SHARED_POLL)
            return yield* attempt(deadline)
          })
        return Effect.flatMap(Clock.currentTimeMillis, (now) => attempt(now + 2 * LOCK_TTL_MS)).pipe(
          Effect.catchTag("SharedTokensUnavailable", (e) =>
            Effect.zipRight(sharingDown(e), Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.map(requestNewToken(found, now), (r) => r.token))))
        )
      }

      const fetchToken = Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        if (failure !== undefined && now < failure.until) return yield* failure.error
        const found = yield* resolveServer
        const token = context.sharedTokens === undefined
          ? (yield* requestNewToken(found, now)).token
          : yield* sharedOrNewToken(context.sharedTokens, found)
        failure = undefined
        return token
      }).pipe(
        Effect.tapError((error) =>
          Effect.flatMap(Clock.currentTimeMillis, (at) =>
            Effect.sync(() => {
              if (failure?.error === error) return
              const backoff = failure === undefined ? FIRST_BACKOFF : Math.min(MAX_BACKOFF, failure.backoff * 2)
              failure = { error, until: at + backoff, backoff }
              // Discovered metadata may be what changed: look again next time.
              if (options.tokenUrl === undefined) server = undefined
            }))
        )
      )

      const fresh = (now: number) => cached !== undefined && now < cached.refreshAt ? cached : undefined

      /**
       * Starts the one token request, in the credential's scope rather than the caller's fiber:
       * a caller giving up (its timeout, a cancellation) ends only its own wait, and the request
       * goes on for the callers still waiting.
       */
      const startFetch = Effect.flatMap(Deferred.make<CachedToken, AuthError>(), (started) => {
        if (pending !== undefined) return Deferred.await(pending)
        pending = started
        const request = Effect.intoDeferred(fetchToken, started).pipe(
          Effect.ensuring(Effect.sync(() => {
            if (pending === started) pending = undefined
          }))
        )
        return Effect.zipRight(Effect.forkIn(request, scope), Deferred.await(started))
      })

      /** The cached token, or one new token fetched for every concurrent caller at once. */
      const currentToken = Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const token = fresh(now)
        if (token !== undefined) return Effect.succeed(token)
        return pending !== undefined ? Deferred.await(pending) : startFetch
      })

      const credential: Credential = {
        authorize: () => Effect.map(currentToken, (t) => t.authorization),
        onUnauthorized: (request) =>
          Effect.suspend(() => {
            // Drop the token only if it is the one that was refused; a concurrent refresh may
            // already have replaced it.
            const sent = request.headers.get("authorization")
            if (sent?.startsWith("Bearer ") === true) noteRefused(sent.slice("Bearer ".length))
            if (cached === undefined || sent !== cached.authorization.headers["authorization"]) return Effect.succeed(true)
            const refused = cached
            cached = undefined
            // The other replicas must not keep using it either.
            if (context.sharedTokens === undefined || cachedKey === undefined) return Effect.succeed(true)
            return context.sharedTokens.drop(cachedKey, bearerOf(refused)).pipe(Effect.catchAll(sharingDown), Effect.as(true))
          })
      }
      return credential
    }),
  describe: (options) =>
    `clientCredentials (client ${options.clientId}, ${options.authMethod ?? "client_secret_basic"}, ${
      options.tokenUrl === undefined ? "token endpoint discovered" : `token endpoint ${options.tokenUrl}`
    }${options.scopes === undefined ? "" : `, scopes ${options.scopes.join(" ")}`}${
      options.clientSecret === undefined ? "" : `, secret: ${describeSecretInput(options.clientSecret)}`
    }${options.privateKey === undefined ? "" : `, privateKey: ${describeSecretInput(options.privateKey)}`})`
})

/** The JSON config's `{ "type": "oauth2_client_credentials", "client_id": …, … }` (scopes as an array or one space-separated string). */
export const clientCredentialsJson = jsonAuthForm({
  types: ["oauth2_client_credentials"],
  fields: {
    client_id: Schema.NonEmptyString,
    client_secret: opt(JsonSecret),
    token_url: opt(Schema.NonEmptyString),
    scopes: opt(Schema.Union(Schema.Array(Schema.String), Schema.String)),
    audience: opt(Schema.String),
    resource: opt(Schema.String),
    auth_method: opt(AuthMethod),
    private_key: opt(JsonSecret),
    signing_alg: opt(SigningAlg),
    // Aperture extensions, same meaning as in the TS DSL.
    issuer: opt(Schema.NonEmptyString),
    default_lifetime: opt(Schema.Union(Schema.Number, Schema.String))
  },
  jsonNames: {
    clientId: "client_id",
    clientSecret: "client_secret",
    tokenUrl: "token_url",
    authMethod: "auth_method",
    privateKey: "private_key",
    signingAlg: "signing_alg",
    defaultLifetime: "default_lifetime"
  },
  toPlugin: (block) => {
    const scopes = typeof block.scopes === "string" ? block.scopes.split(/\s+/).filter((s) => s.length > 0) : block.scopes
    return clientCredentials({
      clientId: block.client_id,
      ...(block.client_secret !== undefined && { clientSecret: toSecret(block.client_secret) }),
      ...(block.token_url !== undefined && { tokenUrl: block.token_url }),
      ...(scopes !== undefined && { scopes }),
      ...(block.audience !== undefined && { audience: block.audience }),
      ...(block.resource !== undefined && { resource: block.resource }),
      ...(block.auth_method !== undefined && { authMethod: block.auth_method }),
      ...(block.private_key !== undefined && { privateKey: toSecret(block.private_key) }),
      ...(block.signing_alg !== undefined && { signingAlg: block.signing_alg }),
      ...(block.issuer !== undefined && { issuer: block.issuer }),
      ...(block.default_lifetime !== undefined && { defaultLifetime: block.default_lifetime })
    })
  }
})
