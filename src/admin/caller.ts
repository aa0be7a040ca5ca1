/**
 * Who is asking an admin endpoint: the same `Host`/`Origin` checks as `/v1/mcp`, then the
 * identity plugins. Refusals are answered as JSON (403 or 401 with a challenge).
 * @module
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { GatewayConfig } from "../config/GatewayConfig.js"
import { makeHostGuard } from "../http/hostGuard.js"
import { Identities, requestOrigin } from "../identity/Identities.js"
import type { Identity } from "../identity/IdentityPlugin.js"

/** The 403 for a request whose `Host` or `Origin` is refused (DNS-rebinding protection), or `undefined`. */
export const hostRefusal = (
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<HttpServerResponse.HttpServerResponse | undefined, never, GatewayConfig> =>
  Effect.map(GatewayConfig, (config) => {
    const refused = makeHostGuard(config.server)(request.headers)
    return refused === undefined ? undefined : HttpServerResponse.unsafeJson({ error: `forbidden: ${refused}` }, { status: 403 })
  })

/** The caller, or the response refusing the request. */
export const adminCaller = (
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<Either.Either<Identity, HttpServerResponse.HttpServerResponse>, never, Identities | GatewayConfig> =>
  Effect.gen(function*() {
    const identities = yield* Identities
    const headers = request.headers as Readonly<Record<string, string | undefined>>
    const refused = yield* hostRefusal(request)
    if (refused !== undefined) return Either.left(refused)
    const caller = yield* identities.identify({
      remoteAddress: Option.getOrUndefined(request.remoteAddress),
      headers,
      url: new URL(request.url, "http://localhost")
    }).pipe(Effect.either)
    return Either.mapLeft(caller, (e) =>
      HttpServerResponse.unsafeJson({ error: `unauthorized: ${e.reason}` }, {
        status: 401,
        headers: { "www-authenticate": identities.challenge(requestOrigin(headers), e) }
      }))
  })
