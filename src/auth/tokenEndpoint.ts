/**
 * One OAuth 2.0 token request (RFC 6749 §4.4, client credentials) with the client
 * authentication methods of RFC 6749 §2.3.1 and RFC 7523 (`private_key_jwt`). Redirects are
 * refused, the response is checked with a Schema, and no error message ever holds a secret.
 * @module
 */
import { createPrivateKey, randomUUID } from "node:crypto"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { importPKCS8, SignJWT } from "jose"
import { readBounded } from "../http/boundedBody.js"
import { AuthError } from "../plugin/AuthPlugin.js"
import { scrubSecrets } from "./scrubSecrets.js"

export type ClientAuthMethod = "client_secret_basic" | "client_secret_post" | "private_key_jwt"

/** A PEM private key checked once, with the JWS algorithm its assertions are signed with. */
export interface SigningKey {
  readonly pem: Redacted.Redacted<string>
  readonly alg: string
}

export interface TokenRequest {
  readonly plugin: string
  readonly tokenUrl: URL
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string> | undefined
  readonly authMethod: ClientAuthMethod
  readonly signingKey: SigningKey | undefined
  /** `aud` of a `private_key_jwt` assertion: the issuer when known, else the token endpoint (RFC 7523 §3). */
  readonly assertionAudience: string
  readonly scopes: ReadonlyArray<string>
  readonly audience: string | undefined
  readonly resource: string | undefined
  readonly timeout: Duration.Duration
}

export interface IssuedToken {
  readonly accessToken: Redacted.Redacted<string>
  /** Seconds, when the server said. */
  readonly expiresIn: number | undefined
}

const TokenResponse = Schema.Struct({
  access_token: Schema.NonEmptyString,
  token_type: Schema.String,
  expires_in: Schema.optional(Schema.Union(Schema.Number, Schema.NumberFromString))
})

const ErrorResponse = Schema.Struct({
  error: Schema.String,
  error_description: Schema.optional(Schema.String)
})

/** `application/x-www-form-urlencoded` encoding of one value, as RFC 6749 §2.3.1 requires before Base64. */
export const formEncode = (value: string) => new URLSearchParams([["v", value]]).toString().slice(2)

/** The JWS algorithm for a PEM key: `signingAlg` when given, else one that fits the key type. */
export const checkSigningKey = (
  plugin: string,
  pem: Redacted.Redacted<string>,
  signingAlg: string | undefined
): Effect.Effect<SigningKey, AuthError> =>
  Effect.try({
    try: () => {
      const key = createPrivateKey(Redacted.value(pem))
      if (signingAlg !== undefined) return { pem, alg: signingAlg }
      switch (key.asymmetricKeyType) {
        case "rsa":
          return { pem, alg: "RS256" }
        case "ec": {
          const curve = key.asymmetricKeyDetails?.namedCurve
          return { pem, alg: curve === "secp384r1" ? "ES384" : curve === "secp521r1" ? "ES512" : "ES256" }
        }
        case "ed25519":
          return { pem, alg: "EdDSA" }
        default:
          throw new Error(`unsupported key type ${key.asymmetricKeyType ?? "unknown"}; set signingAlg`)
      }
    },
    // Node's key errors name the problem, never the key material.
    catch: (cause) =>
      new AuthError({
        plugin,
        message: `privateKey is not a usable PEM private key: ${cause instanceof Error ? cause.message.split("\n")[0] : "invalid key"}`
      })
  })

const clientAssertion = (request: TokenRequest, key: SigningKey) =>
  Effect.gen(function*() {
    const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    return yield* Effect.tryPromise({
      try: async () => {
        const privateKey = await importPKCS8(Redacted.value(key.pem), key.alg)
        return new SignJWT({})
          .setProtectedHeader({ alg: key.alg, typ: "JWT" })
          .setIssuer(request.clientId)
          .setSubject(request.clientId)
          .setAudience(request.assertionAudience)
          .setJti(randomUUID())
          .setIssuedAt(now)
          .setExpirationTime(now + 60)
          .sign(privateKey)
      },
      catch: (cause) =>
        new AuthError({
          plugin: request.plugin,
          message: `cannot sign the client assertion with privateKey (${key.alg}): ${
            cause instanceof Error ? cause.message.split("\n")[0] : "invalid key"
          }`
        })
    })
  })

/** More than any token response or OAuth error holds. */
const TOKEN_RESPONSE_BYTES = 64 * 1024

/** `origin + path` of a URL: never its query, which could carry a key. */
const where = (url: URL) => `${url.origin}${url.pathname}`

/** Requests one access token. */
export const requestToken = (request: TokenRequest): Effect.Effect<IssuedToken, AuthError> =>
  Effect.gen(function*() {
    const secrets: Array<string> = []
    const fail = (message: string) => new AuthError({ plugin: request.plugin, message: scrubSecrets(message, secrets) })
    const body = new URLSearchParams({ grant_type: "client_credentials" })
    if (request.scopes.length > 0) body.set("scope", request.scopes.join(" "))
    if (request.audience !== undefined) body.set("audience", request.audience)
    if (request.resource !== undefined) body.set("resource", request.resource)
    const headers: Record<string, string> = {
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json"
    }
    switch (request.authMethod) {
      case "client_secret_basic": {
        const secret = request.clientSecret === undefined ? "" : Redacted.value(request.clientSecret)
        const basic = Buffer.from(`${formEncode(request.clientId)}:${formEncode(secret)}`).toString("base64")
        secrets.push(secret, basic)
        headers["authorization"] = `Basic ${basic}`
        break
      }
      case "client_secret_post":
        body.set("client_id", request.clientId)
        if (request.clientSecret !== undefined) {
          secrets.push(Redacted.value(request.clientSecret))
          body.set("client_secret", Redacted.value(request.clientSecret))
        }
        break
      case "private_key_jwt": {
        if (request.signingKey === undefined) return yield* fail("private_key_jwt needs privateKey")
        const assertion = yield* clientAssertion(request, request.signingKey)
        secrets.push(assertion)
        body.set("client_id", request.clientId)
        body.set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        body.set("client_assertion", assertion)
        break
      }
    }

    const response = yield* Effect.tryPromise({
      try: (signal) =>
        fetch(request.tokenUrl, {
          method: "POST",
          headers,
          body,
          // A redirect would re-send the credentials to wherever it points (SSRF, secret leak).
          redirect: "manual",
          signal: AbortSignal.any([signal, AbortSignal.timeout(Duration.toMillis(request.timeout))])
        }),
      catch: (cause) =>
        fail(
          `token endpoint ${where(request.tokenUrl)} unreachable: ${
            cause instanceof Error && cause.name === "TimeoutError"
              ? `no answer within ${Duration.format(request.timeout)}`
              : cause instanceof Error
              ? (cause.cause instanceof Error ? cause.cause.message : cause.message)
              : String(cause)
          }`
        )
    })
    if (response.status >= 300 && response.status < 400) {
      yield* Effect.promise(() => response.body?.cancel().catch(() => {}) ?? Promise.resolve())
      return yield* fail(
        `token endpoint ${where(request.tokenUrl)} answered a redirect (HTTP ${response.status}); redirects are refused: set tokenUrl to the final URL`
      )
    }
    // A token response is small; an error page past the bound is not read (only its status is shown then).
    const { text } = yield* Effect.promise(() => readBounded(response.body as AsyncIterable<Uint8Array> | null, TOKEN_RESPONSE_BYTES))
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    if (!response.ok) {
      const error = Schema.decodeUnknownEither(ErrorResponse)(json)
      return yield* fail(
        Either.isRight(error)
          ? `token endpoint returned ${response.status} ${error.right.error}${
            error.right.error_description ? `: ${error.right.error_description.slice(0, 200)}` : ""
          }`
          : `token endpoint returned ${response.status}`
      )
    }
    const token = Schema.decodeUnknownEither(TokenResponse)(json)
    if (Either.isLeft(token)) {
      return yield* fail("token endpoint returned an invalid token response (expected JSON with access_token and token_type)")
    }
    if (token.right.token_type.toLowerCase() !== "bearer") {
      return yield* fail(`token endpoint issued an unsupported token_type "${token.right.token_type}" (expected Bearer)`)
    }
    const expiresIn = token.right.expires_in
    return {
      accessToken: Redacted.make(token.right.access_token),
      // Absent, zero, negative or not a number: unknown, so the configured default applies.
      expiresIn: expiresIn !== undefined && Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : undefined
    }
  }).pipe(
    // Token requests are rare (once per lifetime), so each gets a span; no secret in its attributes.
    Effect.withSpan("oauth.tokenRequest", {
      attributes: {
        "oauth.token_endpoint": where(request.tokenUrl),
        "oauth.client_id": request.clientId,
        "oauth.auth_method": request.authMethod
      }
    })
  )
