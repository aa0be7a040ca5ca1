/**
 * Finds the token endpoint of an MCP upstream the MCP way: the upstream's 401
 * `WWW-Authenticate: … resource_metadata=…` → protected resource metadata (RFC 9728; the
 * `.well-known` location when the header has none) → authorization server metadata (RFC 8414,
 * or OpenID discovery). No redirect is followed on the way.
 * @module
 */
import {
  checkResourceAllowed,
  discoverOAuthServerInfo,
  extractWWWAuthenticateParams,
  resourceUrlFromServerUrl
} from "@modelcontextprotocol/client"
import * as Effect from "effect/Effect"
import { AuthError } from "../plugin/AuthPlugin.js"
import { endpointProblem } from "../config/endpointUrl.js"

export interface DiscoveredServer {
  readonly tokenUrl: URL
  /** The authorization server's issuer identifier. */
  readonly issuer: string
  /** The RFC 8707 resource indicator for this upstream. */
  readonly resource: string
  /** `token_endpoint_auth_methods_supported`, when the server lists them. */
  readonly authMethods: ReadonlyArray<string> | undefined
}

const noRedirects = (signal: AbortSignal): typeof fetch => (input, init) =>
  fetch(input, { ...init, redirect: "manual", signal: init?.signal ? AbortSignal.any([init.signal, signal]) : signal })

const discover = async (upstream: URL, signal: AbortSignal): Promise<DiscoveredServer> => {
  const fetchFn = noRedirects(signal)
  // An unauthenticated request: a protected MCP server answers 401 and points at its metadata.
  const probe = await fetchFn(upstream, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "ping" })
  })
  await probe.body?.cancel().catch(() => {})
  const { resourceMetadataUrl } = probe.status === 401 ? extractWWWAuthenticateParams(probe) : {}
  const info = await discoverOAuthServerInfo(upstream, {
    ...(resourceMetadataUrl !== undefined && { resourceMetadataUrl }),
    fetchFn
  })
  const metadata = info.authorizationServerMetadata
  if (metadata === undefined) throw new Error(`no authorization server metadata at ${info.authorizationServerUrl}`)
  const endpoint = metadata.token_endpoint
  if (typeof endpoint !== "string") throw new Error(`no token_endpoint in the metadata of ${info.authorizationServerUrl}`)
  const tokenUrl = new URL(endpoint)
  const problem = endpointProblem(tokenUrl)
  if (problem !== undefined) throw new Error(`token_endpoint ${endpoint}: ${problem}`)
  const expected = resourceUrlFromServerUrl(upstream)
  const named = info.resourceMetadata?.resource
  // The metadata must describe this upstream (RFC 9728 §3.3), or tokens would be asked for another resource.
  if (named !== undefined && !checkResourceAllowed({ requestedResource: expected, configuredResource: named })) {
    throw new Error(`protected resource metadata names resource ${named}, which does not cover ${expected.href}`)
  }
  return {
    tokenUrl,
    issuer: metadata.issuer,
    resource: named ?? expected.href,
    authMethods: metadata.token_endpoint_auth_methods_supported
  }
}

/** Discovers the token endpoint (and resource indicator) for an MCP upstream. */
export const discoverTokenEndpoint = (plugin: string, upstream: URL): Effect.Effect<DiscoveredServer, AuthError> =>
  Effect.tryPromise({
    try: (signal) => discover(upstream, signal),
    catch: (cause) =>
      new AuthError({
        plugin,
        message: `token endpoint discovery from ${upstream.origin}${upstream.pathname} failed: ${
          cause instanceof Error ? cause.message : String(cause)
        }`
      })
  }).pipe(Effect.withSpan("oauth.discovery", { attributes: { "mcp.upstream": `${upstream.origin}${upstream.pathname}` } }))
