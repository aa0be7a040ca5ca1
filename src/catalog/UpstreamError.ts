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

/** How much of an error's text is kept for a status, a log line or an answer. */
export const MAX_ERROR_TEXT_CHARS = 2048

/**
 * `text` cut to {@link MAX_ERROR_TEXT_CHARS}, saying how much was left off: an upstream's error
 * page (which the SDK puts whole in its errors) can be megabytes, and a status is read and
 * logged often.
 */
export const boundedErrorText = (text: string): string => {
  if (text.length <= MAX_ERROR_TEXT_CHARS) return text
  // Not between the halves of a surrogate pair.
  const end = /[\ud800-\udbff]/.test(text[MAX_ERROR_TEXT_CHARS - 1] as string) ? MAX_ERROR_TEXT_CHARS - 1 : MAX_ERROR_TEXT_CHARS
  return `${text.slice(0, end)}… (${Buffer.byteLength(text.slice(end))} bytes more)`
}

/** Whether the upstream is fine but the credential is not (or is missing): never `down`. */
export const isCredentialProblem = (error: UpstreamError): boolean => error.kind === "auth" || error.kind === "unauthorized"

/** A socket, DNS or TLS error as Node and undici raise it: what to say is in `code`. */
interface SystemError {
  readonly code: string
  readonly message: string
  readonly address?: string
  readonly port?: number
  readonly hostname?: string
  readonly reason?: string
}

/** What an operator needs to know about a certificate error, by OpenSSL's or Node's code. */
const CERTIFICATE_PROBLEMS: Readonly<Record<string, string>> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: "the certificate is self-signed and not trusted",
  SELF_SIGNED_CERT_IN_CHAIN: "the certificate chain ends in a self-signed CA that is not trusted",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "the certificate's issuer is not trusted (or the chain is incomplete)",
  UNABLE_TO_GET_ISSUER_CERT: "the certificate's issuer is not trusted (or the chain is incomplete)",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "the certificate's issuer is not trusted (or the chain is incomplete)",
  CERT_HAS_EXPIRED: "the certificate has expired",
  CERT_NOT_YET_VALID: "the certificate is not valid yet",
  CERT_REVOKED: "the certificate is revoked",
  ERR_TLS_CERT_ALTNAME_INVALID: "the certificate is for another host name"
}

const endpointOf = (error: SystemError) =>
  error.address === undefined ? "" : ` (${error.address.includes(":") ? `[${error.address}]` : error.address}${error.port === undefined ? "" : `:${error.port}`})`

/** Plain words for a network failure: what went wrong, where, in terms an operator can act on. */
const networkProblem = (error: SystemError): string | undefined => {
  const { code } = error
  switch (code) {
    case "ECONNREFUSED":
      return `connection refused${endpointOf(error)}: nothing is listening there`
    case "ENOTFOUND":
      return `unreachable: DNS name not found${error.hostname === undefined ? "" : ` (${error.hostname})`}`
    case "EAI_AGAIN":
      return `unreachable: DNS lookup failed, for now${error.hostname === undefined ? "" : ` (${error.hostname})`}`
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `unreachable: no route to the host${endpointOf(error)}`
    case "ETIMEDOUT":
    case "UND_ERR_CONNECT_TIMEOUT":
      return `timed out connecting${endpointOf(error)}`
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
      return "timed out waiting for the upstream's answer"
    case "ECONNRESET":
      return `connection reset${endpointOf(error)}`
    case "EPIPE":
    case "UND_ERR_SOCKET":
      return "connection reset: the upstream closed the connection before answering"
    case "ERR_SSL_WRONG_VERSION_NUMBER":
    case "EPROTO":
      return "TLS problem: the upstream does not speak TLS there (an http:// URL?)"
  }
  const certificate = CERTIFICATE_PROBLEMS[code]
  if (certificate !== undefined) {
    return `TLS problem: ${certificate}${code === "ERR_TLS_CERT_ALTNAME_INVALID" && error.reason ? ` (${error.reason})` : ""}`
  }
  if (/^ERR_(SSL|TLS)_/.test(code) || /CERT/.test(code)) return `TLS problem: ${error.message}`
  return undefined
}

const isSystemError = (error: unknown): error is SystemError =>
  error instanceof Error && typeof (error as { code?: unknown }).code === "string"

/** The network failure somewhere in `error`'s causes (fetch wraps it once, the SDK again), said plainly. */
const describeNetworkFailure = (error: unknown, depth = 0): string | undefined => {
  if (!(error instanceof Error) || depth > 5) return undefined
  if (isSystemError(error)) {
    const plain = networkProblem(error)
    if (plain !== undefined) return plain
  }
  // Happy eyeballs tries every address of a name and fails with all their errors.
  if (error instanceof AggregateError) {
    for (const inner of error.errors) {
      const plain = describeNetworkFailure(inner, depth + 1)
      if (plain !== undefined) return plain
    }
  }
  return describeNetworkFailure(error.cause, depth + 1)
}

/**
 * The innermost useful message of an error thrown by fetch, the SDK or a child process; a
 * network failure in plain words (`connection refused (127.0.0.1:8931): …`) rather than the
 * chain of wrappers around it (`Version negotiation probe failed: fetch failed: connect ECONNREFUSED …`).
 */
const describeUnbounded = (error: unknown): string => {
  if (!(error instanceof Error)) return String(error)
  const network = describeNetworkFailure(error)
  if (network !== undefined) return network
  const parts: Array<string> = [error.message]
  let cause: unknown = error.cause
  for (let depth = 0; cause instanceof Error && depth < 4; depth++) {
    if (!parts.some((p) => p.includes(cause instanceof Error ? cause.message : ""))) parts.push(cause.message)
    cause = cause.cause
  }
  const code = (error.cause as { code?: unknown } | undefined)?.code
  return parts.join(": ") + (typeof code === "string" && !parts.join("").includes(code) ? ` (${code})` : "")
}

/** {@link describeUnbounded}, cut to {@link MAX_ERROR_TEXT_CHARS} (the SDK puts a whole error page in its message). */
export const describeError = (error: unknown): string => boundedErrorText(describeUnbounded(error))
