/**
 * Why the gateway's own server could not listen, in words an operator can act on. The platform's
 * `ServeError` says only "An error has occurred"; the reason is in its cause's `code`.
 * @module
 */
import type { ServeError } from "@effect/platform/HttpServerError"
import * as Data from "effect/Data"

export class ListenFailed extends Data.TaggedError("ListenFailed")<{
  readonly host: string
  readonly port: number
  /**
   * `in_use`: another process holds the port; `permission`: the port is privileged (below 1024);
   * `address`: the host is not an address of this machine or does not resolve; `other`: see `message`.
   */
  readonly reason: "in_use" | "permission" | "address" | "other"
  readonly message: string
}> {}

const hostForDisplay = (host: string) => (host.includes(":") ? `[${host}]` : host)

/** The `ListenFailed` a `ServeError` from `server.listen({ host, port })` stands for. */
export const listenFailed = (error: ServeError, host: string, port: number): ListenFailed => {
  const cause: unknown = error.cause
  const code = typeof cause === "object" && cause !== null ? (cause as { code?: unknown }).code : undefined
  const where = `port ${port} on ${hostForDisplay(host)}`
  switch (code) {
    case "EADDRINUSE":
      return new ListenFailed({ host, port, reason: "in_use", message: `${where} is in use` })
    case "EACCES":
      return new ListenFailed({ host, port, reason: "permission", message: `no permission to listen on ${where} (ports below 1024 need privileges)` })
    case "EADDRNOTAVAIL":
      return new ListenFailed({ host, port, reason: "address", message: `cannot listen on ${hostForDisplay(host)}: not an address of this machine` })
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new ListenFailed({ host, port, reason: "address", message: `cannot listen on ${host}: the host name does not resolve` })
    default:
      return new ListenFailed({
        host,
        port,
        reason: "other",
        message: `cannot listen on ${where}: ${cause instanceof Error ? cause.message : String(cause)}`
      })
  }
}
