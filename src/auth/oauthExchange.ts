/**
 * One bounded HTTP exchange with an OAuth server (token, revocation, registration, metadata
 * endpoints): a deadline, a body read only up to a bound, no redirect followed (it would carry
 * a code, verifier or secret elsewhere), and every secret sent scrubbed from what an error says.
 * @module
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { readBounded } from "../http/boundedBody.js"
import { scrubSecrets } from "./scrubSecrets.js"

/** An OAuth server could not be reached or answered something unusable. */
export class OAuthEndpointError extends Data.TaggedError("OAuthEndpointError")<{
  /** `origin + path` of the endpoint: never its query. */
  readonly endpoint: string
  readonly message: string
}> {}

/** More than any token, metadata or registration answer holds. */
export const OAUTH_BODY_BYTES = 64 * 1024
export const OAUTH_TIMEOUT = Duration.seconds(15)

/** `origin + path` of a URL: never its query, which could carry a key. */
export const where = (url: URL) => `${url.origin}${url.pathname}`

export interface OAuthAnswer {
  readonly status: number
  readonly headers: Headers
  /** The body as JSON, or undefined when it was not JSON (or was cut at the bound). */
  readonly json: unknown
}

export interface OAuthExchange {
  readonly url: URL
  readonly method: "GET" | "POST"
  readonly headers?: Record<string, string>
  readonly body?: URLSearchParams | string
  /** Values sent that must never appear in an error (secrets, codes, verifiers, tokens). */
  readonly secrets?: ReadonlyArray<string>
  readonly timeout?: Duration.Duration
}

/** Sends one request and reads its JSON answer, whatever the status (the caller judges it). */
export const oauthExchange = (exchange: OAuthExchange): Effect.Effect<OAuthAnswer, OAuthEndpointError> => {
  const timeout = exchange.timeout ?? OAUTH_TIMEOUT
  const endpoint = where(exchange.url)
  const fail = (message: string) => new OAuthEndpointError({ endpoint, message: scrubSecrets(message, exchange.secrets ?? []) })
  return Effect.tryPromise({
    try: async (signal) => {
      const response = await fetch(exchange.url, {
        method: exchange.method,
        headers: { accept: "application/json", ...exchange.headers },
        ...(exchange.body !== undefined && { body: exchange.body }),
        redirect: "manual",
        signal: AbortSignal.any([signal, AbortSignal.timeout(Duration.toMillis(timeout))])
      })
      // The deadline covers the body too: the same signal aborts a body that trickles.
      const { cut, text } = await readBounded(response.body as AsyncIterable<Uint8Array> | null, OAUTH_BODY_BYTES)
      let json: unknown
      if (!cut) {
        try {
          json = JSON.parse(text)
        } catch {
          json = undefined
        }
      }
      return { status: response.status, headers: response.headers, json }
    },
    catch: (cause) =>
      fail(`${endpoint} unreachable: ${
        cause instanceof Error && (cause.name === "TimeoutError" || cause.name === "AbortError")
          ? `no answer within ${Duration.format(timeout)}`
          : cause instanceof Error
          ? (cause.cause instanceof Error ? cause.cause.message : cause.message)
          : String(cause)
      }`)
  }).pipe(
    Effect.flatMap((answer) =>
      answer.status >= 300 && answer.status < 400
        ? Effect.fail(fail(`${endpoint} answered a redirect (HTTP ${answer.status}); redirects are refused: configure the final URL`))
        : Effect.succeed(answer)
    )
  )
}

/** `error` and a cut `error_description` of an OAuth error answer (RFC 6749 §5.2), when it is one. */
export const oauthErrorOf = (json: unknown): { readonly error: string; readonly description: string | undefined } | undefined => {
  if (typeof json !== "object" || json === null) return undefined
  const error = (json as Record<string, unknown>)["error"]
  const description = (json as Record<string, unknown>)["error_description"]
  if (typeof error !== "string") return undefined
  return { error: error.slice(0, 100), description: typeof description === "string" ? description.slice(0, 200) : undefined }
}
