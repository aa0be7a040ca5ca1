/**
 * `GET /` and `GET /ui`: the status page. Served with the connector table already filled in (as
 * `/api/connectors` answers the viewer), so the basic state view works without JavaScript; its
 * script then refreshes the table every few seconds and adds the rest:
 *
 * - a connector's detail: status history with reasons, requests/errors/latency per minute, the
 *   tools (descriptions, input schemas), prompts and resources the viewer's grants allow;
 * - "Try it": a form built from a tool's input schema that calls the tool through `/v1/mcp` as
 *   the viewer, and shows the result;
 * - for admins: the audit trail (filtered by user, connector, decision) and the open sessions.
 *
 * A per-user OAuth connector (`auth_type` `oauth2_authorization_code` / `oauth2_dcr`) shows the
 * viewer's own state and a button: Connect (`needs_auth`) or Reconnect (`expired`) POSTs
 * `/api/connectors/<id>/connect` and sends the window to the `auth_url` it answers (the provider
 * brings the browser back to `/aperture/auth/<id>/callback`); Disconnect (`ready`) POSTs
 * `/api/connectors/<id>/disconnect`. The page's requests identify the viewer as every request
 * from this browser does (loopback, or the headers a front proxy adds).
 *
 * One self-contained document (no build step, nothing fetched from elsewhere); its script and
 * style are pinned by hash in the Content-Security-Policy, and upstream-supplied text (errors,
 * tool names, results) is only ever set as text, never as HTML (server-side: escaped).
 * @module
 */
import { createHash } from "node:crypto"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import { CONNECTORS_PREFIX, MCP_PATH } from "../http/paths.js"
import type { AdminGate } from "./caller.js"
import type { ApiConnector, ApiNoAccessConnector } from "./connectorsApi.js"
import { pageScript } from "./dashboard/pageScript.js"
import { pageStyle } from "./dashboard/pageStyle.js"

export { DEFAULT_REFRESH_MS } from "./dashboard/pageScript.js"

const script = pageScript(CONNECTORS_PREFIX)

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === "\"" ? "&quot;" : "&#39;")

interface Listing {
  readonly admin?: boolean
  readonly connectors: ReadonlyArray<ApiConnector | ApiNoAccessConnector>
}

/** The table's rows as the script draws them (without its buttons, which need the script anyway). */
const rowsHtml = (listing: Listing) =>
  listing.connectors.map((c) => {
    const full = c.status === "no_access" ? undefined : c as ApiConnector
    const protocol = c.protocol === "http" || full === undefined ? c.protocol : `mcp (${full.transport})`
    const error = full === undefined ? "" : [full.error, ...(full.warnings ?? [])].filter(Boolean).join("; ")
    const tools = full === undefined ? "" : c.protocol === "http" ? `${CONNECTORS_PREFIX}${c.id}/` : full.tools.join(", ")
    const since = full === undefined ? "" : `<time datetime="${escapeHtml(full.since)}">${escapeHtml(full.since.slice(11, 19))} UTC</time>`
    return `<tr data-connector="${escapeHtml(c.id)}"><td>${escapeHtml(c.id)}</td><td>${escapeHtml(protocol)}</td>` +
      `<td class="status" data-status="${escapeHtml(c.status)}">${escapeHtml(c.status.replace("_", " "))}</td>` +
      `<td>${since}</td><td class="error">${escapeHtml(error)}</td><td class="tools">${escapeHtml(tools)}</td><td></td><td></td></tr>`
  }).join("\n")

const page = (rows: string, problem: string | undefined) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Aperture</title>
<style>${pageStyle}</style>
</head>
<body>
<header>
<h1>Aperture</h1>
<p class="meta">Connectors as you see them · MCP endpoint <code>${MCP_PATH}</code> · <span id="updated">as of page load</span></p>
</header>
<div id="banner" role="alert"${problem === undefined ? "" : " class=\"shown\""}>${escapeHtml(problem ?? "")}</div>
<main>
<section aria-labelledby="connectors-title">
<h2 id="connectors-title" class="visually-hidden">Connectors</h2>
<table>
<thead><tr><th scope="col">Connector</th><th scope="col">Protocol</th><th scope="col">Status</th><th scope="col">Since</th><th scope="col">Last error</th><th scope="col">Tools you may use</th><th scope="col">Your access</th><th scope="col"><span class="visually-hidden">Details</span></th></tr></thead>
<tbody id="rows">
${rows}
</tbody>
</table>
</section>
<section id="detail" class="panel" aria-labelledby="detail-title" hidden></section>
<section id="try" class="panel" aria-labelledby="try-title" hidden></section>
<div id="admin" hidden>
<section class="panel" aria-labelledby="audit-title">
<h2 id="audit-title">Audit trail</h2>
<form id="audit-filter" class="filters" role="search" aria-label="Filter the audit trail">
<div><label for="audit-login">User</label><input id="audit-login" name="login" type="text" autocomplete="off"></div>
<div><label for="audit-connector">Connector</label><input id="audit-connector" name="connector" type="text" autocomplete="off"></div>
<div><label for="audit-decision">Decision</label><select id="audit-decision" name="decision"><option value="">any</option><option value="allowed">allowed</option><option value="denied">denied</option></select></div>
<div><button type="submit">Filter</button></div>
</form>
<p id="audit-off" class="hint" hidden>The audit log is off: add <code>audit: { to: "stdout" }</code> (or a file) to the config to record calls.</p>
<p class="hint" id="audit-count" aria-live="polite"></p>
<table>
<thead><tr><th scope="col">Time</th><th scope="col">User</th><th scope="col">Connector</th><th scope="col">Kind</th><th scope="col">Name</th><th scope="col">Decision</th><th scope="col">Outcome</th><th scope="col" class="num">Duration</th></tr></thead>
<tbody id="audit-rows"></tbody>
</table>
</section>
<section class="panel" aria-labelledby="sessions-title">
<h2 id="sessions-title">Active sessions</h2>
<p class="hint"><span id="session-count"></span> at <code>${MCP_PATH}</code> (2025-era clients; 2026-07-28 requests hold no session). <button type="button" id="sessions-refresh" class="secondary">Refresh sessions</button></p>
<table>
<thead><tr><th scope="col">Session</th><th scope="col">Caller</th><th scope="col">Client</th><th scope="col">Protocol</th><th scope="col" class="num">Age</th><th scope="col" class="num">Idle</th></tr></thead>
<tbody id="session-rows"></tbody>
</table>
</section>
</div>
</main>
<script>${script}</script>
</body>
</html>
`

const headers = {
  "content-security-policy": `default-src 'none'; script-src ${sha256(script)}; style-src ${sha256(pageStyle)}; connect-src 'self'; ` +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache"
}

/** The listing `/api/connectors` gives the viewer, or why there is none. */
const listingOf = (response: HttpServerResponse.HttpServerResponse): Listing | string => {
  const body = response.body
  const text = body._tag === "Uint8Array" ? new TextDecoder().decode(body.body) : undefined
  try {
    const parsed: unknown = text === undefined ? undefined : JSON.parse(text)
    if (response.status === 200 && parsed !== null && typeof parsed === "object" && "connectors" in parsed) return parsed as Listing
    const error = parsed !== null && typeof parsed === "object" && "error" in parsed ? String(parsed.error) : `HTTP ${response.status}`
    return `Cannot read /api/connectors: ${error}`
  } catch {
    return `Cannot read /api/connectors: HTTP ${response.status}`
  }
}

/**
 * The page, its table filled in by the `/api/connectors` handler itself (one source for what a
 * viewer may see). Host/Origin-checked like every endpoint.
 */
export const statusPage = (
  gate: AdminGate,
  connectors: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<HttpServerResponse.HttpServerResponse>
) => (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function*() {
    const refused = gate.hostRefusal(request)
    if (refused !== undefined) return refused
    const listing = listingOf(yield* connectors(request))
    const html = typeof listing === "string" ? page("", listing) : page(rowsHtml(listing), undefined)
    return HttpServerResponse.text(html, { contentType: "text/html; charset=utf-8", headers })
  })
