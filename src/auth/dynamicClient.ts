/**
 * What a per-user connector learns from the upstream itself: its authorization server
 * (protected resource metadata, RFC 9728 → authorization server metadata, RFC 8414 or OpenID
 * discovery), and a client registered there (RFC 7591). Every exchange is bounded and no
 * redirect is followed; endpoints that would receive secrets must be https (or loopback).
 * @module
 */
import { checkResourceAllowed, resourceUrlFromServerUrl } from "@modelcontextprotocol/client"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { endpointProblem } from "../config/endpointUrl.js"
import { type OAuthAnswer, OAuthEndpointError, oauthErrorOf, oauthExchange, where } from "./oauthExchange.js"

/** Discovery found no usable authorization server; the message says where it looked and what was missing. */
export class DiscoveryFailed extends Data.TaggedError("DiscoveryFailed")<{ readonly message: string }> {}
/** The registration endpoint refused the client (e.g. `invalid_redirect_uri`) or answered nonsense. */
export class RegistrationFailed extends Data.TaggedError("RegistrationFailed")<{
  readonly oauthError: string | undefined
  readonly message: string
}> {}

export interface AuthorizationServer {
  /** The RFC 8707 resource indicator for the upstream (from its metadata, else its URL). */
  readonly resource: string
  readonly issuer: string
  readonly authorizationEndpoint: string
  readonly tokenEndpoint: string
  readonly registrationEndpoint: string | undefined
  readonly revocationEndpoint: string | undefined
  readonly scopesSupported: ReadonlyArray<string> | undefined
}

const ProtectedResourceMetadata = Schema.Struct({
  resource: Schema.optional(Schema.String),
  authorization_servers: Schema.optional(Schema.Array(Schema.String))
})

const ServerMetadata = Schema.Struct({
  issuer: Schema.String,
  authorization_endpoint: Schema.String,
  token_endpoint: Schema.String,
  registration_endpoint: Schema.optional(Schema.String),
  revocation_endpoint: Schema.optional(Schema.String),
  scopes_supported: Schema.optional(Schema.Array(Schema.String)),
  code_challenge_methods_supported: Schema.optional(Schema.Array(Schema.String))
})

/** `https://host/.well-known/<name>/<path>` (RFC 8414 §3.1, RFC 9728 §3.1), then the root form for a URL with a path. */
const wellKnown = (url: URL, name: string): Array<URL> => {
  const path = url.pathname.replace(/\/+$/, "")
  const inserted = new URL(`/.well-known/${name}${path}`, url.origin)
  return path === "" ? [inserted] : [inserted, new URL(`/.well-known/${name}`, url.origin)]
}

/** The first of `urls` answering 200 with JSON, or undefined when none does. */
const firstJson = (urls: ReadonlyArray<URL>): Effect.Effect<{ url: URL; answer: OAuthAnswer } | undefined, OAuthEndpointError> =>
  Effect.gen(function*() {
    for (const url of urls) {
      const answer = yield* oauthExchange({ url, method: "GET" })
      if (answer.status === 200 && answer.json !== undefined) return { url, answer }
    }
    return undefined
  })

const sameIssuer = (a: string, b: string) => a.replace(/\/+$/, "") === b.replace(/\/+$/, "")

/** The `resource_metadata` parameter of a 401's `WWW-Authenticate` (RFC 9728 §5.1). */
const resourceMetadataHint = (header: string | null): string | undefined =>
  header === null ? undefined : /resource_metadata="([^"]+)"/i.exec(header)?.[1]

/** Finds the authorization server of an MCP upstream and what it offers. */
export const discover = (upstreamUrl: string): Effect.Effect<AuthorizationServer, DiscoveryFailed> =>
  Effect.gen(function*() {
    const upstream = yield* Effect.try({
      try: () => new URL(upstreamUrl),
      catch: () => new DiscoveryFailed({ message: `upstream URL is not valid: "${upstreamUrl}"` })
    })
    // An unauthenticated request: a protected MCP server answers 401 and may point at its metadata.
    const probe = yield* oauthExchange({
      url: upstream,
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "ping" })
    }).pipe(Effect.either)
    const hint = Either.isRight(probe) && probe.right.status === 401
      ? resourceMetadataHint(probe.right.headers.get("www-authenticate"))
      : undefined
    const metadataUrls = hint !== undefined
      ? [yield* Effect.try({ try: () => new URL(hint, upstream), catch: () => new DiscoveryFailed({ message: `the upstream's resource_metadata is not a URL: "${hint.slice(0, 200)}"` }) })]
      : wellKnown(upstream, "oauth-protected-resource")
    const found = yield* firstJson(metadataUrls)
    let resource = upstream.href
    let issuer: string
    if (found === undefined) {
      // No RFC 9728 metadata: the 2025-03-26 MCP fallback, the upstream's origin is the authorization server.
      issuer = upstream.origin
    } else {
      const metadata = Schema.decodeUnknownEither(ProtectedResourceMetadata)(found.answer.json)
      const servers = Either.isRight(metadata) ? metadata.right.authorization_servers : undefined
      if (servers === undefined || servers.length === 0) {
        return yield* new DiscoveryFailed({ message: `protected resource metadata at ${where(found.url)} names no authorization_servers` })
      }
      issuer = servers[0]!
      const named = Either.isRight(metadata) ? metadata.right.resource : undefined
      // The metadata must describe this upstream (RFC 9728 §3.3), or tokens would be asked for another resource.
      if (named !== undefined) {
        let allowed: boolean
        try {
          allowed = checkResourceAllowed({ requestedResource: resourceUrlFromServerUrl(upstream), configuredResource: named })
        } catch {
          allowed = false
        }
        if (!allowed) {
          return yield* new DiscoveryFailed({
            message: `protected resource metadata at ${where(found.url)} names resource ${named.slice(0, 200)}, which does not cover ${where(upstream)}`
          })
        }
        resource = named
      }
    }
    return { resource, ...(yield* serverMetadataOf(issuer)) }
  }).pipe(
    Effect.catchTag("OAuthEndpointError", (e) => Effect.fail(new DiscoveryFailed({ message: `authorization server discovery failed: ${e.message}` }))),
    Effect.withSpan("oauth.discovery", { attributes: { "mcp.upstream": upstreamUrl.split("?")[0] } })
  )

/**
 * An authorization server's metadata (RFC 8414, or OpenID Connect discovery) by its issuer, held
 * to the same rules as in {@link discover}: the issuer it names, PKCE S256, endpoints over https
 * (or to this machine).
 */
export const serverMetadata = (issuer: string): Effect.Effect<Omit<AuthorizationServer, "resource">, DiscoveryFailed> =>
  serverMetadataOf(issuer).pipe(
    Effect.catchTag("OAuthEndpointError", (e) => Effect.fail(new DiscoveryFailed({ message: `authorization server discovery failed: ${e.message}` })))
  )

const serverMetadataOf = (issuer: string) =>
  Effect.gen(function*() {
    const issuerUrl = yield* Effect.try({
      try: () => new URL(issuer),
      catch: () => new DiscoveryFailed({ message: `authorization server "${issuer.slice(0, 200)}" is not a URL` })
    })
    const asUrls = [
      ...wellKnown(issuerUrl, "oauth-authorization-server"),
      ...wellKnown(issuerUrl, "openid-configuration"),
      // OpenID Connect Discovery 1.0 appends to the issuer's path.
      new URL(`${issuerUrl.href.replace(/\/+$/, "")}/.well-known/openid-configuration`)
    ]
    const asFound = yield* firstJson(asUrls.filter((u, i) => asUrls.findIndex((o) => o.href === u.href) === i))
    if (asFound === undefined) {
      return yield* new DiscoveryFailed({
        message: `no authorization server metadata for ${where(issuerUrl)} (tried /.well-known/oauth-authorization-server and /.well-known/openid-configuration)`
      })
    }
    const decoded = Schema.decodeUnknownEither(ServerMetadata)(asFound.answer.json)
    if (Either.isLeft(decoded)) {
      return yield* new DiscoveryFailed({
        message: `authorization server metadata at ${where(asFound.url)} lacks issuer, authorization_endpoint or token_endpoint`
      })
    }
    const metadata = decoded.right
    if (!sameIssuer(metadata.issuer, issuer)) {
      return yield* new DiscoveryFailed({ message: `metadata at ${where(asFound.url)} names issuer ${metadata.issuer}, not ${issuer} (RFC 8414 §3.3)` })
    }
    // PKCE S256 is required; metadata that does not list it is refused (MCP authorization).
    if (!(metadata.code_challenge_methods_supported ?? []).includes("S256")) {
      return yield* new DiscoveryFailed({ message: `authorization server ${issuer} does not advertise PKCE S256 (code_challenge_methods_supported)` })
    }
    for (const [name, value] of [["token_endpoint", metadata.token_endpoint], ["registration_endpoint", metadata.registration_endpoint], ["revocation_endpoint", metadata.revocation_endpoint]] as const) {
      if (value === undefined) continue
      let url: URL
      try {
        url = new URL(value)
      } catch {
        return yield* new DiscoveryFailed({ message: `${name} is not a URL: "${value.slice(0, 200)}"` })
      }
      const problem = endpointProblem(url)
      if (problem !== undefined) return yield* new DiscoveryFailed({ message: `${name} ${where(url)}: ${problem}` })
    }
    return {
      issuer: metadata.issuer,
      authorizationEndpoint: metadata.authorization_endpoint,
      tokenEndpoint: metadata.token_endpoint,
      registrationEndpoint: metadata.registration_endpoint,
      revocationEndpoint: metadata.revocation_endpoint,
      scopesSupported: metadata.scopes_supported
    }
  })

export interface RegisterClient {
  readonly registrationEndpoint: string
  readonly redirectUri: string
  readonly clientName: string
  readonly scopes: ReadonlyArray<string>
  /** `client_secret_basic` (default: a confidential client) or `none` (a public client, PKCE only). */
  readonly tokenEndpointAuthMethod?: "client_secret_basic" | "none"
}

export interface RegisteredClient {
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string> | undefined
  /** Epoch seconds when the secret expires; 0 or absent: never (RFC 7591 §3.2.1). */
  readonly clientSecretExpiresAt: number | undefined
}

const RegistrationResponse = Schema.Struct({
  client_id: Schema.NonEmptyString,
  client_secret: Schema.optional(Schema.NonEmptyString),
  client_secret_expires_at: Schema.optional(Schema.Number)
})

/** Registers a client for the authorization code flow (RFC 7591). */
export const register = (request: RegisterClient): Effect.Effect<RegisteredClient, RegistrationFailed> =>
  Effect.gen(function*() {
    const url = yield* Effect.try({
      try: () => new URL(request.registrationEndpoint),
      catch: () => new RegistrationFailed({ oauthError: undefined, message: `registration endpoint is not a URL: "${request.registrationEndpoint}"` })
    })
    const problem = endpointProblem(url)
    if (problem !== undefined) return yield* new RegistrationFailed({ oauthError: undefined, message: `registration endpoint ${where(url)}: ${problem}` })
    const metadata = {
      client_name: request.clientName,
      redirect_uris: [request.redirectUri],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: request.tokenEndpointAuthMethod ?? "client_secret_basic",
      ...(request.scopes.length > 0 && { scope: request.scopes.join(" ") })
    }
    const answer = yield* oauthExchange({ url, method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(metadata) }).pipe(
      Effect.mapError((e) => new RegistrationFailed({ oauthError: undefined, message: e.message }))
    )
    if (answer.status !== 201 && answer.status !== 200) {
      const oauth = oauthErrorOf(answer.json)
      return yield* new RegistrationFailed({
        oauthError: oauth?.error,
        message: `client registration at ${where(url)} refused (HTTP ${answer.status}${
          oauth === undefined ? "" : ` ${oauth.error}${oauth.description === undefined ? "" : `: ${oauth.description}`}`
        })${oauth?.error === "invalid_redirect_uri" ? `; the provider does not accept the redirect URI ${request.redirectUri}` : ""}`
      })
    }
    const decoded = Schema.decodeUnknownEither(RegistrationResponse)(answer.json)
    if (Either.isLeft(decoded)) {
      return yield* new RegistrationFailed({ oauthError: undefined, message: `client registration at ${where(url)} returned no client_id` })
    }
    const expiresAt = decoded.right.client_secret_expires_at
    return {
      clientId: decoded.right.client_id,
      clientSecret: decoded.right.client_secret === undefined ? undefined : Redacted.make(decoded.right.client_secret),
      clientSecretExpiresAt: expiresAt === undefined || expiresAt === 0 ? undefined : expiresAt
    }
  }).pipe(Effect.withSpan("oauth.registration", { attributes: { "oauth.registration_endpoint": request.registrationEndpoint.split("?")[0] } }))
