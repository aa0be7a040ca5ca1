/**
 * Per-user OAuth in the config: the `userOAuth(…)` / `userOAuth.dynamic(…)` values an `mcp()`
 * connector's `auth` may hold, decoded to {@link UserOAuthSettings}, and how they are described
 * (`aperture check`) and named on the wire (`/api/connectors`' `auth_type`).
 * @module
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import type { UserOAuthInput } from "./dsl.js"
import type { UserOAuthSettings } from "./model.js"
import { endpointProblem } from "./endpointUrl.js"
import { describeSecretInput, Secret } from "./secret.js"
import { hasCredentials, urlSchema } from "./urlSchema.js"

const opt = <A, I>(schema: Schema.Schema<A, I>) => Schema.optionalWith(schema, { exact: true })

/** Whether `u` is a `userOAuth(…)` or `userOAuth.dynamic(…)` value (by its tag, before decoding). */
export const isUserOAuthInput = (u: unknown): u is UserOAuthInput =>
  Predicate.isRecord(u) && (u["_tag"] === "userOAuth" || u["_tag"] === "userOAuth.dynamic")

/**
 * An endpoint of the authorization server: https, or plain http to this machine only (a code or
 * client secret sent over plain http to another host can be read on the way); no fragment
 * (RFC 6749 §3.1) and no credentials in the URL.
 */
const OAuthEndpointUrl = urlSchema((url) =>
  url.protocol !== "https:" && url.protocol !== "http:"
    ? `unsupported scheme "${url.protocol}"; expected https`
    : endpointProblem(url) ?? (url.hash !== ""
    ? "must not contain a fragment"
    : hasCredentials(url)
    ? "credentials in the URL are not allowed; use clientSecret"
    : undefined)
)

/** An RFC 8707 resource indicator: an absolute URI without a fragment. */
const ResourceIndicator = Schema.String.pipe(
  Schema.filter((s) => {
    try {
      return new URL(s).hash === "" || "must not contain a fragment (RFC 8707)"
    } catch {
      return `not a valid URL: "${s}"`
    }
  })
)

const Scopes = Schema.Array(Schema.NonEmptyString)

const AuthorizationCodeSchema = Schema.Struct({
  _tag: Schema.Literal("userOAuth"),
  clientId: Schema.NonEmptyString,
  clientSecret: opt(Secret),
  authorizationUrl: OAuthEndpointUrl,
  tokenUrl: OAuthEndpointUrl,
  scopes: opt(Scopes),
  audience: opt(Schema.NonEmptyString),
  resource: opt(ResourceIndicator)
})

const DynamicSchema = Schema.Struct({
  _tag: Schema.Literal("userOAuth.dynamic"),
  scopes: opt(Scopes)
})

/** A `userOAuth(…)` / `userOAuth.dynamic(…)` value, checked (secrets read, URLs parsed). */
export const UserOAuthSchema = Schema.Union(AuthorizationCodeSchema, DynamicSchema)

/** The settings a decoded value stands for, with the defaults applied. */
export const toUserOAuthSettings = (input: typeof UserOAuthSchema.Type): UserOAuthSettings =>
  input._tag === "userOAuth.dynamic"
    ? { kind: "dynamic", scopes: input.scopes ?? [] }
    : {
      kind: "authorization_code",
      clientId: input.clientId,
      clientSecret: input.clientSecret,
      authorizationUrl: input.authorizationUrl,
      tokenUrl: input.tokenUrl,
      scopes: input.scopes ?? [],
      audience: input.audience,
      resource: input.resource
    }

/** Per-user OAuth as `aperture check` shows it: the client and the provider's host, never the secret itself. */
export const describeUserOAuth = (input: UserOAuthInput): string => {
  const scopes = input.scopes !== undefined && input.scopes.length > 0 ? `, scopes ${input.scopes.join(" ")}` : ""
  if (input._tag === "userOAuth.dynamic") return `per-user OAuth (dynamic registration)${scopes}`
  let host: string
  try {
    host = new URL(input.authorizationUrl).host
  } catch {
    host = "(invalid URL)"
  }
  const secret = input.clientSecret === undefined ? "public client" : `secret: ${describeSecretInput(input.clientSecret)}`
  return `per-user OAuth (authorization code + PKCE) client ${input.clientId} at ${host}${scopes}, ${secret}`
}

/** The `auth_type` `/api/connectors` shows for a per-user connector (the original's JSON `type`). */
export const userOAuthAuthType = (settings: UserOAuthSettings): "oauth2_authorization_code" | "oauth2_dcr" =>
  settings.kind === "dynamic" ? "oauth2_dcr" : "oauth2_authorization_code"
