/**
 * How an error answers HTTP: its status, JSON body and headers, decided by the error itself so
 * every surface that meets it (the proxy, the admin API, the MCP endpoint) answers alike instead
 * of re-deciding.
 * @module
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"

export interface HttpAnswer {
  readonly status: number
  /** The JSON body. */
  readonly body: Readonly<Record<string, unknown>>
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/** An error that says how it answers HTTP. */
export interface AnswersHttp {
  readonly httpAnswer: HttpAnswer
}

/** The answer as a response. */
export const httpResponse = (answer: HttpAnswer): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(answer.body, {
    status: answer.status,
    ...(answer.headers !== undefined && { headers: answer.headers })
  })
