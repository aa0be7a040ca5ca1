/**
 * `GET /` and `GET /ui`: a small static status page over `/api/connectors` — each connector, its
 * state and last error, and the tools the viewer may use — refreshed every few seconds. One
 * self-contained document (no build step, nothing fetched from elsewhere); its script and
 * style are pinned by hash in the Content-Security-Policy, and upstream-supplied text (errors,
 * tool names) is only ever set as text, never as HTML.
 *
 * A per-user OAuth connector (`auth_type` `oauth2_authorization_code` / `oauth2_dcr`) shows the
 * viewer's own state and a button: Connect (`needs_auth`) or Reconnect (`expired`) POSTs
 * `/api/connectors/<id>/connect` and sends the window to the `auth_url` it answers (the provider
 * brings the browser back to `/aperture/auth/<id>/callback`); Disconnect (`ready`) POSTs
 * `/api/connectors/<id>/disconnect`. The page's requests identify the viewer as every request
 * from this browser does (loopback, or the headers a front proxy adds).
 * @module
 */
import { createHash } from "node:crypto"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import { CONNECTORS_PREFIX, MCP_PATH } from "../http/paths.js"
import type { AdminGate } from "./caller.js"

/** How often the page re-reads `/api/connectors`, unless `?refresh=<ms>` says otherwise. */
export const DEFAULT_REFRESH_MS = 2000

const style = `
:root { color-scheme: light dark; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --muted: #6e7781; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
p.meta { color: var(--muted); margin: 0 0 1.5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .45rem .6rem; border-bottom: 1px solid #8884; }
th { font-weight: 600; }
.status { font-weight: 600; white-space: nowrap; }
.status[data-status=ready] { color: var(--ok); }
.status[data-status=connecting], .status[data-status=needs_auth], .status[data-status=expired] { color: var(--warn); }
.status[data-status=down], .status[data-status=misconfigured] { color: var(--bad); }
.status[data-status=no_access] { color: var(--muted); }
.error { color: var(--bad); font-family: ui-monospace, monospace; font-size: 12px; }
.tools { font-family: ui-monospace, monospace; font-size: 12px; color: var(--muted); }
/* White on #0969da is 5.1:1; the secondary button takes the page's own text colour. */
button { font: inherit; padding: .2rem .7rem; border-radius: 6px; border: 1px solid #0969da; background: #0969da; color: #fff; cursor: pointer; white-space: nowrap; }
button.secondary { background: transparent; color: inherit; border-color: currentColor; }
button:focus-visible { outline: 3px solid #0969da; outline-offset: 2px; }
button:disabled { opacity: .6; cursor: progress; }
#banner { display: none; padding: .5rem .75rem; margin-bottom: 1rem; border: 1px solid var(--bad); color: var(--bad); }
#banner.shown { display: block; }
`

const script = `
const refreshMs = Number(new URLSearchParams(location.search).get("refresh")) || ${DEFAULT_REFRESH_MS};
const rows = document.getElementById("rows");
const banner = document.getElementById("banner");
const updated = document.getElementById("updated");
const cell = (text, className) => {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text;
  return td;
};
const perUser = (c) => c.auth_type === "oauth2_authorization_code" || c.auth_type === "oauth2_dcr";
// The viewer's own action on a per-user connector, from their state in /api/connectors.
const actionOf = (c) =>
  !perUser(c) ? undefined
  : c.status === "needs_auth" ? { action: "connect", label: "Connect" }
  : c.status === "expired" ? { action: "connect", label: "Reconnect" }
  : c.status === "ready" ? { action: "disconnect", label: "Disconnect" }
  : undefined;
const act = async (button, id, action) => {
  button.disabled = true;
  try {
    const response = await fetch("/api/connectors/" + encodeURIComponent(id) + "/" + action, { method: "POST", cache: "no-store" });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || response.statusText);
    if (action === "connect") {
      // Off to the provider; it sends the browser back to the gateway's callback page.
      location.assign(data.auth_url);
      return;
    }
    banner.className = "";
    schedule(0);
  } catch (error) {
    banner.textContent = (action === "connect" ? "Cannot connect " : "Cannot disconnect ") + id + ": " + error.message;
    banner.className = "shown";
    button.disabled = false;
  }
};
const actionCell = (c) => {
  const td = document.createElement("td");
  const what = actionOf(c);
  if (what === undefined) return td;
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = what.label;
  button.setAttribute("aria-label", what.label + " " + c.id);
  button.dataset.action = what.action;
  if (what.action === "disconnect") button.className = "secondary";
  button.addEventListener("click", () => act(button, c.id, what.action));
  td.appendChild(button);
  return td;
};
const render = (connectors) => {
  // Rows are rebuilt on every refresh: keep keyboard focus on the same connector's button.
  const focused = document.activeElement && document.activeElement.closest ? document.activeElement.closest("tr[data-connector]") : null;
  const focusedId = focused && document.activeElement.tagName === "BUTTON" ? focused.dataset.connector : undefined;
  const body = document.createDocumentFragment();
  for (const c of connectors) {
    const tr = document.createElement("tr");
    tr.dataset.connector = c.id;
    tr.appendChild(cell(c.id));
    tr.appendChild(cell(c.protocol === "http" || !c.transport ? c.protocol : "mcp (" + c.transport + ")"));
    const status = cell(c.status.replace("_", " "), "status");
    status.dataset.status = c.status;
    tr.appendChild(status);
    tr.appendChild(cell(c.since ? new Date(c.since).toLocaleTimeString() : ""));
    tr.appendChild(cell([c.error, ...(c.warnings || [])].filter(Boolean).join("; "), "error"));
    const usable = c.status !== "no_access";
    const tools = c.protocol === "http" ? (usable ? "${CONNECTORS_PREFIX}" + c.id + "/" : "") : c.tools.join(", ");
    tr.appendChild(cell(tools, "tools"));
    tr.appendChild(actionCell(c));
    body.appendChild(tr);
  }
  rows.replaceChildren(body);
  if (focusedId !== undefined) {
    const again = [...rows.querySelectorAll("tr[data-connector] button")].find((b) => b.closest("tr").dataset.connector === focusedId);
    if (again) again.focus();
  }
};
let timer;
const schedule = (ms) => {
  clearTimeout(timer);
  timer = setTimeout(refresh, ms);
};
const refresh = async () => {
  try {
    const response = await fetch("/api/connectors", { cache: "no-store" });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    render(data.connectors);
    banner.className = "";
    updated.textContent = "updated " + new Date().toLocaleTimeString();
  } catch (error) {
    banner.textContent = "Cannot read /api/connectors: " + error.message;
    banner.className = "shown";
  } finally {
    schedule(refreshMs);
  }
};
refresh();
`

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`

const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Aperture</title>
<style>${style}</style>
</head>
<body>
<h1>Aperture</h1>
<p class="meta">Connectors as you see them · MCP endpoint <code>${MCP_PATH}</code> · <span id="updated">loading…</span></p>
<div id="banner" role="alert"></div>
<table>
<thead><tr><th>Connector</th><th>Protocol</th><th>Status</th><th>Since</th><th>Last error</th><th>Tools you may use</th><th>Your access</th></tr></thead>
<tbody id="rows"></tbody>
</table>
<script>${script}</script>
</body>
</html>
`

const headers = {
  "content-security-policy": `default-src 'none'; script-src ${sha256(script)}; style-src ${sha256(style)}; connect-src 'self'; ` +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache"
}

/** The page itself holds nothing private (it reads `/api/connectors` as the viewer); still Host/Origin-checked like every endpoint. */
export const statusPage = (gate: AdminGate) => (request: HttpServerRequest.HttpServerRequest) =>
  Effect.succeed(
    gate.hostRefusal(request) ?? HttpServerResponse.text(page, { contentType: "text/html; charset=utf-8", headers })
  )
