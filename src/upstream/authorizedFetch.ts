/**
 * The `fetch` every HTTP-based upstream transport uses: the connector's credential is added to
 * each request, and a 401 gets one refresh and one retry. The caller's own `Authorization`
 * never gets here: upstream requests are built by the gateway, not copied from the caller's.
 * @module
 */
import { Effect, Runtime } from "effect"
import type { AuthError, Authorization, Credential, UpstreamRequest } from "../auth/AuthPlugin.js"

export type FetchLike = (url: string | URL, init?: RequestInit) => Promise<Response>

/** Thrown into the MCP SDK when the credential could not be produced; the connector reads `authError`. */
export class CredentialUnavailable extends Error {
  constructor(readonly authError: AuthError) {
    super(authError.message)
    this.name = "CredentialUnavailable"
  }
}

const applyAuthorization = (url: URL, headers: Headers, authorization: Authorization): URL => {
  for (const [name, value] of Object.entries(authorization.headers ?? {})) headers.set(name, value)
  const query = Object.entries(authorization.query ?? {})
  if (query.length === 0) return url
  const withQuery = new URL(url)
  for (const [name, value] of query) withQuery.searchParams.set(name, value)
  return withQuery
}

export interface AuthorizedFetchOptions {
  readonly credential: Credential | undefined
  readonly runtime: Runtime.Runtime<never>
  /** Called with every upstream status, e.g. to notice a refused credential. */
  readonly onResponse?: (response: Response) => void
}

/** Wraps the global `fetch` so each upstream request carries the connector's credential. */
export const authorizedFetch = (options: AuthorizedFetchOptions): FetchLike => {
  const { credential, runtime } = options
  if (credential === undefined) {
    return async (url, init) => {
      const response = await fetch(url, init)
      options.onResponse?.(response)
      return response
    }
  }
  const run = Runtime.runPromise(runtime)
  const authorize = async (request: UpstreamRequest): Promise<URL> => {
    const outcome = await run(Effect.either(credential.authorize(request)))
    if (outcome._tag === "Left") throw new CredentialUnavailable(outcome.left)
    return applyAuthorization(request.url, request.headers, outcome.right)
  }
  return async (input, init) => {
    const url = new URL(input)
    const method = init?.method ?? "GET"
    const body = typeof init?.body === "string" ? init.body : undefined
    const send = async () => {
      const headers = new Headers(init?.headers)
      const request: UpstreamRequest = { url, method, headers, body }
      const target = await authorize(request)
      return { request, response: await fetch(target, { ...init, headers }) }
    }
    const first = await send()
    // A 401 means the upstream refused the credential before acting on the request, so one
    // replay after a refresh is safe — tools/call included.
    if (first.response.status !== 401 || credential.onUnauthorized === undefined || (init?.body != null && body === undefined)) {
      options.onResponse?.(first.response)
      return first.response
    }
    const retry = await run(Effect.either(credential.onUnauthorized(first.request, first.response)))
    if (retry._tag === "Left") throw new CredentialUnavailable(retry.left)
    if (!retry.right) {
      options.onResponse?.(first.response)
      return first.response
    }
    await first.response.body?.cancel().catch(() => {})
    const second = await send()
    options.onResponse?.(second.response)
    return second.response
  }
}
