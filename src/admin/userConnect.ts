/**
 * The per-user OAuth routes (`auth/UserAuth.ts` does the work):
 *
 * - `POST /api/connectors/<id>/connect` → `{ "auth_url": "…" }` for the calling user (who must
 *   hold a grant on the connector): the link to open in their browser;
 * - `GET /aperture/auth/<id>/callback`, where the provider sends the browser back: the code is
 *   exchanged and the user's tokens stored; a small page says what happened;
 * - `POST /api/connectors/<id>/disconnect` forgets the calling user's tokens (and revokes them at
 *   the provider when it offers that).
 *
 * The redirect URI is `server.publicUrl` (or the origin the request came to) +
 * `/aperture/auth/<id>/callback`: the one to register at the provider.
 * @module
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import type { UserAuthService } from "../auth/UserAuth.js"
import type { GrantPolicy } from "../grants/GrantPolicy.js"
import type { AdminGate } from "./caller.js"

/** The connector id the route matched (`:id`), decoded by the router. */
const connectorIdOf = Effect.map(HttpRouter.params, (params) => params["id"])

/** The origin the request came to (the gateway speaks plain HTTP; behind TLS set `server.publicUrl`). */
const originOf = (request: HttpServerRequest.HttpServerRequest) => `http://${request.headers["host"] ?? "localhost"}`

const json = (status: number, body: unknown) => HttpServerResponse.unsafeJson(body, { status })

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" })[c]!)

/** The page the browser lands on after the provider: plain, readable, no script. */
const resultPage = (status: number, title: string, detail: string) =>
  HttpServerResponse.text(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} · Aperture</title>` +
      `<meta name="viewport" content="width=device-width,initial-scale=1"><link rel="icon" href="data:,">` +
      `<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#111}` +
      `h1{font-size:1.4rem}a{color:#0645ad}</style></head><body><main><div role="status"><h1>${escapeHtml(title)}</h1>` +
      `<p>${escapeHtml(detail)}</p></div><p><a href="/">Back to Aperture</a></p></main></body></html>`,
    {
      status,
      contentType: "text/html; charset=utf-8",
      headers: {
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
        // Static text only: no script, no remote anything.
        "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
      }
    }
  )

export const userConnectRoutes = (userAuth: UserAuthService, grants: GrantPolicy, gate: AdminGate) => {
  /** The calling user and the per-user connector they may use, or the answer refusing them. */
  const callerFor = (request: HttpServerRequest.HttpServerRequest) =>
    Effect.gen(function*() {
      const caller = yield* gate.caller(request)
      if (caller._tag === "Left") return { refused: caller.left } as const
      const connectorId = yield* connectorIdOf
      const connector = connectorId === undefined ? undefined : userAuth.connectors.get(connectorId)
      if (connector === undefined) {
        return { refused: json(404, { error: `no per-user OAuth connector ${JSON.stringify(connectorId ?? "")}` }) } as const
      }
      if (!grants.isAdmin(caller.right) && !grants.policyOf(caller.right).touches(connector.id, connector.labels)) {
        return { refused: json(403, { error: `forbidden: no grant on connector ${connector.id}` }) } as const
      }
      return { login: caller.right.login, connectorId: connector.id } as const
    })

  const connect = (request: HttpServerRequest.HttpServerRequest) =>
    Effect.gen(function*() {
      const who = yield* callerFor(request)
      if ("refused" in who) return who.refused
      return yield* userAuth.connect(who.login, who.connectorId, originOf(request)).pipe(
        Effect.map(({ authUrl }) => json(200, { auth_url: authUrl })),
        Effect.catchTags({
          NotPerUser: (e) => Effect.succeed(json(404, { error: e.message })),
          UserAuthRequired: (e) => Effect.succeed(json(409, { error: e.message, status: e.state.status })),
          UserAuthUnavailable: (e) => Effect.succeed(json(503, { error: e.message }))
        })
      )
    })

  const disconnect = (request: HttpServerRequest.HttpServerRequest) =>
    Effect.gen(function*() {
      const who = yield* callerFor(request)
      if ("refused" in who) return who.refused
      return yield* userAuth.disconnect(who.login, who.connectorId).pipe(
        Effect.as(json(200, { status: "needs_auth" })),
        Effect.catchTags({
          NotPerUser: (e) => Effect.succeed(json(404, { error: e.message })),
          UserAuthUnavailable: (e) => Effect.succeed(json(503, { error: e.message }))
        })
      )
    })

  const callback = (request: HttpServerRequest.HttpServerRequest) =>
    Effect.gen(function*() {
      const refusedHost = gate.hostRefusal(request)
      if (refusedHost !== undefined) return refusedHost
      const connectorId = yield* connectorIdOf
      if (connectorId === undefined || !userAuth.connectors.has(connectorId)) {
        return resultPage(404, "Unknown connector", `There is no per-user OAuth connector ${JSON.stringify(connectorId ?? "")} here.`)
      }
      // The browser may not identify its user here (an API key is not sent by a browser): the
      // state says whose flow it is. A user it does identify must be the one who started it.
      const caller = yield* gate.caller(request)
      const login = caller._tag === "Right" ? caller.right.login : undefined
      const query = new URL(request.url, "http://localhost").searchParams
      return yield* userAuth.callback(connectorId, query, login).pipe(
        Effect.map((done) =>
          resultPage(200, `Connected ${connectorId}`, `${done.login} can now use ${connectorId} through Aperture. You can close this page.`)
        ),
        Effect.catchTags({
          CallbackRefused: (e) => Effect.succeed(resultPage(400, `Could not connect ${connectorId}`, e.reason)),
          UserAuthRequired: (e) => Effect.succeed(resultPage(400, `Could not connect ${connectorId}`, e.message)),
          NotPerUser: (e) => Effect.succeed(resultPage(404, "Unknown connector", e.message)),
          UserAuthUnavailable: (e) => Effect.succeed(resultPage(503, `Could not connect ${connectorId}`, `${e.message}; try again`))
        })
      )
    })

  return { connect, disconnect, callback }
}
