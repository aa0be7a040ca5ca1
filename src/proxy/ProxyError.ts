/**
 * Why a request through `/v1/connectors/<id>/<path>` got no upstream answer, as JSON the caller
 * can act on: `{ error, message, connector? }`. Messages name the connector and the upstream's
 * host, never the full upstream URL (it may carry a credential in its query). Each error says how
 * it answers ({@link AnswersHttp}).
 * @module
 */
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Data from "effect/Data"
import { type AnswersHttp, type HttpAnswer, httpResponse } from "../http/httpAnswer.js"

/** The gateway refused the request before contacting the upstream. */
export class ProxyRequestRefused extends Data.TaggedError("ProxyRequestRefused")<{
  readonly status: 400 | 401 | 403 | 404 | 405 | 501 | 503
  readonly code: string
  readonly message: string
  readonly connectorId?: string
  readonly headers?: Readonly<Record<string, string>>
}> implements AnswersHttp {
  get httpAnswer(): HttpAnswer {
    return {
      status: this.status,
      body: { error: this.code, message: this.message, ...(this.connectorId !== undefined && { connector: this.connectorId }) },
      headers: this.headers
    }
  }
}

export type UpstreamFailureKind = "unreachable" | "timeout" | "private_address" | "credential" | "unchecked_error"

const failureCode: Record<UpstreamFailureKind, string> = {
  unreachable: "upstream_unreachable",
  timeout: "upstream_timeout",
  private_address: "upstream_address_refused",
  credential: "credential_unavailable",
  unchecked_error: "upstream_error_unchecked"
}

/**
 * The upstream could not be reached or did not answer in time, its credential is unavailable, or
 * its error answer could not be checked for the credential (see `scrubbedErrorBody.ts`).
 */
export class UpstreamFailed extends Data.TaggedError("UpstreamFailed")<{
  readonly connectorId: string
  readonly kind: UpstreamFailureKind
  readonly message: string
}> implements AnswersHttp {
  get httpAnswer(): HttpAnswer {
    return {
      status: this.kind === "timeout" ? 504 : 502,
      body: { error: failureCode[this.kind], message: this.message, connector: this.connectorId }
    }
  }
}

/** The caller stopped sending its request body for the connector's timeout: its fault, not the upstream's. */
export class CallerBodyStalled extends Data.TaggedError("CallerBodyStalled")<{
  readonly connectorId: string
  readonly message: string
}> implements AnswersHttp {
  get httpAnswer(): HttpAnswer {
    return {
      status: 408,
      body: { error: "request_timeout", message: this.message, connector: this.connectorId },
      headers: { connection: "close" }
    }
  }
}

export type ProxyError = ProxyRequestRefused | UpstreamFailed | CallerBodyStalled

/** The error's answer as a response. */
export const errorResponse = (error: ProxyError): HttpServerResponse.HttpServerResponse => httpResponse(error.httpAnswer)
