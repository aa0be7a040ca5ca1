/**
 * The status page's script (plain JS, run as is: no build step). It refreshes the connector
 * table from `/api/connectors`, opens a connector's detail (`/api/connectors/<id>/detail`), runs a
 * tool from a form built from its input schema by POSTing a 2026-07-28 stateless `tools/call` to
 * `/v1/mcp` (as the viewer, so their grants apply), and for admins reads `/api/audit` and
 * `/api/sessions`. Everything that came from an upstream or a caller is set as text
 * (`textContent`), never parsed as HTML.
 * @module
 */
import { MCP_PATH } from "../../http/paths.js"

/** How often the page re-reads `/api/connectors`, unless `?refresh=<ms>` says otherwise. */
export const DEFAULT_REFRESH_MS = 2000

/** The protocol revision of the page's own MCP requests: stateless, one POST per call. */
export const PAGE_PROTOCOL_VERSION = "2026-07-28"

export const pageScript = (connectorsPrefix: string) => `
"use strict";
const refreshMs = Number(new URLSearchParams(location.search).get("refresh")) || ${DEFAULT_REFRESH_MS};
const $ = (id) => document.getElementById(id);
const rows = $("rows");
const banner = $("banner");
const updated = $("updated");
const el = (tag, props, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) if (child) node.appendChild(child);
  return node;
};
const cell = (text, className) => el("td", { text, className });
const showProblem = (text) => {
  banner.textContent = text;
  banner.className = "shown";
};
const getJson = async (path) => {
  const response = await fetch(path, { cache: "no-store" });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
};
const time = (iso) => new Date(iso).toLocaleTimeString();
const pretty = (value) => JSON.stringify(value, null, 2);

// ---- the connector table -------------------------------------------------------------------
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
    showProblem((action === "connect" ? "Cannot connect " : "Cannot disconnect ") + id + ": " + error.message);
    button.disabled = false;
  }
};
const actionCell = (c) => {
  const td = el("td");
  const what = actionOf(c);
  if (what !== undefined) {
    td.appendChild(el("button", {
      type: "button", text: what.label, "aria-label": what.label + " " + c.id, className: what.action === "disconnect" ? "secondary" : undefined,
      dataset: { action: what.action }, onclick: (event) => act(event.currentTarget, c.id, what.action)
    }));
  }
  return td;
};
const detailCell = (c) => {
  const td = el("td");
  if (c.status === "no_access") return td;
  td.appendChild(el("button", {
    type: "button", text: "Details", className: "secondary", "aria-label": "Details of " + c.id,
    "aria-controls": "detail", "aria-expanded": String(openId === c.id), dataset: { action: "detail" },
    onclick: () => openDetail(c.id)
  }));
  return td;
};
const renderRows = (connectors) => {
  // Rows are rebuilt on every refresh: keep keyboard focus on the same connector's same button.
  const active = document.activeElement;
  const focusedRow = active && active.tagName === "BUTTON" && active.closest ? active.closest("tr[data-connector]") : null;
  const focused = focusedRow ? { id: focusedRow.dataset.connector, action: active.dataset.action } : undefined;
  const body = document.createDocumentFragment();
  for (const c of connectors) {
    const tr = el("tr", { dataset: { connector: c.id } });
    tr.appendChild(cell(c.id));
    tr.appendChild(cell(c.protocol === "http" || !c.transport ? c.protocol : "mcp (" + c.transport + ")"));
    const status = cell(c.status.replace("_", " "), "status");
    status.dataset.status = c.status;
    tr.appendChild(status);
    tr.appendChild(cell(c.since ? new Date(c.since).toLocaleTimeString() : ""));
    tr.appendChild(cell([c.error, ...(c.warnings || [])].filter(Boolean).join("; "), "error"));
    const usable = c.status !== "no_access";
    const tools = c.protocol === "http" ? (usable ? ${JSON.stringify(connectorsPrefix)} + c.id + "/" : "") : c.tools.join(", ");
    tr.appendChild(cell(tools, "tools"));
    tr.appendChild(actionCell(c));
    tr.appendChild(detailCell(c));
    body.appendChild(tr);
  }
  rows.replaceChildren(body);
  if (focused !== undefined) {
    const again = [...rows.querySelectorAll("tr[data-connector] button")]
      .find((b) => b.closest("tr").dataset.connector === focused.id && b.dataset.action === focused.action);
    if (again) again.focus();
  }
};
let timer;
let isAdmin = false;
const schedule = (ms) => {
  clearTimeout(timer);
  timer = setTimeout(refresh, ms);
};
const refresh = async () => {
  try {
    const data = await getJson("/api/connectors");
    renderRows(data.connectors);
    banner.className = "";
    updated.textContent = "updated " + new Date().toLocaleTimeString();
    if (data.admin === true && !isAdmin) {
      isAdmin = true;
      $("admin").hidden = false;
      loadAudit();
      loadSessions();
    }
    if (openId !== undefined) refreshDetailLive(openId);
  } catch (error) {
    showProblem("Cannot read /api/connectors: " + error.message);
  } finally {
    schedule(refreshMs);
  }
};

// ---- one connector's detail ----------------------------------------------------------------
let openId;
const detail = $("detail");
const historyTable = (history) => {
  if (history.length === 0) return el("p", { className: "empty", text: "No changes recorded yet." });
  const body = el("tbody");
  for (const change of [...history].reverse()) {
    const status = cell(change.status.replace("_", " "), "status");
    status.dataset.status = change.status;
    body.appendChild(el("tr", {}, cell(time(change.at)), status, cell(change.reason || "", "error")));
  }
  return el("table", { id: "history" }, el("caption", { className: "visually-hidden", text: "Status changes, newest first" }),
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Time" }), el("th", { scope: "col", text: "Status" }), el("th", { scope: "col", text: "Reason" }))), body);
};
const minutesTable = (minutes) => {
  const busy = minutes.filter((m) => m.requests > 0);
  const total = minutes.reduce((sum, m) => sum + m.requests, 0);
  const errors = minutes.reduce((sum, m) => sum + m.errors, 0);
  const wrap = el("div", { id: "minutes" });
  wrap.appendChild(el("p", { text: total + " requests, " + errors + " errors in the last " + minutes.length + " minutes." }));
  if (busy.length === 0) return wrap;
  const body = el("tbody");
  for (const m of busy.reverse()) {
    body.appendChild(el("tr", {}, cell(time(m.minute)), cell(String(m.requests), "num"), cell(String(m.errors), "num"), cell(m.mean_ms.toFixed(1) + " ms", "num")));
  }
  wrap.appendChild(el("table", {}, el("caption", { className: "visually-hidden", text: "Requests per minute, newest first" }),
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Minute" }), el("th", { scope: "col", className: "num", text: "Requests" }),
      el("th", { scope: "col", className: "num", text: "Errors" }), el("th", { scope: "col", className: "num", text: "Mean latency" }))), body));
  return wrap;
};
const toolArticle = (tool) => {
  const article = el("article", { className: "tool", dataset: { tool: tool.name } });
  article.appendChild(el("h4", { text: tool.name }));
  if (tool.title) article.appendChild(el("p", { text: tool.title }));
  article.appendChild(el("p", { className: tool.description ? undefined : "empty", text: tool.description || "No description." }));
  const schema = el("details", {}, el("summary", { text: "Input schema" }), el("pre", { text: pretty(tool.inputSchema || {}) }));
  article.appendChild(schema);
  article.appendChild(el("button", { type: "button", text: "Try it", "aria-label": "Try " + tool.name, onclick: () => openTry(tool) }));
  return article;
};
const namedList = (items, key) => {
  if (items.length === 0) return el("p", { className: "empty", text: "None you may use." });
  const list = el("ul");
  for (const item of items) {
    const li = el("li");
    li.appendChild(el("code", { text: item[key] }));
    const words = [item.title || item.name !== item[key] && item.name, item.description].filter(Boolean).join(": ");
    if (words) li.appendChild(document.createTextNode(" — " + words));
    list.appendChild(li);
  }
  return list;
};
const refreshDetailLive = async (id) => {
  try {
    const data = await getJson("/api/connectors/" + encodeURIComponent(id) + "/detail");
    if (openId !== id) return;
    $("history").replaceWith(historyTable(data.history));
    $("minutes").replaceWith(minutesTable(data.minutes));
  } catch {
    // The table's own refresh says what is wrong.
  }
};
const openDetail = async (id) => {
  openId = id;
  for (const b of rows.querySelectorAll("button[data-action=detail]")) b.setAttribute("aria-expanded", String(b.closest("tr").dataset.connector === id));
  let data;
  try {
    data = await getJson("/api/connectors/" + encodeURIComponent(id) + "/detail");
  } catch (error) {
    showProblem("Cannot read " + id + ": " + error.message);
    return;
  }
  const heading = el("h2", { id: "detail-title", tabindex: "-1", text: data.id });
  const parts = [heading];
  if (data.description) parts.push(el("p", { text: data.description }));
  const status = el("span", { className: "status", text: data.status.replace("_", " ") });
  status.dataset.status = data.status;
  const state = el("p", {}, document.createTextNode("Status: "), status);
  if (data.error) state.appendChild(el("span", { className: "error", text: " " + data.error }));
  parts.push(state);
  parts.push(el("h3", { text: "State history" }), historyTable(data.history));
  parts.push(el("h3", { text: "Requests" }), minutesTable(data.minutes));
  if (data.protocol === "mcp") {
    parts.push(el("h3", { text: "Tools (" + data.tools.length + ")" }));
    if (data.tools.length === 0) parts.push(el("p", { className: "empty", text: "None you may use." }));
    for (const tool of data.tools) parts.push(toolArticle(tool));
    parts.push(el("h3", { text: "Prompts (" + data.prompts.length + ")" }), namedList(data.prompts, "name"));
    parts.push(el("h3", { text: "Resources (" + (data.resources.length + data.templates.length) + ")" }),
      namedList([...data.resources, ...data.templates.map((t) => ({ ...t, uri: t.uriTemplate }))], "uri"));
  } else {
    parts.push(el("p", {}, document.createTextNode("An HTTP API, proxied at "), el("code", { text: ${JSON.stringify(connectorsPrefix)} + data.id + "/" })));
  }
  detail.replaceChildren(...parts);
  detail.hidden = false;
  $("try").hidden = true;
  heading.focus();
};

// ---- try it: a form from the tool's input schema, one tools/call to /v1/mcp ------------------
let callId = 0;
const fieldOf = (form, name, schema, required) => {
  const id = "arg-" + name.replace(/[^A-Za-z0-9_-]/g, "_");
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  const hint = schema.description ? el("p", { className: "hint", id: id + "-hint", text: schema.description }) : null;
  const labelText = name + (required ? " (required)" : "");
  const common = { id, name, "aria-describedby": hint ? id + "-hint" : undefined, required: required || undefined };
  let control;
  let kind;
  if (Array.isArray(schema.enum)) {
    kind = "enum";
    control = el("select", common);
    if (!required) control.appendChild(el("option", { value: "", text: "(none)" }));
    schema.enum.forEach((value, i) => control.appendChild(el("option", { value: String(i), text: JSON.stringify(value) })));
    if (schema.default !== undefined) control.value = String(schema.enum.findIndex((v) => v === schema.default));
  } else if (type === "boolean") {
    kind = "boolean";
    control = el("input", { ...common, type: "checkbox", required: undefined, checked: schema.default === true });
    return { name, kind, schema, required, control, node: el("div", {}, el("div", { className: "check" }, control, el("label", { for: id, text: labelText })), hint) };
  } else if (type === "number" || type === "integer") {
    kind = type;
    control = el("input", { ...common, type: "number", step: type === "integer" ? "1" : "any", min: schema.minimum, max: schema.maximum, value: schema.default });
  } else if (type === "string") {
    kind = "string";
    control = el("input", { ...common, type: "text", value: schema.default, autocomplete: "off" });
  } else {
    kind = "json";
    control = el("textarea", { ...common, spellcheck: "false", placeholder: type === "array" ? "[ ]" : "{ }" });
    if (schema.default !== undefined) control.value = pretty(schema.default);
  }
  return { name, kind, schema, required, control, node: el("div", {}, el("label", { for: id, text: labelText + (kind === "json" ? " (JSON)" : "") }), control, hint) };
};
const argumentsOf = (fields) => {
  const args = {};
  for (const f of fields) {
    const c = f.control;
    if (f.kind === "boolean") {
      if (c.checked || f.required) args[f.name] = c.checked;
      continue;
    }
    const raw = c.value;
    if (raw === "" && !f.required) continue;
    if (f.kind === "enum") args[f.name] = f.schema.enum[Number(raw)];
    else if (f.kind === "number" || f.kind === "integer") {
      const n = Number(raw);
      if (raw === "" || !Number.isFinite(n) || (f.kind === "integer" && !Number.isInteger(n))) throw new Error(f.name + " must be " + (f.kind === "integer" ? "an integer" : "a number"));
      args[f.name] = n;
    } else if (f.kind === "json") {
      try {
        args[f.name] = JSON.parse(raw);
      } catch (error) {
        throw new Error(f.name + " is not valid JSON: " + error.message);
      }
    } else args[f.name] = raw;
  }
  return args;
};
// The answer is JSON, or an SSE stream whose message with our id is the answer.
const answerOf = async (response, id) => {
  const text = await response.text();
  if ((response.headers.get("content-type") || "").includes("text/event-stream")) {
    for (const block of text.split(/\\r?\\n\\r?\\n/)) {
      const data = block.split(/\\r?\\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\\n");
      if (!data) continue;
      const message = JSON.parse(data);
      if (message.id === id) return message;
    }
    throw new Error("the stream ended without an answer");
  }
  return JSON.parse(text);
};
const callTool = async (name, args) => {
  const id = ++callId;
  const response = await fetch(${JSON.stringify(MCP_PATH)}, {
    method: "POST",
    cache: "no-store",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": ${JSON.stringify(PAGE_PROTOCOL_VERSION)},
      "mcp-method": "tools/call",
      "mcp-name": name
    },
    body: JSON.stringify({
      jsonrpc: "2.0", id, method: "tools/call",
      params: {
        name, arguments: args,
        _meta: {
          "io.modelcontextprotocol/protocolVersion": ${JSON.stringify(PAGE_PROTOCOL_VERSION)},
          "io.modelcontextprotocol/clientCapabilities": {},
          "io.modelcontextprotocol/clientInfo": { name: "aperture-status-page", version: "1" }
        }
      }
    })
  });
  if (response.status >= 400 && !(response.headers.get("content-type") || "").includes("json")) throw new Error("HTTP " + response.status);
  return answerOf(response, id);
};
const contentItem = (item) => {
  if (item.type === "text") return el("pre", { className: "content-text", text: item.text });
  const summary = { ...item };
  // Binary payloads are named, not dumped.
  if (typeof summary.data === "string") summary.data = "(" + summary.data.length + " base64 characters)";
  if (summary.resource && typeof summary.resource.blob === "string") summary.resource = { ...summary.resource, blob: "(" + summary.resource.blob.length + " base64 characters)" };
  return el("pre", { text: pretty(summary) });
};
const showResult = (message) => {
  const out = $("try-result");
  const parts = [];
  if (message.error) {
    parts.push(el("p", { className: "outcome", dataset: { error: "true" }, text: "Error " + message.error.code + ": " + message.error.message }));
    if (message.error.data !== undefined) parts.push(el("pre", { text: pretty(message.error.data) }));
  } else {
    const result = message.result || {};
    const isError = result.isError === true;
    parts.push(el("p", { className: "outcome", dataset: { error: String(isError) }, text: isError ? "The tool reported an error (isError: true)" : "Result (isError: false)" }));
    const content = Array.isArray(result.content) ? result.content : [];
    if (content.length > 0) {
      parts.push(el("h4", { text: "content" }));
      for (const item of content) parts.push(contentItem(item));
    }
    if (result.structuredContent !== undefined) parts.push(el("h4", { text: "structuredContent" }), el("pre", { className: "structured", text: pretty(result.structuredContent) }));
    if (result.resultType && result.resultType !== "complete") parts.push(el("p", { className: "hint", text: "The tool asked for input (" + result.resultType + "); the status page cannot answer that: use an MCP client." }));
  }
  out.replaceChildren(...parts);
};
const openTry = (tool) => {
  const panel = $("try");
  const schema = tool.inputSchema || {};
  const properties = schema.properties || {};
  const required = new Set(Array.isArray(schema.required) ? schema.required : []);
  const form = el("form", { className: "fields", id: "try-form", novalidate: true });
  const fields = Object.entries(properties).map(([name, s]) => fieldOf(form, name, s || {}, required.has(name)));
  for (const f of fields) form.appendChild(f.node);
  if (fields.length === 0) form.appendChild(el("p", { className: "hint", text: "This tool takes no arguments." }));
  const submit = el("button", { type: "submit", text: "Call " + tool.name });
  form.appendChild(el("div", {}, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = $("try-result");
    let args;
    try {
      args = argumentsOf(fields);
    } catch (error) {
      out.replaceChildren(el("p", { className: "outcome", dataset: { error: "true" }, text: error.message }));
      return;
    }
    submit.disabled = true;
    out.replaceChildren(el("p", { className: "hint", text: "Calling " + tool.name + "…" }));
    try {
      showResult(await callTool(tool.name, args));
    } catch (error) {
      out.replaceChildren(el("p", { className: "outcome", dataset: { error: "true" }, text: "The call failed: " + error.message }));
    } finally {
      submit.disabled = false;
      if (isAdmin) loadAudit();
    }
  });
  const title = el("h2", { id: "try-title", tabindex: "-1", text: "Try " + tool.name });
  panel.replaceChildren(
    title,
    el("p", { className: "hint", text: "Calls the tool through " + ${JSON.stringify(MCP_PATH)} + " as you: your grants apply." }),
    form,
    el("div", { id: "try-result", role: "status", "aria-live": "polite" })
  );
  panel.hidden = false;
  title.focus();
};

// ---- admins: audit trail and sessions ------------------------------------------------------
const auditForm = $("audit-filter");
const loadAudit = async () => {
  const query = new URLSearchParams();
  for (const name of ["login", "connector", "decision"]) {
    const value = auditForm.elements[name].value.trim();
    if (value) query.set(name, value);
  }
  query.set("limit", "100");
  try {
    const data = await getJson("/api/audit?" + query);
    $("audit-off").hidden = data.enabled;
    const body = document.createDocumentFragment();
    for (const line of data.lines) {
      const decision = cell(line.decision, "status");
      decision.dataset.status = line.decision === "allowed" ? "ready" : "down";
      body.appendChild(el("tr", {}, cell(time(line.time)), cell(line.login + " (" + line.via + ")"), cell(line.connector || ""),
        cell(line.category), cell(line.exposed, "tools"), decision, cell(line.outcome + (line.reason ? ": " + line.reason : "")), cell(line.durationMs.toFixed(1) + " ms", "num")));
    }
    $("audit-rows").replaceChildren(body);
    $("audit-count").textContent = data.lines.length + (data.lines.length === 1 ? " line" : " lines");
  } catch (error) {
    showProblem("Cannot read /api/audit: " + error.message);
  }
};
auditForm.addEventListener("submit", (event) => {
  event.preventDefault();
  loadAudit();
});
const loadSessions = async () => {
  try {
    const data = await getJson("/api/sessions");
    const body = document.createDocumentFragment();
    for (const s of data.sessions) {
      body.appendChild(el("tr", {}, cell(s.id_prefix + "…", "tools"), cell(s.login + " (" + s.via + ")"), cell(s.client || ""),
        cell(s.protocol_version || ""), cell(s.age_s + " s", "num"), cell(s.idle_s + " s", "num")));
    }
    $("session-rows").replaceChildren(body);
    $("session-count").textContent = data.sessions.length + (data.sessions.length === 1 ? " open session" : " open sessions");
  } catch (error) {
    showProblem("Cannot read /api/sessions: " + error.message);
  }
};
$("sessions-refresh").addEventListener("click", loadSessions);
refresh();
`
