/**
 * `clientCredentials({ … })`: OAuth 2.0 client credentials. The token is cached until
 * `expires_at − min(60 s, 10 % of lifetime)`, fetched by one request however many calls wait
 * (single-flight), refreshed once on an upstream 401, and never fetched through a redirect.
 * Without `tokenUrl`, an MCP connector discovers it: the upstream's 401 `WWW-Authenticate`
 * → protected resource metadata (RFC 9728) → authorization server metadata (RFC 8414).
 * @module
 */
import { Clock, Duration, Effect, Option, Redacted, Schema } from "effect"
import { discoverOAuthServerInfo, extractWWWAuthenticateParams } from "@modelcontextprotocol/client"
import { AuthError, type AuthContext, type Credential, defineAuthPlugin } from "../../src/auth/AuthPlugin.js"
import { type ClientAuthMethod, type IssuedToken, requestToken } from "../../src/auth/tokenEndpoint.js"
import { describeSecretInput, Secret } from "../../src/config/secret.js"

const HttpUrl = Schema.String.pipe(
  Schema.filter((s) => {
    try {
      const url = new URL(s)
      return url.protocol === "https:" || url.protocol === "http:" || `unsupported scheme "${url.protocol}"`
    } catch {
      return `not a valid URL: "${s}"`
    }
  })
)

export const ClientCredentialsOptions = Schema.Struct({
  tokenUrl: Schema.optionalWith(HttpUrl, { exact: true }),
  clientId: Schema.NonEmptyString,
  clientSecret: Schema.optionalWith(Secret, { exact: true }),
  scopes: Schema.optionalWith(Schema.Array(Schema.NonEmptyString), { exact: true }),
  audience: Schema.optionalWith(Schema.String, { exact: true }),
  resource: Schema.optionalWith(HttpUrl, { exact: true }),
  authMethod: Schema.optionalWith(Schema.Literal("client_secret_basic", "client_secret_post", "private_key_jwt"), {
    exact: true
  }),
  /** A PKCS#8 PEM private key, for `private_key_jwt`. */
  privateKey: Schema.optionalWith(Secret, { exact: true }),
  /** JWS algorithm for `private_key_jwt`; default RS256 (ES256 for an EC key). */
  signingAlg: Schema.optionalWith(Schema.String, { exact: true }),
  /** Lifetime assumed when the token response has no `expires_in`. Default 1 hour. */
  defaultLifetimeSeconds: Schema.optionalWith(Schema.Number.pipe(Schema.positive()), { exact: true })
}).pipe(
  Schema.filter((o) => {
    const method = o.authMethod ?? "client_secret_basic"
    if (method === "private_key_jwt") {
      return o.privateKey !== undefined || { path: ["privateKey"], message: "is required for authMethod \"private_key_jwt\"" }
    }
    return o.clientSecret !== undefined || { path: ["clientSecret"], message: `is required for authMethod "${method}"` }
  })
)

interface CachedToken {
  readonly token: Redacted.Redacted<string>
  readonly headers: { readonly headers: Readonly<Record<string, string>> }
  /** When to fetch a new one (before it expires). */
  readonly refreshAt: number
}

/** Refresh this long before expiry: min(60 s, 10 % of the lifetime). */
export const refreshSkewMillis = (lifetimeMillis: number) => Math.min(60_000, lifetimeMillis * 0.1)

const TOKEN_REQUEST_TIMEOUT = Duration.seconds(30)
const MAX_FAILURE_BACKOFF = 60_000

/** Finds the token endpoint of an MCP upstream that protects itself with OAuth (no redirects followed). */
const discoverTokenEndpoint = (plugin: string, upstream: URL) =>
  Effect.tryPromise({
    try: async (signal) => {
      const noRedirects: typeof fetch = (input, init) => fetch(input, { ...init, redirect: "manual", signal })
      const probe = await noRedirects(upstream, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "ping" })
      })
      await probe.body?.cancel().catch(() => {})
      const { resourceMetadataUrl } = probe.status === 401 ? extractWWWAuthenticateParams(probe) : {}
      const info = await discoverOAuthServerInfo(upstream, {
        ...(resourceMetadataUrl !== undefined && { resourceMetadataUrl }),
        fetchFn: noRedirects
      })
      const endpoint = info.authorizationServerMetadata?.token_endpoint
      if (endpoint === undefined) throw new Error(`no token_endpoint in the metadata of ${info.authorizationServerUrl}`)
      return {
        tokenUrl: new URL(endpoint),
        resource: info.resourceMetadata?.resource
      }
    },
    catch: (cause) =>
      new AuthError({
        plugin,
        message: `token endpoint discovery failed for ${upstream.origin}${upstream.pathname}: ${
          cause instanceof Error ? cause.message : String(cause)
        }`
      })
  })

export const clientCredentials = defineAuthPlugin({
  name: "clientCredentials",
  type: "oauth2_client_credentials",
  options: ClientCredentialsOptions,
  make: (options, context: AuthContext) =>
    Effect.gen(function*() {
      const plugin = "clientCredentials"
      const authMethod: ClientAuthMethod = options.authMethod ?? "client_secret_basic"
      const lock = yield* Effect.makeSemaphore(1)
      let cached: CachedToken | undefined
      let failure: { readonly error: AuthError; readonly until: number; readonly backoff: number } | undefined
      let endpoint: { readonly tokenUrl: URL; readonly resource: string | undefined } | undefined =
        options.tokenUrl === undefined ? undefined : { tokenUrl: new URL(options.tokenUrl), resource: options.resource }

      const resolveEndpoint = Effect.suspend(() => {
        if (endpoint !== undefined) return Effect.succeed(endpoint)
        if (context.upstreamUrl === undefined) {
          return Effect.fail(new AuthError({ plugin, message: "tokenUrl is required (no upstream URL to discover it from)" }))
        }
        return discoverTokenEndpoint(plugin, context.upstreamUrl).pipe(
          Effect.map((found) => {
            endpoint = { tokenUrl: found.tokenUrl, resource: options.resource ?? found.resource ?? context.upstreamUrl?.href }
            return endpoint
          })
        )
      })

      const fetchToken = Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        if (failure !== undefined && now < failure.until) return yield* failure.error
        const { resource, tokenUrl } = yield* resolveEndpoint
        const issued: IssuedToken = yield* requestToken({
          plugin,
          tokenUrl,
          clientId: options.clientId,
          clientSecret: options.clientSecret,
          authMethod,
          privateKey: options.privateKey,
          signingAlg: options.signingAlg,
          scopes: options.scopes ?? [],
          audience: options.audience,
          resource,
          timeout: TOKEN_REQUEST_TIMEOUT
        }).pipe(
          Effect.tapError((error) =>
            Clock.currentTimeMillis.pipe(Effect.map((at) => {
              const backoff = Math.min(MAX_FAILURE_BACKOFF, failure === undefined ? 1_000 : failure.backoff * 2)
              failure = { error, until: at + backoff, backoff }
            }))
          )
        )
        failure = undefined
        const lifetime = (issued.expiresIn ?? options.defaultLifetimeSeconds ?? 3600) * 1000
        const token: CachedToken = {
          token: issued.accessToken,
          headers: { headers: { authorization: `Bearer ${Redacted.value(issued.accessToken)}` } },
          refreshAt: now + lifetime - refreshSkewMillis(lifetime)
        }
        cached = token
        return token
      })

      const fresh = (now: number) => cached !== undefined && now < cached.refreshAt ? cached : undefined

      /** The cached token, or one new token fetched for every concurrent caller at once. */
      const currentToken = Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Option.match(Option.fromNullable(fresh(now)), {
          onSome: Effect.succeed,
          onNone: () =>
            lock.withPermits(1)(
              Effect.flatMap(Clock.currentTimeMillis, (later) => {
                const again = fresh(later)
                return again !== undefined ? Effect.succeed(again) : fetchToken
              })
            )
        }))

      const credential: Credential = {
        authorize: () => Effect.map(currentToken, (t) => t.headers),
        onUnauthorized: (request) =>
          Effect.sync(() => {
            // Drop the token only if it is the one that was refused; a concurrent refresh may
            // already have replaced it.
            const sent = request.headers.get("authorization")
            if (cached !== undefined && sent === cached.headers.headers["authorization"]) cached = undefined
            return true
          })
      }
      return credential
    }),
  describe: (options) =>
    `clientCredentials (client ${options.clientId}, ${options.authMethod ?? "client_secret_basic"}, ${
      options.tokenUrl === undefined ? "token endpoint discovered" : `token endpoint ${options.tokenUrl}`
    }${options.clientSecret === undefined ? "" : `, secret: ${describeSecretInput(options.clientSecret)}`}${
      options.privateKey === undefined ? "" : `, privateKey: ${describeSecretInput(options.privateKey)}`
    })`
})
