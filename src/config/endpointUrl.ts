/**
 * Where credentials may be sent: HTTPS, or plain HTTP to this machine only. A client secret
 * or assertion sent over plain HTTP to another host can be read on the way.
 * @module
 */

const LOOPBACK_HOSTS = new Set(["localhost", "[::1]"])

/** Whether `url` points at this machine (localhost, 127.0.0.0/8, ::1). */
export const isLoopback = (url: URL): boolean =>
  LOOPBACK_HOSTS.has(url.hostname) || url.hostname.endsWith(".localhost") || /^127\.\d+\.\d+\.\d+$/.test(url.hostname)

/** Why credentials must not go to `url`, or undefined when they may. */
export const endpointProblem = (url: URL): string | undefined => {
  if (url.protocol === "https:") return undefined
  if (url.protocol === "http:") return isLoopback(url) ? undefined : "plain http is allowed only to localhost; use https"
  return `unsupported scheme "${url.protocol}"`
}
