/**
 * A `tools/call`, `prompts/get` or `resources/read` sent to a streamable-HTTP upstream by the
 * gateway itself, over the connector's exchange (credential, 401 refresh, keep-alive pool; no
 * web `Headers` or `Response`), instead of through the SDK `Client`.
 * The SDK's client hop (its transport's web streams, `Headers` and `AbortSignal` per request, its
 * schema checks of every message) was a large share of the gateway's CPU per call (bench/README.md);
 * this is the same exchange, read with a plain SSE parser.
 *
 * What the SDK client does and this keeps, message by message:
 * - the request goes out on the connection's session (`Mcp-Session-Id`, the negotiated
 *   `MCP-Protocol-Version`), or with the 2026-07-28 envelope (`_meta` protocol version, client
 *   info and capabilities; `Mcp-Method` and `Mcp-Name` headers);
 * - its id is a string (`aperture-<n>`), never one of the SDK client's numeric ids on the same
 *   session, and doubles as its progress token, so the upstream's progress is known as this call's;
 * - a JSON answer or an event stream; a 2025-era stream that ends before the answer (SSE
 *   polling, SEP-1699) is resumed with `Last-Event-ID` after the server's `retry` delay;
 * - server→client requests on the stream (sampling, elicitation, roots; 2025 era only, as the SDK
 *   client drops them on a 2026 connection) go to `onRequest`, and the answer is POSTed back;
 *   the upstream cancelling one of them aborts it; a `ping` is answered here, any other method
 *   with -32601, as the SDK client does;
 * - a 2026-era upstream's refusal with HTTP 400 and a JSON-RPC error for this call is that error;
 * - log messages go to `onLog`; any other notification (a list change) to the SDK client, as if
 *   its transport had received it;
 * - cancelling (the signal) tells a 2025-era upstream with `notifications/cancelled`; a 2026-era
 *   upstream learns it from the request's stream being closed, as the spec says.
 *
 * Only the method's own result is read. The outcome is data ({@link UpstreamCallOutcome}): the
 * result, the upstream's JSON-RPC error, or a redirect; what fails underneath (the connection, an
 * HTTP error status, a stream ending unanswered) is thrown.
 * @module
 */
import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  type JSONRPCMessage,
  PROTOCOL_VERSION_META_KEY,
  ProtocolErrorCode
} from "@modelcontextprotocol/client"
import { abortableDelay } from "../upstream/abortableDelay.js"
import { readBounded } from "../http/boundedBody.js"
import { RELAYED_METHODS, type UpstreamRoute } from "../upstream/upstreamRoute.js"
import { errorObjectOf, protocolFailureOf } from "./jsonRpcErrors.js"
import { type ProtocolFailure, protocolFailure, type RelayResult, relayResult } from "./outcome.js"
import { type SseEvent, sseEvents } from "../upstream/sseEvents.js"
import type { UpstreamAnswer } from "../upstream/upstreamFetch.js"

/** W3C Trace Context `traceparent` (version 00 form, lower-case hex). */
const TRACEPARENT = /^[\da-f]{2}-[\da-f]{32}-[\da-f]{16}-[\da-f]{2}$/
/** `tracestate`: printable ASCII list members, at most 512 characters (the W3C limit). */
const TRACESTATE = /^[\x20-\x7e]*$/
const MAX_TRACESTATE = 512

/**
 * The upstream redirected the call: it did not run it. The SDK client follows a redirect only
 * within the endpoint's origin (a credential must not follow a call elsewhere); this path leaves
 * redirects to it, and the caller sends this call, and the connector's next ones, that way.
 */
export interface Redirected {
  readonly _tag: "Redirected"
}

const REDIRECTED: Redirected = { _tag: "Redirected" }

/** How a call sent by {@link upstreamCall} ended, short of a failure underneath it. */
export type UpstreamCallOutcome = RelayResult | ProtocolFailure | Redirected

export interface UpstreamCallHandlers {
  readonly signal: AbortSignal
  readonly onProgress: (params: Record<string, unknown>) => void
  readonly onLog: (params: Record<string, unknown>) => void
  readonly onRequest: (method: string, params: Record<string, unknown> | undefined, signal: AbortSignal) => Promise<unknown>
}

const RELAYED_REQUESTS: ReadonlySet<string> = new Set(RELAYED_METHODS)

/** A JSON object (Effect's `Predicate.isRecord`, without importing Effect on the hot path). */
const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Reconnections in a row that bring no event before the call is given up (the SDK client's `maxRetries`). */
const MAX_RESUMES = 2
/** Wait before resuming when the server named none (the SDK client's initial delay). */
const DEFAULT_RETRY_MS = 1000

/**
 * How long a call's event stream may stay open after its answer (a 2025-era server ends it right
 * after the answer) before the gateway closes it.
 */
const AFTER_ANSWER_MS = 1000

/** A 2026-era refusal's JSON-RPC error is small; a body past this is no refusal to read. */
const REFUSAL_BYTES = 64 * 1024

let lastId = 0

/**
 * Reads what is left of a call's event stream after its answer, discarding it, so the stream ends
 * as the server ends it. Stopping at the answer destroyed the body before its last chunk (the
 * stream's end) was read: Node makes an `AbortError` with its stack for that (it showed in
 * the profile against server-everything) and undici may drop the connection. A stream still open after {@link AFTER_ANSWER_MS} is closed, as before.
 */
const readToEnd = (events: AsyncGenerator<SseEvent>, body: AsyncIterable<Uint8Array>): void => {
  const timer = setTimeout(() => (body as { destroy?: () => void }).destroy?.(), AFTER_ANSWER_MS)
  const next = (): Promise<void> => events.next().then((read) => read.done === true ? undefined : next())
  next().catch(() => {}).finally(() => clearTimeout(timer))
}

const ASCII_FIELD = /^[\t\x20-\x7e]*$/

/**
 * Whether `name` can travel in an `Mcp-Name` header as it is; the SDK base64-encodes the others
 * (a form not rebuilt here: those calls take the SDK client).
 */
export const plainHeaderValue = (name: string): boolean =>
  name.length > 0 && name === name.trim() && ASCII_FIELD.test(name) && !name.startsWith("=?base64?")

/** Only the start of an error body is shown, so only that is read (a huge one is not). */
const httpError = async (answer: UpstreamAnswer, what: string) => {
  const { text } = await readBounded(answer.body, 800)
  return new Error(`upstream answered ${what} with HTTP ${answer.status}${text === "" ? "" : `: ${text.slice(0, 200)}`}`)
}

const isOk = (answer: UpstreamAnswer) => answer.status >= 200 && answer.status < 300

const contentTypeOf = (answer: UpstreamAnswer): string => {
  const value = answer.headers["content-type"]
  return (Array.isArray(value) ? value[0] : value) ?? ""
}

/**
 * The methods the gateway sends itself, and the param each one's 2026 `Mcp-Name` header mirrors
 * (as the SDK client's `MCP_NAME_HEADER_SOURCE`).
 */
export const MCP_NAME_SOURCE: Readonly<Record<string, "name" | "uri" | undefined>> = {
  "tools/call": "name",
  "prompts/get": "name",
  "resources/read": "uri"
}

/** Sends `method` with `params` and returns how it ended: its result, its JSON-RPC error, a redirect. */
export const upstreamCall = async (
  route: UpstreamRoute,
  method: string,
  params: Record<string, unknown>,
  handlers: UpstreamCallHandlers
): Promise<UpstreamCallOutcome> => {
  const id = `aperture-${++lastId}`
  const modern = route.client.getProtocolEra() === "modern"
  const version = route.client.getNegotiatedProtocolVersion()
  const meta: Record<string, unknown> = { ...(params["_meta"] as Record<string, unknown> | undefined), progressToken: id }
  const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json, text/event-stream" }
  const sessionId = route.transport.sessionId
  if (sessionId !== undefined) headers["mcp-session-id"] = sessionId
  if (modern && version !== undefined) {
    // What the SDK client's envelope adds; the caller's own keys (capabilities, log level) win.
    meta[PROTOCOL_VERSION_META_KEY] ??= version
    meta[CLIENT_INFO_META_KEY] ??= route.clientInfo
    meta[CLIENT_CAPABILITIES_META_KEY] ??= route.clientCapabilities
    headers["mcp-protocol-version"] = version
    headers["mcp-method"] = method
    const named = MCP_NAME_SOURCE[method]
    if (named !== undefined && typeof params[named] === "string") headers["mcp-name"] = params[named]
  } else if (route.transport.protocolVersion !== undefined) {
    headers["mcp-protocol-version"] = route.transport.protocolVersion
  }
  // Trace context in `_meta` (SEP-414; set by the router's telemetry, or the caller's own) goes as
  // W3C headers too, only in the W3C form: a caller's arbitrary string never becomes a header.
  const traceparent = meta["traceparent"]
  if (typeof traceparent === "string" && TRACEPARENT.test(traceparent)) {
    headers["traceparent"] = traceparent
    const tracestate = meta["tracestate"]
    if (typeof tracestate === "string" && tracestate.length <= MAX_TRACESTATE && TRACESTATE.test(tracestate)) headers["tracestate"] = tracestate
  }
  const body = JSON.stringify({ jsonrpc: "2.0", id, method, params: { ...params, _meta: meta } })
  const signal = handlers.signal

  /** Posts one message of ours (an answer to the upstream, a cancellation); failures are the upstream's to notice. */
  const post = (message: JSONRPCMessage) => {
    const postHeaders: Record<string, string> = { ...headers }
    delete postHeaders["mcp-method"]
    delete postHeaders["mcp-name"]
    route.exchange(route.url, { method: "POST", headers: postHeaders, body: JSON.stringify(message) })
      .then((answer) => answer.body.dump())
      .catch(() => {})
  }

  const onAbort = () => {
    if (!modern) post({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: id, reason: String(signal.reason) } })
  }
  signal.addEventListener("abort", onAbort, { once: true })

  /** The upstream's own requests still waiting for the caller, to abort if it cancels them. */
  const serverRequests = new Map<string | number, AbortController>()
  const answerServerRequest = (request: { id: string | number; method: string; params?: Record<string, unknown> }) => {
    // What the SDK client answers itself: a ping, and a method it has no handler for.
    if (request.method === "ping") return post({ jsonrpc: "2.0", id: request.id, result: {} })
    if (!RELAYED_REQUESTS.has(request.method)) {
      return post({ jsonrpc: "2.0", id: request.id, error: { code: ProtocolErrorCode.MethodNotFound, message: "Method not found" } })
    }
    const controller = new AbortController()
    serverRequests.set(request.id, controller)
    const stop = () => controller.abort(signal.reason)
    signal.addEventListener("abort", stop, { once: true })
    handlers.onRequest(request.method, request.params, controller.signal).then(
      (result) => post({ jsonrpc: "2.0", id: request.id, result: result as Record<string, unknown> }),
      (error: unknown) => {
        if (!controller.signal.aborted) post({ jsonrpc: "2.0", id: request.id, error: errorObjectOf(error) })
      }
    ).finally(() => {
      serverRequests.delete(request.id)
      signal.removeEventListener("abort", stop)
    })
  }

  /** One message from the upstream: the answer ends the call; anything else is routed. */
  const receive = (message: unknown): RelayResult | ProtocolFailure | undefined => {
    if (!isRecord(message)) return undefined
    const method = message["method"]
    if (typeof method !== "string") {
      if (message["id"] !== id) return undefined
      const error = message["error"]
      if (isRecord(error)) return protocolFailureOf(error)
      const result = message["result"]
      if (!isRecord(result)) {
        return protocolFailure(ProtocolErrorCode.InternalError, "the upstream's result is not a JSON object")
      }
      return relayResult(result)
    }
    const messageParams = isRecord(message["params"]) ? message["params"] : undefined
    if (message["id"] !== undefined) {
      if (!modern && (typeof message["id"] === "string" || typeof message["id"] === "number")) {
        answerServerRequest({ id: message["id"], method, ...(messageParams !== undefined && { params: messageParams }) })
      }
      return undefined
    }
    if (method === "notifications/progress" && messageParams?.["progressToken"] === id) {
      const { progressToken: _, ...progress } = messageParams
      handlers.onProgress(progress)
    } else if (method === "notifications/message" && messageParams !== undefined) {
      handlers.onLog(messageParams)
    } else if (method === "notifications/cancelled" && messageParams !== undefined) {
      serverRequests.get(messageParams["requestId"] as string | number)?.abort(messageParams["reason"])
    } else {
      route.transport.onmessage?.(message as JSONRPCMessage)
    }
    return undefined
  }

  /** Reads an event stream until the answer; `undefined`: it ended first. */
  const readStream = async (stream: AsyncIterable<Uint8Array>, position: { lastEventId?: string; retry?: number; events: number }) => {
    const events = sseEvents(stream)
    let ended = false
    try {
      for (;;) {
        const read = await events.next()
        if (read.done === true) {
          ended = true
          return undefined
        }
        const event = read.value
        position.events++
        if (event.lastEventId !== undefined) position.lastEventId = event.lastEventId
        if (event.retry !== undefined) position.retry = event.retry
        // The SDK client reads only `message` events (an unnamed event is one).
        if (event.data === "" || event.type !== "message") continue
        let message: unknown
        try {
          message = JSON.parse(event.data)
        } catch {
          continue // the SDK client reports an unparsable event and reads on
        }
        const answered = receive(message)
        if (answered !== undefined) return answered
      }
    } finally {
      // Answered (or failed reading): the rest of the stream is read and dropped.
      if (!ended) readToEnd(events, stream)
    }
  }

  try {
    const response = await route.exchange(route.url, { method: "POST", headers, body, signal })
    if (response.status >= 300 && response.status < 400) {
      await response.body.dump().catch(() => {})
      route.usable = false
      return REDIRECTED
    }
    if (!isOk(response)) {
      // A 2026-era server refuses some calls with 400 and a JSON-RPC error (a capability the
      // caller lacks, a header mismatch): that error is the answer, as the SDK client reads it.
      if (modern && response.status === 400) {
        const { text } = await readBounded(response.body, REFUSAL_BYTES)
        let refusal: unknown
        try {
          refusal = JSON.parse(text)
        } catch {
          refusal = undefined
        }
        if (isRecord(refusal) && refusal["id"] === id && isRecord(refusal["error"])) {
          const answered = receive(refusal)
          if (answered?._tag === "ProtocolFailure") return answered
        }
        throw new Error(`upstream answered ${method} with HTTP 400${text === "" ? "" : `: ${text.slice(0, 200)}`}`)
      }
      throw await httpError(response, method)
    }
    if (contentTypeOf(response).includes("text/event-stream")) {
      const position: { lastEventId?: string; retry?: number; events: number } = { events: 0 }
      let result = await readStream(response.body, position)
      let resumes = 0
      while (result === undefined) {
        // The stream ended before the answer: resume it where it stopped, as the SDK client does.
        if (modern || position.lastEventId === undefined || resumes >= MAX_RESUMES) {
          throw new Error("the upstream ended the call's event stream without answering")
        }
        await abortableDelay(position.retry ?? DEFAULT_RETRY_MS, signal)
        const before = position.events
        const resumeHeaders: Record<string, string> = { accept: "text/event-stream", "last-event-id": position.lastEventId }
        if (headers["mcp-session-id"] !== undefined) resumeHeaders["mcp-session-id"] = headers["mcp-session-id"]
        if (headers["mcp-protocol-version"] !== undefined) resumeHeaders["mcp-protocol-version"] = headers["mcp-protocol-version"]
        let resumed: UpstreamAnswer | undefined
        try {
          resumed = await route.exchange(route.url, { method: "GET", headers: resumeHeaders, signal })
        } catch (error) {
          if (signal.aborted) throw error
          resumed = undefined // the SDK client tries again, up to its limit
        }
        if (resumed !== undefined && !isOk(resumed)) {
          if (resumed.status === 404 || resumed.status === 405) throw await httpError(resumed, "the resumed stream")
          await resumed.body.dump().catch(() => {})
          resumed = undefined
        }
        if (resumed !== undefined) result = await readStream(resumed.body, position)
        resumes = position.events > before ? 0 : resumes + 1
      }
      return result
    }
    const parsed: unknown = await response.body.json()
    for (const message of Array.isArray(parsed) ? parsed : [parsed]) {
      const answered = receive(message)
      if (answered !== undefined) return answered
    }
    throw new Error("the upstream's JSON answer holds no response to the call")
  } finally {
    signal.removeEventListener("abort", onAbort)
  }
}
