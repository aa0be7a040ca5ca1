/**
 * Who is asking an admin endpoint: the one check every surface makes (`Identities.admit`:
 * `Host`/`Origin`, then the identity plugins), worded for the admin API: refusals
 * ({@link AdminRefused}) answer as JSON (403, or 401 with a challenge).
 * @module
 */
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { type AnswersHttp, type HttpAnswer, httpResponse } from "../http/httpAnswer.js"
import type { CallerRefused, Identities } from "../identity/Identities.js"
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

/** A refusal of the shared check, worded for the admin API. */
const adminRefusal = (refused: CallerRefused) =>
  httpResponse(
    new AdminRefused({
      status: refused.status,
      reason: refused.reason,
      ...(refused.challenge !== undefined && { challenge: refused.challenge }),
      cause: refused
    }).httpAnswer
  )

export const makeAdminGate = (identities: Identities): AdminGate => {
  const hostRefusal = (request: HttpServerRequest.HttpServerRequest) => {
    const refused = identities.foreignHost(request.headers)
    return refused === undefined ? undefined : httpResponse(new AdminRefused({ status: 403, reason: refused }).httpAnswer)
  }
  const caller = (request: HttpServerRequest.HttpServerRequest) =>
    identities.admit({
      remoteAddress: Option.getOrUndefined(request.remoteAddress),
      headers: request.headers as Readonly<Record<string, string | undefined>>,
      url: new URL(request.url, "http://localhost")
    }).pipe(Effect.either, Effect.map(Either.mapLeft(adminRefusal)))
  return { hostRefusal, caller }
}
