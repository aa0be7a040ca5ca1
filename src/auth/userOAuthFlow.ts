/**
 * The OAuth 2.0 authorization code flow (RFC 6749 §4.1, always with PKCE S256) by which a user
 * connects their own account at an upstream: `begin` makes the link the user follows,
 * `complete` takes the code the provider sends back and exchanges it, `refresh` renews the
 * tokens, `revoke` tells the provider to forget them (RFC 7009). Tokens stay `Redacted`, and no
 * error message holds a code, verifier, secret or token.
 * @module
 */
import { randomBytes } from "node:crypto"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberId from "effect/FiberId"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { endpointProblem } from "../config/endpointUrl.js"
import { OAuthEndpointError, oauthErrorOf, oauthExchange, where } from "./oauthExchange.js"
import type { PendingAuthorizations } from "./pendingAuthorizations.js"
import { makePkce } from "./pkce.js"
import { scrubSecrets } from "./scrubSecrets.js"
import { formEncode } from "./tokenEndpoint.js"

/** How long a started authorization may take (login, consent) before its state is refused. */
export const AUTHORIZATION_LIFETIME = Duration.minutes(15)
const REVOKE_TIMEOUT = Duration.seconds(5)

/** Where pending authorizations are kept: in memory on one replica, in Redis in a cluster. */
export class PendingAuthorizationStore extends Context.Tag("aperture/PendingAuthorizationStore")<
  PendingAuthorizationStore,
  PendingAuthorizations
>() {}

// ---- errors: each says what the user or the operator does next ----

/** The authorization was not started here, or so long ago that it is forgotten. */
export class AuthorizationStateUnknown extends Data.TaggedError("AuthorizationStateUnknown")<{}> {
  override get message() {
    return "unknown authorization state: start connecting again from Aperture (this link was not issued here or is long gone)"
  }
}
/** The user took longer than the authorization lifetime. */
export class AuthorizationStateExpired extends Data.TaggedError("AuthorizationStateExpired")<{}> {
  override get message() {
    return `the authorization expired (it must finish within ${Duration.format(AUTHORIZATION_LIFETIME)}): start connecting again`
  }
}
/** The callback was already used (a reload, or a replayed link). */
export class AuthorizationStateUsed extends Data.TaggedError("AuthorizationStateUsed")<{}> {
  override get message() {
    return "this authorization was already completed or refused: start connecting again if the connector is not ready"
  }
}
/** The state was issued to another user or for another connector; it is spent now. */
export class AuthorizationStateForeign extends Data.TaggedError("AuthorizationStateForeign")<{
  readonly reason: "user" | "connector"
}> {
  override get message() {
    return this.reason === "user"
      ? "this authorization was started by another user: sign in as that user, or start connecting yourself"
      : "this authorization was started for another connector: start connecting again from the right connector"
  }
}
/** A setting of the flow is unusable (a URL that does not parse, a secret over plain http). */
export class OAuthConfigInvalid extends Data.TaggedError("OAuthConfigInvalid")<{ readonly message: string }> {}
/**
 * The provider refused the code: `invalid_grant` (code expired or used, wrong PKCE verifier,
 * redirect URI not the one authorized), `invalid_client` (wrong client id or secret), …
 */
export class CodeExchangeRejected extends Data.TaggedError("CodeExchangeRejected")<{
  readonly endpoint: string
  readonly oauthError: string | undefined
  readonly message: string
  /** The user whose flow it was (the state said so), for their connector state. */
  readonly login?: string
}> {}
/** The provider granted an access token but no refresh token: the connector is misconfigured. */
export class NoRefreshToken extends Data.TaggedError("NoRefreshToken")<{
  /** The user whose flow it was (the state said so), for their connector state. */
  readonly login?: string
}> {
  override get message() {
    return "misconfigured: the provider granted no refresh token; ask for offline access (scope offline_access) or enable refresh tokens for the client"
  }
}
/** The provider refused the refresh token (`invalid_grant`: revoked, expired, rotated away): the user must reconnect. */
export class RefreshRejected extends Data.TaggedError("RefreshRejected")<{
  readonly endpoint: string
  readonly description: string | undefined
}> {
  override get message() {
    return `the provider refused the refresh token (invalid_grant${
      this.description === undefined ? "" : `: ${this.description}`
    }): the user must connect again`
  }
}

// ---- tokens ----

/** A user's tokens for one connector, as the provider granted them (assignable to `UserGrant` of userTokens.ts, which stores them). */
export interface GrantedTokens {
  readonly accessToken: Redacted.Redacted<string>
  readonly refreshToken: Redacted.Redacted<string> | undefined
  /** Epoch millis, when the provider said (`expires_in`). */
  readonly expiresAt: number | undefined
  /** The scope granted, when the provider said (it may be narrower than asked). */
  readonly scope: string | undefined
}

const TokenResponse = Schema.Struct({
  access_token: Schema.NonEmptyString,
  token_type: Schema.String,
  expires_in: Schema.optional(Schema.Union(Schema.Number, Schema.NumberFromString)),
  refresh_token: Schema.optional(Schema.NonEmptyString),
  scope: Schema.optional(Schema.String)
})

/** How the client identifies itself at the token and revocation endpoints. */
export interface OAuthClient {
  readonly tokenUrl: string
  readonly clientId: string
  /** Confidential client: `client_secret_basic`. Absent: a public client (`client_id` in the form). */
  readonly clientSecret?: Redacted.Redacted<string> | undefined
}

const parseUrl = (name: string, value: string): Effect.Effect<URL, OAuthConfigInvalid> =>
  Effect.try({ try: () => new URL(value), catch: () => new OAuthConfigInvalid({ message: `${name} is not a valid URL: "${value}"` }) })

/** The token endpoint, refused when a secret, code or refresh token would cross plain http to another host. */
const tokenEndpointOf = (tokenUrl: string) =>
  Effect.flatMap(parseUrl("tokenUrl", tokenUrl), (url) => {
    const problem = endpointProblem(url)
    return problem === undefined ? Effect.succeed(url) : Effect.fail(new OAuthConfigInvalid({ message: `tokenUrl ${where(url)}: ${problem}` }))
  })

/** Adds the client's authentication to a form; returns the secrets it put in. */
const authenticate = (client: OAuthClient, form: URLSearchParams, headers: Record<string, string>): Array<string> => {
  if (client.clientSecret === undefined) {
    form.set("client_id", client.clientId)
    return []
  }
  const secret = Redacted.value(client.clientSecret)
  const basic = Buffer.from(`${formEncode(client.clientId)}:${formEncode(secret)}`).toString("base64")
  headers["authorization"] = `Basic ${basic}`
  return [secret, basic]
}

type TokenFailure = { readonly endpoint: string; readonly status: number; readonly oauth: ReturnType<typeof oauthErrorOf> }

/** One token request; an OAuth error answer comes back as `Left` for the caller to classify. */
const tokenRequest = (client: OAuthClient, form: URLSearchParams, secrets: Array<string>, now: number) =>
  Effect.gen(function*() {
    const url = yield* tokenEndpointOf(client.tokenUrl)
    const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" }
    secrets.push(...authenticate(client, form, headers))
    const answer = yield* oauthExchange({ url, method: "POST", headers, body: form, secrets })
    const refused = oauthErrorOf(answer.json)
    // A provider may echo the request in its description: nothing sent may come back in a message.
    const sent = [...secrets, ...secrets.map(encodeURIComponent), ...secrets.map(formEncode)].sort((a, b) => b.length - a.length)
    const oauth = refused?.description === undefined ? refused : { ...refused, description: scrubSecrets(refused.description, sent) }
    // Some providers (GitHub) answer an OAuth error with HTTP 200.
    if (answer.status !== 200 || oauth !== undefined) {
      return Either.left<TokenFailure>({ endpoint: where(url), status: answer.status, oauth })
    }
    const decoded = Schema.decodeUnknownEither(TokenResponse)(answer.json)
    if (Either.isLeft(decoded)) {
      return yield* new OAuthEndpointError({
        endpoint: where(url),
        message: `${where(url)} returned an invalid token response (expected JSON with access_token and token_type)`
      })
    }
    const token = decoded.right
    if (token.token_type.toLowerCase() !== "bearer") {
      return yield* new OAuthEndpointError({
        endpoint: where(url),
        message: `${where(url)} issued an unsupported token_type "${token.token_type.slice(0, 40)}" (expected Bearer)`
      })
    }
    const expiresIn = token.expires_in
    const tokens: GrantedTokens = {
      accessToken: Redacted.make(token.access_token),
      refreshToken: token.refresh_token === undefined ? undefined : Redacted.make(token.refresh_token),
      expiresAt: expiresIn !== undefined && Number.isFinite(expiresIn) && expiresIn > 0 ? now + expiresIn * 1000 : undefined,
      scope: token.scope
    }
    return Either.right(tokens)
  })

const describe = (failure: TokenFailure) =>
  failure.oauth === undefined
    ? `HTTP ${failure.status}`
    : `${failure.oauth.error}${failure.oauth.description === undefined ? "" : `: ${failure.oauth.description}`}`

// ---- begin / complete ----

export interface BeginAuthorization {
  readonly login: string
  readonly connectorId: string
  readonly authorizationUrl: string
  readonly tokenUrl: string
  readonly clientId: string
  /** `<public origin>/aperture/auth/<connector>/callback`, as registered at the provider. */
  readonly redirectUri: string
  readonly scopes: ReadonlyArray<string>
  /** RFC 8707 resource indicator, sent in the authorization and token requests. */
  readonly resource?: string | undefined
  /** `audience` (Auth0, Okta). */
  readonly audience?: string | undefined
}

export interface StartedAuthorization {
  /** Where to send the user's browser. */
  readonly authUrl: string
  /** Opaque, unguessable, single use; bound to the user and the connector. */
  readonly state: string
}

/** Starts an authorization for a user: the link to follow, and its state kept for the callback. */
export const begin = (
  request: BeginAuthorization
): Effect.Effect<StartedAuthorization, OAuthConfigInvalid, PendingAuthorizationStore> =>
  Effect.gen(function*() {
    const authUrl = yield* parseUrl("authorizationUrl", request.authorizationUrl)
    if (authUrl.protocol !== "https:" && authUrl.protocol !== "http:") {
      return yield* new OAuthConfigInvalid({ message: `authorizationUrl must be http(s), not "${authUrl.protocol}"` })
    }
    yield* tokenEndpointOf(request.tokenUrl)
    yield* parseUrl("redirectUri", request.redirectUri)
    const pkce = yield* makePkce
    const state = randomBytes(32).toString("base64url")
    const now = yield* Clock.currentTimeMillis
    // Parameters already in the configured URL (Google's access_type=offline) stay.
    const params = authUrl.searchParams
    params.set("response_type", "code")
    params.set("client_id", request.clientId)
    params.set("redirect_uri", request.redirectUri)
    if (request.scopes.length > 0) params.set("scope", request.scopes.join(" "))
    params.set("state", state)
    params.set("code_challenge", pkce.challenge)
    params.set("code_challenge_method", pkce.method)
    if (request.resource !== undefined) params.set("resource", request.resource)
    if (request.audience !== undefined) params.set("audience", request.audience)
    const store = yield* PendingAuthorizationStore
    yield* store.put(state, {
      login: request.login,
      connectorId: request.connectorId,
      codeVerifier: pkce.verifier,
      tokenUrl: request.tokenUrl,
      clientId: request.clientId,
      redirectUri: request.redirectUri,
      resource: request.resource,
      expiresAt: now + Duration.toMillis(AUTHORIZATION_LIFETIME)
    })
    return { authUrl: authUrl.href, state }
  })

export interface CompleteAuthorization {
  readonly state: string
  readonly code: string
  /** The connector whose callback received the code (a state from another connector is refused). */
  readonly connectorId: string
  /** The signed-in user at the callback, when known: a state another user began is refused. */
  readonly login?: string | undefined
  /** The connector's client secret; absent for a public client. */
  readonly clientSecret?: Redacted.Redacted<string> | undefined
}

export type CompleteError =
  | AuthorizationStateUnknown
  | AuthorizationStateExpired
  | AuthorizationStateUsed
  | AuthorizationStateForeign
  | OAuthConfigInvalid
  | CodeExchangeRejected
  | NoRefreshToken
  | OAuthEndpointError

/** Spends the state of a callback and checks it was issued, in time, to this user for this connector. */
const claimFor = (request: { readonly state: string; readonly connectorId: string; readonly login?: string | undefined }) =>
  Effect.gen(function*() {
    const store = yield* PendingAuthorizationStore
    const claim = yield* store.claim(request.state)
    if (claim._tag === "Unknown") return yield* new AuthorizationStateUnknown()
    if (claim._tag === "AlreadyUsed") return yield* new AuthorizationStateUsed()
    const entry = claim.entry
    const now = yield* Clock.currentTimeMillis
    if (now >= entry.expiresAt) return yield* new AuthorizationStateExpired()
    if (entry.connectorId !== request.connectorId) return yield* new AuthorizationStateForeign({ reason: "connector" })
    if (request.login !== undefined && entry.login !== request.login) return yield* new AuthorizationStateForeign({ reason: "user" })
    return { entry, now }
  })

/**
 * Finishes an authorization at the callback: the state is checked and spent (whatever follows),
 * then the code exchanged with the PKCE verifier. The connector's secret is only sent once the
 * state is known to be this connector's, so a state cannot steer it to another token endpoint.
 */
export const complete = (
  request: CompleteAuthorization
): Effect.Effect<GrantedTokens & { readonly login: string; readonly connectorId: string }, CompleteError, PendingAuthorizationStore> =>
  Effect.gen(function*() {
    const { entry, now } = yield* claimFor(request)
    const verifier = Redacted.value(entry.codeVerifier)
    const form = new URLSearchParams({
      grant_type: "authorization_code",
      code: request.code,
      redirect_uri: entry.redirectUri,
      code_verifier: verifier
    })
    if (entry.resource !== undefined) form.set("resource", entry.resource)
    const client = { tokenUrl: entry.tokenUrl, clientId: entry.clientId, clientSecret: request.clientSecret }
    const result = yield* tokenRequest(client, form, [request.code, verifier], now)
    if (Either.isLeft(result)) {
      return yield* new CodeExchangeRejected({
        login: entry.login,
        endpoint: result.left.endpoint,
        oauthError: result.left.oauth?.error,
        message: `the provider refused the authorization code at ${result.left.endpoint} (${describe(result.left)}); ${
          result.left.oauth?.error === "invalid_client"
            ? "check the client id and secret"
            : result.left.oauth?.error === "invalid_grant"
            ? "the code expired or was already used, the PKCE verifier did not match, or the redirect URI differs from the one registered: connect again"
            : "check the connector's OAuth settings"
        }`
      })
    }
    if (result.right.refreshToken === undefined) return yield* new NoRefreshToken({ login: entry.login })
    return { ...result.right, login: entry.login, connectorId: entry.connectorId }
  }).pipe(Effect.withSpan("oauth.completeAuthorization", { attributes: { "aperture.connector": request.connectorId } }))

/**
 * The provider sent the user back with an error instead of a code (RFC 6749 §4.1.2.1):
 * `access_denied` (the user declined) or a setting the provider refused (`invalid_scope`,
 * `unauthorized_client`, …).
 */
export class AuthorizationDenied extends Data.TaggedError("AuthorizationDenied")<{
  readonly oauthError: string
  readonly description: string | undefined
}> {
  override get message() {
    const detail = this.description === undefined ? "" : `: ${this.description}`
    return this.oauthError === "access_denied"
      ? `authorization was declined at the provider${detail}; connect again to allow access`
      : `misconfigured: the provider refused the authorization request (${this.oauthError}${detail}); check the connector's client id, scopes and redirect URI`
  }
}

/**
 * The callback carried `error=…` instead of a code: the state is checked and spent as for a
 * code, then the provider's refusal is the answer.
 */
export const refuse = (request: {
  readonly state: string
  readonly error: string
  readonly errorDescription?: string | undefined
  readonly connectorId: string
  readonly login?: string | undefined
}): Effect.Effect<never, Exclude<CompleteError, CodeExchangeRejected | NoRefreshToken | OAuthConfigInvalid | OAuthEndpointError> | AuthorizationDenied, PendingAuthorizationStore> =>
  Effect.gen(function*() {
    yield* claimFor(request)
    return yield* new AuthorizationDenied({ oauthError: request.error.slice(0, 100), description: request.errorDescription?.slice(0, 200) })
  })

// ---- refresh ----

export interface RefreshRequest extends OAuthClient {
  readonly refreshToken: Redacted.Redacted<string>
  readonly resource?: string | undefined
}

/** Renews a user's tokens. The refresh token is kept when the provider does not rotate it. */
export const refresh = (
  request: RefreshRequest
): Effect.Effect<GrantedTokens, RefreshRejected | OAuthConfigInvalid | OAuthEndpointError> =>
  Effect.gen(function*() {
    const refreshToken = Redacted.value(request.refreshToken)
    const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken })
    if (request.resource !== undefined) form.set("resource", request.resource)
    const result = yield* tokenRequest(request, form, [refreshToken], yield* Clock.currentTimeMillis)
    if (Either.isRight(result)) {
      return { ...result.right, refreshToken: result.right.refreshToken ?? request.refreshToken }
    }
    const failure = result.left
    if (failure.oauth?.error === "invalid_grant") {
      return yield* new RefreshRejected({ endpoint: failure.endpoint, description: failure.oauth.description })
    }
    return yield* new OAuthEndpointError({
      endpoint: failure.endpoint,
      message: `token refresh at ${failure.endpoint} failed (${describe(failure)})${
        failure.oauth?.error === "invalid_client" ? ": check the client id and secret" : ""
      }`
    })
  }).pipe(Effect.withSpan("oauth.refresh", { attributes: { "oauth.token_endpoint": request.tokenUrl.split("?")[0] } }))

/**
 * One refresh at a time per key (a user and a connector): callers arriving while one runs wait
 * for its result, and a caller that stops waiting leaves it running for the others (a refresh
 * token the provider rotates must not be spent twice).
 */
export const makeSingleFlight = <A, E>() => {
  const inFlight = new Map<string, Deferred.Deferred<A, E>>()
  return (key: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.suspend(() => {
      const running = inFlight.get(key)
      if (running !== undefined) return Deferred.await(running)
      const done = Deferred.unsafeMake<A, E>(FiberId.none)
      inFlight.set(key, done)
      return Effect.zipRight(
        Effect.forkDaemon(Effect.flatMap(Effect.exit(effect), (exit) => {
          inFlight.delete(key)
          return Deferred.done(done, exit)
        })),
        Deferred.await(done)
      )
    })
}

/** The single-flight key of a user's connector. */
export const userConnectorKey = (login: string, connectorId: string) => `${connectorId}\u0000${login}`

// ---- revoke ----

export interface RevokeRequest extends Omit<OAuthClient, "tokenUrl"> {
  /** The provider's `revocation_endpoint`; absent: nothing to do. */
  readonly revocationEndpoint: string | undefined
  readonly token: Redacted.Redacted<string>
  readonly tokenTypeHint?: "refresh_token" | "access_token"
}

/**
 * Asks the provider to forget a token (RFC 7009), best effort and bounded in time: the user
 * disconnects whatever it answers. True when the provider confirmed.
 */
export const revoke = (request: RevokeRequest): Effect.Effect<boolean> =>
  Effect.gen(function*() {
    if (request.revocationEndpoint === undefined) return false
    const url = yield* tokenEndpointOf(request.revocationEndpoint)
    const token = Redacted.value(request.token)
    const form = new URLSearchParams({ token })
    if (request.tokenTypeHint !== undefined) form.set("token_type_hint", request.tokenTypeHint)
    const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" }
    const secrets = [token, ...authenticate({ ...request, tokenUrl: url.href }, form, headers)]
    const answer = yield* oauthExchange({ url, method: "POST", headers, body: form, secrets, timeout: REVOKE_TIMEOUT })
    if (answer.status === 200) return true
    yield* Effect.logWarning(`token revocation at ${where(url)} answered HTTP ${answer.status}${
      oauthErrorOf(answer.json) === undefined ? "" : ` ${oauthErrorOf(answer.json)!.error}`
    }; the tokens are forgotten here anyway`)
    return false
  }).pipe(
    Effect.catchAll((error) =>
      Effect.as(Effect.logWarning(`token revocation failed (${error.message}); the tokens are forgotten here anyway`), false)
    )
  )
