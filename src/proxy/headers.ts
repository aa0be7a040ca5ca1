/**
 * Header hygiene for the HTTP connector proxy (RFC 9110 §7.6.1 and what reverse proxies do):
 * hop-by-hop headers and those `Connection` names are dropped both ways; the caller's
 * credentials (`Authorization`, `Cookie`, `Proxy-*`, and every header a configured identity
 * plugin declares it `consumes`, e.g. `X-API-Key`) never reach the upstream; `Host` and
 * `X-Forwarded-*` are set by the gateway, never taken from the caller; path, method and
 * client-address override headers (`X-Original-URL`, `X-HTTP-Method-Override`, `X-Real-IP`…)
 * are dropped, since the grant was checked against the request line; header names with `_`
 * are dropped (an upstream may read `X_Forwarded_For` as `X-Forwarded-For`). On the way back
 * the upstream's cookies and authentication challenges (meant for the injected credential, not
 * the caller) are dropped, and every response is sandboxed (`Content-Security-Policy: sandbox`)
 * and `nosniff`, as it is served on the gateway's origin.
 * @module
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http"

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "http2-settings"
])

/** Never forwarded upstream: the caller's credentials, and what the gateway sets itself. */
const REQUEST_DROPPED = new Set([
  "host",
  "authorization",
  "cookie",
  "forwarded",
  // Node's server already answered `100 Continue`; the body is streamed as it comes.
  "expect"
])

/**
 * Override headers: frameworks and front proxies that honour them serve another path, method or
 * client address than the one the grant and the connector's `methods` were checked against. A
 * denylist, not an allowlist: REST APIs define their own `X-*` request headers, and an allowlist
 * that keeps those cannot be tighter than this on the `x-` namespace where these live. The
 * families below (and `x-forwarded*`, `x-original-*`, `x-rewrite-*` by prefix) cover what
 * Symfony, Spring, IIS, Express `method-override`, Rails, nginx and the cloud CDNs read.
 */
const OVERRIDES = new Set([
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
  "x-override-url",
  "x-http-destinationurl",
  "x-envoy-original-path",
  "x-host",
  "x-real-ip",
  "x-client-ip",
  "x-cluster-client-ip",
  "x-originating-ip",
  "x-remote-ip",
  "x-remote-addr",
  "x-proxyuser-ip",
  "client-ip",
  "true-client-ip",
  "cf-connecting-ip",
  "fastly-client-ip"
])

/** Override header families, by prefix (`x-forwarded-*` and `x-forwarded` alone, `x-original-url`/`-uri`/`-method`…). */
const isOverride = (name: string) =>
  OVERRIDES.has(name) || name.startsWith("x-forwarded") || name.startsWith("x-original-") || name.startsWith("x-rewrite-")

/** Never returned to the caller: state and challenges that belong to the injected credential, or to the upstream's origin. */
const RESPONSE_DROPPED = new Set([
  "set-cookie",
  "www-authenticate",
  "alt-svc",
  "strict-transport-security"
])

/** Header names listed in `Connection` (those are hop-by-hop too). */
const connectionTokens = (value: string | Array<string> | undefined): ReadonlySet<string> | undefined => {
  if (value === undefined) return undefined
  const joined = Array.isArray(value) ? value.join(",") : value
  const tokens = joined.split(",").map((t) => t.trim().toLowerCase()).filter((t) => t !== "")
  return tokens.length === 0 ? undefined : new Set(tokens)
}

export interface ForwardedFor {
  /** The caller's address as the socket saw it. */
  readonly remoteAddress: string | undefined
  /** `http` or `https`, as the caller reached the gateway. */
  readonly proto: string
  /** The `Host` the caller used. */
  readonly host: string | undefined
  /** Where the connector is mounted, e.g. `/v1/connectors/github`. */
  readonly prefix: string
}

const NONE: ReadonlySet<string> = new Set()

/**
 * The headers to send upstream (without the credential, which the caller of this adds).
 * `consumed`: the lower-case names the configured identity plugins read the caller from.
 */
export const upstreamRequestHeaders = (
  incoming: IncomingHttpHeaders,
  upstreamHost: string,
  forwarded: ForwardedFor,
  consumed: ReadonlySet<string> = NONE
): OutgoingHttpHeaders => {
  const named = connectionTokens(incoming["connection"])
  const out: OutgoingHttpHeaders = {}
  for (const name in incoming) {
    if (
      HOP_BY_HOP.has(name) || REQUEST_DROPPED.has(name) || consumed.has(name) || name.startsWith("proxy-") || isOverride(name) ||
      name.includes("_") || named?.has(name) === true
    ) continue
    const value = incoming[name]
    if (value !== undefined) out[name] = value
  }
  out["host"] = upstreamHost
  if (forwarded.remoteAddress !== undefined) out["x-forwarded-for"] = forwarded.remoteAddress
  out["x-forwarded-proto"] = forwarded.proto
  if (forwarded.host !== undefined) out["x-forwarded-host"] = forwarded.host
  out["x-forwarded-prefix"] = forwarded.prefix
  return out
}

/**
 * Every proxied response is served on the gateway's origin, beside the status page and
 * `/v1/mcp`: `sandbox` gives a proxied page an opaque origin and no scripts, so it cannot call
 * the gateway as the browser's user; `nosniff` keeps a browser from reading a JSON or text body
 * as HTML or script. An upstream's own policy is kept as a second policy (a comma separates
 * policies, and a browser enforces each), so the gateway's `sandbox` applies whatever it says.
 */
const SANDBOX = "sandbox"

/** The upstream's response headers as the caller gets them. */
export const callerResponseHeaders = (incoming: IncomingHttpHeaders): Record<string, string> => {
  const named = connectionTokens(incoming["connection"])
  const out: Record<string, string> = {}
  for (const name in incoming) {
    if (HOP_BY_HOP.has(name) || RESPONSE_DROPPED.has(name) || name.startsWith("proxy-") || named?.has(name) === true) continue
    const value = incoming[name]
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(", ") : value
  }
  const policy = out["content-security-policy"]
  out["content-security-policy"] = policy === undefined || policy.trim() === "" ? SANDBOX : `${policy}, ${SANDBOX}`
  out["x-content-type-options"] = "nosniff"
  return out
}
