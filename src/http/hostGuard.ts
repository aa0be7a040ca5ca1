/**
 * DNS-rebinding protection for every endpoint (`/v1/mcp`, the HTTP connector proxy and the admin
 * API): one set of `Host`/`Origin` rules. Without it, a web page the operator
 * visits could rebind its name to 127.0.0.1 and use the proxy's injected credentials as the
 * loopback caller.
 * @module
 */
import { localhostAllowedHostnames, validateHostHeader, validateOriginHeader } from "@modelcontextprotocol/server"

const LOOPBACK_HOSTS = ["127.0.0.1", "::1", "localhost", "[::1]"]
export const isLoopbackHost = (host: string) => LOOPBACK_HOSTS.includes(host) || /^127\./.test(host)

/** Why a request's `Host` or `Origin` is refused, or `undefined` when they are fine. */
export type HostGuard = (headers: Readonly<Record<string, string | Array<string> | undefined>>) => string | undefined

/** The settings the guard reads (the config's `server` block has them). */
export interface HostRules {
  readonly host: string
  readonly allowedHosts?: ReadonlyArray<string> | undefined
  readonly allowedOrigins?: ReadonlyArray<string> | undefined
}

export const makeHostGuard = (server: HostRules): HostGuard => {
  // Configured, or the loopback names when bound to loopback; bound elsewhere without a list,
  // any Host is accepted (the public name is unknown).
  const allowedHosts = server.allowedHosts ?? (isLoopbackHost(server.host) ? localhostAllowedHostnames() : undefined)
  const allowedOrigins = server.allowedOrigins ?? allowedHosts
  return (headers) => {
    const host = headers["host"]
    const hostValue = typeof host === "string" ? host : undefined
    // No Host at all (HTTP/1.0: a load balancer's health check, a script) cannot be a page's
    // rebinding attempt, which a browser always sends with a Host; a wrong one can.
    if (allowedHosts !== undefined && hostValue !== undefined) {
      const checked = validateHostHeader(hostValue, [...allowedHosts])
      if (!checked.ok) return checked.message
    }
    const origin = headers["origin"]
    if (typeof origin === "string" && origin !== "") {
      const originHosts = allowedOrigins ?? [new URL(`http://${hostValue ?? "localhost"}`).hostname]
      const checked = validateOriginHeader(origin, [...originHosts])
      if (!checked.ok) return checked.message
    }
    return undefined
  }
}
