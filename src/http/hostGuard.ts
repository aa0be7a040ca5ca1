/**
 * DNS-rebinding protection for the gateway's non-MCP endpoints (the HTTP connector proxy and the
 * admin API): the same `Host`/`Origin` rules as `/v1/mcp`. Without it, a web page the operator
 * visits could rebind its name to 127.0.0.1 and use the proxy's injected credentials as the
 * loopback caller.
 * @module
 */
import { localhostAllowedHostnames, validateHostHeader, validateOriginHeader } from "@modelcontextprotocol/server"
import type { ServerSettings } from "../config/model.js"
import { isLoopbackHost } from "../mcp/McpEndpoint.js"

/** Why a request's `Host` or `Origin` is refused, or `undefined` when they are fine. */
export type HostGuard = (headers: Readonly<Record<string, string | Array<string> | undefined>>) => string | undefined

export const makeHostGuard = (server: ServerSettings): HostGuard => {
  // Configured, or the loopback names when bound to loopback; bound elsewhere without a list,
  // any Host is accepted (the public name is unknown).
  const allowedHosts = server.allowedHosts ?? (isLoopbackHost(server.host) ? localhostAllowedHostnames() : undefined)
  const allowedOrigins = server.allowedOrigins ?? allowedHosts
  return (headers) => {
    const host = headers["host"]
    const hostValue = typeof host === "string" ? host : undefined
    if (allowedHosts !== undefined) {
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
