/**
 * `GET /.well-known/oauth-protected-resource` (RFC 9728): tells an MCP client which
 * authorization server issues tokens for this gateway, so it can log in by itself. Served only
 * when an identity plugin accepts such tokens (`jwt`); 404 otherwise. Also at the path-suffixed
 * location for `/v1/mcp` (RFC 9728 §3.1), which clients try first.
 * @module
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import { type Identities, requestOrigin } from "../identity/Identities.js"

export const protectedResource = (identities: Identities) => (request: HttpServerRequest.HttpServerRequest) =>
  Effect.sync(() => {
    const metadata = identities.protectedResource(requestOrigin(request.headers as Readonly<Record<string, string | undefined>>))
    if (metadata === undefined) return HttpServerResponse.empty({ status: 404 })
    // Browser-based MCP clients read it cross-origin; it holds nothing secret.
    return HttpServerResponse.unsafeJson(metadata, {
      headers: { "access-control-allow-origin": "*", "cache-control": "max-age=300" }
    })
  })
