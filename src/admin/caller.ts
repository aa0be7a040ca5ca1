/**
 * Who is asking an admin endpoint: the same `Host`/`Origin` checks as `/v1/mcp`, then the
 * identity plugins. Refusals ({@link AdminRefused}) answer as JSON (403, or 401 with a challenge).
 * Built once, when the routes are, from the config and the identities service.
 * @module
 */
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { ApertureConfig } from "../config/model.js"
import { type AnswersHttp, type HttpAnswer, httpResponse } from "../http/httpAnswer.js"
import { makeHostGuard } from "../http/hostGuard.js"
import { type Identities, requestOrigin } from "../identity/Identities.js"
import type { Identity } from "../plugin/IdentityPlugin.js"

/**
 * An admin request refused: its `Host` or `Origin` (403, DNS-rebinding protection), or no identity
 * plugin accepted its caller (401 with the identity plugins' challenge; `cause`: their rejection).
 */
export class AdminRefused extends Data.TaggedError("AdminRefused")<{
  readonly status: 401 | 403
  readonly reason: string
  readonly challenge?: string
  readonly cause?: unknown
}> implements AnswersHttp {
  get httpAnswer(): HttpAnswer {
    return {
      status: this.status,
      body: { error: `${this.status === 403 ? "forbidden" : "unauthorized"}: ${this.reason}` },
      headers: this.challenge === undefined ? undefined : { "www-authenticate": this.challenge }
    }
  }
}

export interface AdminGate {
  /** The 403 for a request whose `Host` or `Origin` is refused (DNS-rebinding protection), or `undefined`. */
  readonly hostRefusal: (request: HttpServerRequest.HttpServerRequest) => HttpServerResponse.HttpServerResponse | undefined
  /** The caller, or the response refusing the request. */
  readonly caller: (
    request: HttpServerRequest.HttpServerRequest
  ) => Effect.Effect<Either.Either<Identity, HttpServerResponse.HttpServerResponse>>
}

export const makeAdminGate = (config: ApertureConfig, identities: Identities): AdminGate => {
  const hostGuard = makeHostGuard(config.server)
  const hostRefusal = (request: HttpServerRequest.HttpServerRequest) => {
    const refused = hostGuard(request.headers)
    return refused === undefined ? undefined : httpResponse(new AdminRefused({ status: 403, reason: refused }).httpAnswer)
  }
  const caller = (request: HttpServerRequest.HttpServerRequest) =>
    Effect.gen(function*() {
      const refused = hostRefusal(request)
      if (refused !== undefined) return Either.left(refused)
      const headers = request.headers as Readonly<Record<string, string | undefined>>
      const identified = yield* identities.identify({
        remoteAddress: Option.getOrUndefined(request.remoteAddress),
        headers,
        url: new URL(request.url, "http://localhost")
      }).pipe(Effect.either)
      return Either.mapLeft(identified, (e) =>
        httpResponse(
          new AdminRefused({ status: 401, reason: e.reason, challenge: identities.challenge(requestOrigin(headers), e), cause: e })
            .httpAnswer
        ))
    })
  return { hostRefusal, caller }
}
