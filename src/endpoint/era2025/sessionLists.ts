/**
 * List requests on a 2025-era session that the gateway answers itself, without the SDK's
 * transport and server: a list is read from the catalog and answers at once, so nothing can be
 * sent to the caller before it (no progress, no server→client request) and the whole answer is
 * one SSE event, written in one piece. It is an event stream, as the SDK's answers are, not
 * `application/json`: the conformance suite checks that concurrent list requests on a session get
 * working SSE streams. The event has no id: there is nothing to resume in an answer sent whole
 * (a caller that loses it asks again). The page comes pre-encoded ({@link encodedPage}): a warm
 * `tools/list` costs a map lookup and a write of the page's cached bytes, where the SDK path re-serialised
 * the page, framed it as an SSE event and stored it for replay (most of the gateway's time per
 * large page: S3 in bench/README.md).
 *
 * Only a well-formed single 2025-era request is answered here; anything else (a batch, a wrong
 * header, an unknown param, a 2026-era envelope, a cursor we did not issue, a page the SDK would
 * re-encode) takes the SDK path and gets the SDK's answer. A cursor that is not a string is
 * answered here with JSON-RPC's "invalid params" (-32602), where the SDK's schema check says
 * "internal error".
 * @module
 */
import { classifyInboundRequest, isJsonContentType, SUPPORTED_PROTOCOL_VERSIONS } from "@modelcontextprotocol/server"
import * as Predicate from "effect/Predicate"
import type { ListMethod } from "../../router/McpRouter.js"

export interface SessionList {
  readonly id: string | number
  readonly method: ListMethod
  /** The cursor asked for; not a string: invalid params (the SDK path answers those as an internal error). */
  readonly cursor: unknown
}

const LIST_METHODS: ReadonlySet<string> = new Set<ListMethod>([
  "tools/list",
  "prompts/list",
  "resources/list",
  "resources/templates/list"
])

/** The request's fields, when it is exactly a JSON-RPC request (no other keys, a string or integer id). */
const requestOf = (body: unknown) => {
  if (!Predicate.isRecord(body) || body["jsonrpc"] !== "2.0") return undefined
  for (const key in body) if (key !== "jsonrpc" && key !== "id" && key !== "method" && key !== "params") return undefined
  const id = body["id"]
  if (typeof id !== "string" && !Number.isSafeInteger(id)) return undefined
  return { id: id as string | number, method: body["method"], params: body["params"] }
}

/** The prefix of the `_meta` keys MCP reserves for itself (the 2026 envelope among them). */
export const RESERVED_META_PREFIX = "io.modelcontextprotocol/"

/**
 * Whether a request carries any sign of the 2026-07-28 era: its headers, a 2026 version, or a
 * reserved `_meta` key. Without one, the SDK classifies it as 2025-era; with one, the SDK's own
 * classifier decides (it validates the body with zod: a few percent of a call's CPU).
 */
const claimsModernEra = (headers: Readonly<Record<string, string | undefined>>, version: string | undefined, params: unknown) => {
  if (headers["mcp-method"] !== undefined || headers["mcp-name"] !== undefined) return true
  if (version !== undefined && version >= "2026") return true
  const meta = Predicate.isRecord(params) ? params["_meta"] : undefined
  if (meta === undefined) return false
  if (!Predicate.isRecord(meta)) return true
  for (const key in meta) if (key.startsWith(RESERVED_META_PREFIX)) return true
  return false
}

/** A POST's headers pass the SDK transport's checks (else the SDK answers 406, 415 or 400). */
export const passesPostChecks = (headers: Readonly<Record<string, string | undefined>>): boolean => {
  const accept = headers["accept"]
  if (accept === undefined || !accept.includes("application/json") || !accept.includes("text/event-stream")) return false
  const contentType = headers["content-type"]
  if (contentType === undefined || !isJsonContentType(contentType)) return false
  const version = headers["mcp-protocol-version"]
  return version === undefined || SUPPORTED_PROTOCOL_VERSIONS.includes(version)
}

/**
 * The single 2025-era JSON-RPC request a POST carries, when it passes the SDK transport's header
 * checks (a caller failing them gets the SDK's 406/415/400) and the SDK's own era decision (a
 * request carrying a 2026-era envelope is not a 2025 one).
 */
export const era2025Request = (headers: Readonly<Record<string, string | undefined>>, body: unknown) => {
  const request = requestOf(body)
  if (request === undefined || typeof request.method !== "string" || !passesPostChecks(headers)) return undefined
  const version = headers["mcp-protocol-version"]
  if (!claimsModernEra(headers, version, request.params)) return { id: request.id, method: request.method, params: request.params }
  const era = classifyInboundRequest({
    httpMethod: "POST",
    ...(version !== undefined && { protocolVersionHeader: version }),
    ...(headers["mcp-method"] !== undefined && { mcpMethodHeader: headers["mcp-method"] }),
    ...(headers["mcp-name"] !== undefined && { mcpNameHeader: headers["mcp-name"] }),
    body
  })
  if (era.kind !== "legacy") return undefined
  return { id: request.id, method: request.method, params: request.params }
}

/** The list request a POST carries, if the gateway may answer it directly. */
export const sessionList = (headers: Readonly<Record<string, string | undefined>>, body: unknown): SessionList | undefined => {
  // Cheap test first: most POSTs are not lists.
  const method = Predicate.isRecord(body) ? body["method"] : undefined
  if (typeof method !== "string" || !LIST_METHODS.has(method)) return undefined
  const request = era2025Request(headers, body)
  if (request === undefined) return undefined
  let cursor: unknown
  if (request.params !== undefined) {
    if (!Predicate.isRecord(request.params)) return undefined
    for (const key in request.params) {
      const value = request.params[key]
      if (key === "cursor") cursor = value
      else if (!(key === "_meta" && Predicate.isRecord(value))) return undefined
    }
  }
  return { id: request.id, method: request.method as ListMethod, cursor }
}

/**
 * The JSON-RPC response around an already-encoded result, as one SSE `message` event (JSON text
 * never holds a raw newline) in three pieces: the
 * cached page is written as it is, never copied (a 200 KB copy per answer was garbage enough to
 * bring on full collections, the p99 of a 10k-tool list).
 */
export const resultEvent = (id: string | number, encodedResult: Uint8Array): ReadonlyArray<Uint8Array> => [
  Buffer.from(`event: message\ndata: {"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":`),
  encodedResult,
  RESULT_END
]

const RESULT_END = Buffer.from("}\n\n")

/** A JSON-RPC "invalid params" (-32602) response, as an SSE event. */
export const invalidParamsEvent = (id: string | number, message: string): ReadonlyArray<Uint8Array> => [
  Buffer.from(`event: message\ndata: ${JSON.stringify({ jsonrpc: "2.0", id, error: { code: -32602, message } })}\n\n`)
]
