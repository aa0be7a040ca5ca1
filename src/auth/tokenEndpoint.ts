/**
 * One OAuth 2.0 token request (RFC 6749 §4.4, client credentials) with the client
 * authentication methods of RFC 6749 §2.3.1 and RFC 7523 (`private_key_jwt`). Redirects are
 * refused, the response is checked with a Schema, and no error message ever holds a secret.
 * @module
 */
import { randomUUID } from "node:crypto"
import { Clock, Duration, Effect, Either, Redacted, Schema } from "effect"
import { importPKCS8, SignJWT } from "jose"
import { AuthError } from "./AuthPlugin.js"

export type ClientAuthMethod = "client_secret_basic" | "client_secret_post" | "private_key_jwt"

export interface TokenRequest {
  readonly plugin: string
  readonly tokenUrl: URL
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string> | undefined
  readonly authMethod: ClientAuthMethod
  readonly privateKey: Redacted.Redacted<string> | undefined
  readonly signingAlg: string | undefined
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
const formEncode = (value: string) => encodeURIComponent(value).replace(/%20/g, "+")

const clientAssertion = (request: TokenRequest, key: Redacted.Redacted<string>) =>
  Effect.gen(function*() {
    const alg = request.signingAlg ?? (Redacted.value(key).includes("EC PRIVATE KEY") ? "ES256" : "RS256")
    const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    return yield* Effect.tryPromise({
      try: async () => {
        const privateKey = await importPKCS8(Redacted.value(key), alg)
        return new SignJWT({})
          .setProtectedHeader({ alg, typ: "JWT" })
          .setIssuer(request.clientId)
          .setSubject(request.clientId)
          .setAudience(request.tokenUrl.href)
          .setJti(randomUUID())
          .setIssuedAt(now)
          .setExpirationTime(now + 60)
          .sign(privateKey)
      },
      catch: (cause) =>
        new AuthError({
          plugin: request.plugin,
          message: `cannot sign the client assertion with privateKey (${alg}): ${
            cause instanceof Error ? cause.message.split("\n")[0] : "invalid key"
          }`
        })
    })
  })

/** Requests one access token. */
export const requestToken = (request: TokenRequest): Effect.Effect<IssuedToken, AuthError> =>
  Effect.gen(function*() {
    const fail = (message: string) => new AuthError({ plugin: request.plugin, message })
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
        headers["authorization"] = "Basic " +
          Buffer.from(`${formEncode(request.clientId)}:${formEncode(secret)}`).toString("base64")
        break
      }
      case "client_secret_post":
        body.set("client_id", request.clientId)
        if (request.clientSecret !== undefined) body.set("client_secret", Redacted.value(request.clientSecret))
        break
      case "private_key_jwt":
        if (request.privateKey === undefined) return yield* fail("private_key_jwt needs privateKey")
        body.set("client_id", request.clientId)
        body.set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        body.set("client_assertion", yield* clientAssertion(request, request.privateKey))
        break
    }

    const response = yield* Effect.tryPromise({
      try: (signal) =>
        fetch(request.tokenUrl, {
          method: "POST",
          headers,
          body,
          redirect: "manual",
          signal: AbortSignal.any([signal, AbortSignal.timeout(Duration.toMillis(request.timeout))])
        }),
      catch: (cause) =>
        fail(
          `token endpoint ${request.tokenUrl.origin}${request.tokenUrl.pathname} unreachable: ${
            cause instanceof Error && cause.name === "TimeoutError"
              ? `no answer within ${Duration.format(request.timeout)}`
              : cause instanceof Error
              ? (cause.cause instanceof Error ? cause.cause.message : cause.message)
              : String(cause)
          }`
        )
    })
    if (response.status >= 300 && response.status < 400) {
      return yield* fail(
        `token endpoint answered a redirect (HTTP ${response.status}); redirects are refused: set tokenUrl to the final URL`
      )
    }
    const text = yield* Effect.promise(() => response.text().catch(() => ""))
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
            error.right.error_description ? `: ${error.right.error_description}` : ""
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
      expiresIn: expiresIn !== undefined && Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : undefined
    }
  })
