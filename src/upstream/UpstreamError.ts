/**
 * Why a connector is not serving, in words an operator can act on.
 * @module
 */
import * as Data from "effect/Data"

export class UpstreamError extends Data.TaggedError("UpstreamError")<{
  readonly connectorId: string
  /** `auth`: the credential could not be obtained or was refused (status `misconfigured`); otherwise `down`. */
  readonly kind: "unreachable" | "auth" | "protocol" | "closed"
  readonly message: string
}> {}

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
