/**
 * Why a request through `/v1/connectors/<id>/<path>` got no upstream answer, as JSON the caller
 * can act on: `{ error, message, connector? }`. Messages name the connector and the upstream's
 * host, never the full upstream URL (it may carry a credential in its query).
 * @module
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Data from "effect/Data"

/** The gateway refused the request before contacting the upstream. */
export class ProxyRequestRefused extends Data.TaggedError("ProxyRequestRefused")<{
  readonly status: 400 | 401 | 403 | 404 | 405 | 501 | 503
  readonly code: string
  readonly message: string
  readonly connectorId?: string
  readonly headers?: Readonly<Record<string, string>>
}> {}

export type UpstreamFailureKind = "unreachable" | "timeout" | "private_address" | "credential" | "unchecked_error"

/**
 * The upstream could not be reached or did not answer in time, its credential is unavailable, or
 * its error answer could not be checked for the credential (see `scrubbedErrorBody.ts`).
 */
export class UpstreamFailed extends Data.TaggedError("UpstreamFailed")<{
  readonly connectorId: string
  readonly kind: UpstreamFailureKind
  readonly message: string
}> {}

/** The caller stopped sending its request body for the connector's timeout: its fault, not the upstream's. */
export class CallerBodyStalled extends Data.TaggedError("CallerBodyStalled")<{
  readonly connectorId: string
  readonly message: string
}> {}

export type ProxyError = ProxyRequestRefused | UpstreamFailed | CallerBodyStalled

const failureCode: Record<UpstreamFailureKind, string> = {
  unreachable: "upstream_unreachable",
  timeout: "upstream_timeout",
  private_address: "upstream_address_refused",
  credential: "credential_unavailable",
  unchecked_error: "upstream_error_unchecked"
}

export const errorResponse = (error: ProxyError): HttpServerResponse.HttpServerResponse => {
  if (error._tag === "ProxyRequestRefused") {
    return HttpServerResponse.unsafeJson({
      error: error.code,
      message: error.message,
      ...(error.connectorId !== undefined && { connector: error.connectorId })
    }, { status: error.status, ...(error.headers !== undefined && { headers: error.headers }) })
  }
  if (error._tag === "CallerBodyStalled") {
    return HttpServerResponse.unsafeJson(
      { error: "request_timeout", message: error.message, connector: error.connectorId },
      { status: 408, headers: { connection: "close" } }
    )
  }
  return HttpServerResponse.unsafeJson(
    { error: failureCode[error.kind], message: error.message, connector: error.connectorId },
    { status: error.kind === "timeout" ? 504 : 502 }
  )
}
