/**
 * Why a connector is not serving, in words an operator can act on.
 * @module
 */
import * as Data from "effect/Data"

export class UpstreamError extends Data.TaggedError("UpstreamError")<{
  readonly connectorId: string
  /**
   * `auth`: the credential could not be obtained or the upstream refused access (status
   * `misconfigured`); `unauthorized`: the upstream answered 401 — with a credential, it refused
   * it even fresh (`misconfigured`), without one the connector needs auth (`needs_auth`);
   * otherwise `down`.
   */
  readonly kind: "unreachable" | "auth" | "unauthorized" | "protocol" | "closed"
  readonly message: string
}> {}

/** Whether the upstream is fine but the credential is not (or is missing): never `down`. */
export const isCredentialProblem = (error: UpstreamError): boolean => error.kind === "auth" || error.kind === "unauthorized"

/** The innermost useful message of an error thrown by fetch, the SDK or a child process. */
export const describeError = (error: unknown): string => {
  if (!(error instanceof Error)) return String(error)
  const parts: Array<string> = [error.message]
  let cause: unknown = error.cause
  for (let depth = 0; cause instanceof Error && depth < 4; depth++) {
    if (!parts.some((p) => p.includes(cause instanceof Error ? cause.message : ""))) parts.push(cause.message)
    cause = cause.cause
  }
  const code = (error.cause as { code?: unknown } | undefined)?.code
  return parts.join(": ") + (typeof code === "string" && !parts.join("").includes(code) ? ` (${code})` : "")
}
