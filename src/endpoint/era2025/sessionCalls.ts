/**
 * `tools/call` on a 2025-era session, answered by the gateway without the SDK's transport and
 * `Server`. Those two were most of the gateway's CPU per call (bench/README.md): parsing and
 * validating every message with zod, a web `Request`, `Response` and `ReadableStream` per call, a
 * stream for every response. The call itself goes through the same router (grants, audit,
 * metrics, timeouts) as on the SDK path; what the SDK did around it is kept here:
 *
 * - the answer is an SSE stream with a priming event and event ids, stored for `Last-Event-ID`
 *   resumption ({@link CallEventStream}); progress, log messages and the gateway's own requests to
 *   the caller travel on it;
 * - requests to the caller (an upstream's sampling, elicitation, roots) get string ids
 *   (`aperture-<replica>.<n>`), never the SDK server's numeric ones on the same session; the
 *   caller's answer arrives on another POST and is matched here ({@link SessionCalls.answer}); in
 *   a cluster that POST may reach another replica, which sends it to the one the id names
 *   ({@link askedBy});
 * - `notifications/cancelled` for a direct call aborts it here ({@link SessionCalls.cancel}), and
 *   it is answered no more, its stream left open until the caller closes it, as the SDK does;
 * - an `input_required` result (a 2026-era upstream) is asked of the caller as real requests
 *   (`inputRequiredShim.ts`);
 * - the router answers with the relay's outcome ({@link RelayOutcome}), nothing thrown for a
 *   protocol failure (a denied or unknown tool included); a failure becomes the JSON-RPC error
 *   the SDK server would send (-32002 is -32602 on this era), and anything thrown is a defect,
 *   answered as the SDK does (the code a `ProtocolError` carries, else -32603).
 *
 * Only a well-formed single request with nothing but `name`, `arguments` and `_meta` (a progress
 * token and a client's own keys, none of the `io.modelcontextprotocol/` ones) is answered here
 * (the header checks are {@link era2025Request}'s); anything else (a task, a batch) takes the SDK
 * path.
 * @module
 */
import {
  type ClientCapabilities,
  DEFAULT_NEGOTIATED_PROTOCOL_VERSION,
  DEFAULT_REQUEST_TIMEOUT_MSEC,
  type JSONRPCMessage,
  type LoggingLevel,
  ProtocolErrorCode,
  SUPPORTED_PROTOCOL_VERSIONS
} from "@modelcontextprotocol/server"
import * as Predicate from "effect/Predicate"
import { errorObjectOf, protocolErrorOf } from "../../relay/jsonRpcErrors.js"
import type { CallEventStream } from "./callEventStream.js"
import { era2025Request, RESERVED_META_PREFIX } from "./sessionLists.js"
import type { CallContext } from "../../relay/forwardCall.js"
import { type ProtocolFailure, protocolFailure, type RelayOutcome, relayResult } from "../../relay/outcome.js"
import { fulfilInputRequired } from "./inputRequiredShim.js"

export interface SessionToolCall {
  readonly id: string | number
  readonly params: Record<string, unknown>
  readonly progressToken: string | number | undefined
  /** Whether the client reads an SSE event with empty data (2025-11-25 and later): a priming event is sent. */
  readonly priming: boolean
  /** The caller's W3C trace context headers, for telemetry (two reads, no copy: free when it is off). */
  readonly traceparent: string | undefined
  readonly tracestate: string | undefined
}

const isProgressToken = (value: unknown): value is string | number =>
  typeof value === "string" || Number.isSafeInteger(value)

/** The `tools/call` a POST carries, if the gateway may answer it without the SDK. */
export const sessionToolCall = (headers: Readonly<Record<string, string | undefined>>, body: unknown): SessionToolCall | undefined => {
  const request = era2025Request(headers, body)
  if (request === undefined || request.method !== "tools/call") return undefined
  const params = request.params
  if (!Predicate.isRecord(params) || typeof params["name"] !== "string") return undefined
  let progressToken: string | number | undefined
  for (const key in params) {
    const value = params[key]
    if (key === "arguments") {
      if (value !== undefined && !Predicate.isRecord(value)) return undefined
    } else if (key === "_meta") {
      if (!Predicate.isRecord(value)) return undefined
      for (const metaKey in value) {
        // Keys MCP reserves for the protocol (a 2026 envelope, a related task) are the SDK's to read.
        if (metaKey.startsWith(RESERVED_META_PREFIX)) return undefined
        if (metaKey === "progressToken") {
          if (!isProgressToken(value[metaKey])) return undefined
          progressToken = value[metaKey] as string | number
        }
      }
    } else if (key !== "name") return undefined
  }
  const version = headers["mcp-protocol-version"] ?? DEFAULT_NEGOTIATED_PROTOCOL_VERSION
  return {
    id: request.id,
    params,
    progressToken,
    priming: SUPPORTED_PROTOCOL_VERSIONS.includes(version) && version >= "2025-11-25",
    traceparent: headers["traceparent"],
    tracestate: headers["tracestate"]
  }
}

/** What a session offers its direct calls. */
export interface SessionCallHost {
  readonly capabilities: () => ClientCapabilities | undefined
  readonly logLevel: () => LoggingLevel | undefined
  readonly callTool: (params: Record<string, unknown>, context: CallContext) => Promise<RelayOutcome>
  /** Opens a round state the router minted (see `forwardCall.ts`); throws if it is not valid. */
  readonly verifyRoundState: (state: string) => Promise<unknown>
  /** This replica's id (`replicaBus.ts`), in the ids of the requests its calls send the caller. */
  readonly replica: string
}

/** The replica whose call sent the request a caller's answer is for, by its id; `undefined` if none did. */
export const askedBy = (message: unknown): string | undefined => {
  if (!Predicate.isRecord(message) || "method" in message) return undefined
  const id = message["id"]
  if (typeof id !== "string" || !id.startsWith("aperture-")) return undefined
  const dot = id.lastIndexOf(".")
  return dot > 9 ? id.slice(9, dot) : undefined
}

/** A result as the SDK server sends one: a tool result without `content` gets an empty one. */
const normalized = (result: Record<string, unknown>): Record<string, unknown> =>
  result["content"] !== undefined || "task" in result ? result : { ...result, content: [] }

/** A thrown defect as the SDK server answers it (see {@link errorObjectOf}). */
const errorOf = (error: unknown) => {
  const object = errorObjectOf(error)
  // The 2025 era has no -32002 (resource not found): the SDK sends it as invalid params.
  return object.code === -32002 ? { ...object, code: -32602 } : object
}

/** A protocol failure as the SDK server sends the `ProtocolError` it stands for. */
const failureError = (failure: ProtocolFailure) => {
  const code = failure.code === -32002 ? -32602 : failure.code
  return failure.data === undefined ? { code, message: failure.message } : { code, message: failure.message, data: failure.data }
}

/** An outcome of the shim's retry, as the shim takes it: a result, or rejected with the failure as data (no stack). */
const retried = (outcome: RelayOutcome): Record<string, unknown> | Promise<never> =>
  outcome._tag === "Result" ? outcome.value : Promise.reject(outcome._tag === "Cancelled" ? outcome.reason : outcome)

const invalidRequestState = protocolFailure(ProtocolErrorCode.InvalidParams, "Invalid or expired requestState", { reason: "invalid_request_state" })

interface Waiting {
  readonly resolve: (value: unknown) => void
  readonly reject: (error: Error) => void
}

/** One session's direct calls: in flight, their streams, and their requests to the caller. */
export class SessionCalls {
  private lastRequestId = 0
  private readonly waiting = new Map<string, Waiting>()
  private readonly running = new Map<string | number, AbortController>()
  private readonly streams = new Map<string, CallEventStream>()
  private closing = false

  constructor(private readonly host: SessionCallHost) {}

  /** Runs `call`, writing what it sends and its answer to `stream`; `settled` once it is over. */
  run(call: SessionToolCall, stream: CallEventStream, settled: () => void): void {
    const controller = new AbortController()
    this.running.set(call.id, controller)
    this.streams.set(stream.streamId, stream)
    const context: CallContext = {
      signal: controller.signal,
      progressToken: call.progressToken,
      notify: (notification) => stream.send({ jsonrpc: "2.0", ...notification } as JSONRPCMessage),
      inputResponses: undefined,
      requestState: undefined,
      capabilities: this.host.capabilities(),
      era: "legacy",
      logLevel: this.host.logLevel(),
      request: (request, signal) => this.ask(stream, request, signal, DEFAULT_REQUEST_TIMEOUT_MSEC),
      closeStream: undefined,
      traceparent: call.traceparent,
      tracestate: call.tracestate
    }
    const invoke = (ctx: CallContext) => Promise.resolve().then(() => this.host.callTool(call.params, ctx))
    invoke(context)
      .then((outcome): RelayOutcome | Promise<RelayOutcome> =>
        outcome._tag !== "Result" || outcome.value["resultType"] !== "input_required" ? outcome : fulfilInputRequired({
          method: "tools/call",
          signal: controller.signal,
          capabilities: context.capabilities,
          ask: (request, signal, timeoutMs) => this.ask(stream, request, signal, timeoutMs),
          retry: async (inputResponses, state) => {
            let requestState: unknown
            if (state !== undefined) {
              try {
                requestState = await this.host.verifyRoundState(state)
              } catch {
                return Promise.reject(invalidRequestState)
              }
            }
            return retried(await invoke({ ...context, inputResponses, requestState }))
          }
        }, outcome.value).then(relayResult)
      )
      .then(
        (outcome) => {
          if (controller.signal.aborted) return
          switch (outcome._tag) {
            case "Result":
              return stream.send({ jsonrpc: "2.0", id: call.id, result: normalized(outcome.value) } as JSONRPCMessage)
            case "ProtocolFailure":
              return stream.send({ jsonrpc: "2.0", id: call.id, error: failureError(outcome) })
            case "Cancelled":
              // Nobody is answered once the call is aborted; aborted otherwise (an upstream gone), as the SDK would.
              return stream.send({ jsonrpc: "2.0", id: call.id, error: errorOf(outcome.reason) })
          }
        },
        // A defect (or a shim's failure): answered as the SDK server answers what a handler threw.
        (error: unknown) => {
          if (!controller.signal.aborted) return stream.send({ jsonrpc: "2.0", id: call.id, error: errorOf(error) })
        }
      )
      .catch(() => {}) // `send` never rejects; nothing may escape as an unhandled rejection
      .finally(() => {
        if (this.running.get(call.id) === controller) this.running.delete(call.id)
        settled()
        if (controller.signal.aborted && !this.closing) stream.endWhenClosed()
        else stream.end()
      })
  }

  /** Sends a request to the caller on `stream` and waits for its answer (another POST; see {@link answer}). */
  private ask(
    stream: CallEventStream,
    request: { method: string; params?: Record<string, unknown> },
    signal: AbortSignal,
    timeoutMs: number
  ): Promise<unknown> {
    const id = `aperture-${this.host.replica}.${++this.lastRequestId}`
    return new Promise((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer)
        signal.removeEventListener("abort", onAbort)
        this.waiting.delete(id)
      }
      const giveUp = (reason: unknown) => {
        finish()
        stream.send({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: id, reason: String(reason) } })
        reject(reason)
      }
      const onAbort = () => giveUp(signal.reason)
      const timer = setTimeout(() => giveUp(new Error("Request timed out")), timeoutMs)
      if (signal.aborted) return onAbort()
      signal.addEventListener("abort", onAbort, { once: true })
      this.waiting.set(id, {
        resolve: (value) => {
          finish()
          resolve(value)
        },
        reject: (error) => {
          finish()
          reject(error)
        }
      })
      stream.send({ jsonrpc: "2.0", id, method: request.method, ...(request.params !== undefined && { params: request.params }) } as JSONRPCMessage)
    })
  }

  /** The caller's answer to one of this session's direct requests; `false` if it is not one. */
  answer(message: unknown): boolean {
    if (!Predicate.isRecord(message) || "method" in message || typeof message["id"] !== "string") return false
    const waiting = this.waiting.get(message["id"])
    if (waiting === undefined) return false
    const error = message["error"]
    if (Predicate.isRecord(error)) waiting.reject(protocolErrorOf(error))
    else waiting.resolve(message["result"])
    return true
  }

  /** `notifications/cancelled` for a direct call: aborts it; `false` if it names none. */
  cancel(message: unknown): boolean {
    if (!Predicate.isRecord(message) || message["method"] !== "notifications/cancelled" || "id" in message) return false
    const params = message["params"]
    if (!Predicate.isRecord(params)) return false
    const controller = this.running.get(params["requestId"] as string | number)
    if (controller === undefined) return false
    this.running.delete(params["requestId"] as string | number)
    controller.abort(new Error(typeof params["reason"] === "string" ? params["reason"] : "cancelled by the caller"))
    return true
  }

  /** The direct call's stream an event id belongs to, while the call runs. */
  streamOf(lastEventId: string): CallEventStream | undefined {
    const dot = lastEventId.lastIndexOf(".")
    return dot > 0 ? this.streams.get(lastEventId.slice(0, dot)) : undefined
  }

  /** The stream ended: a resumption of it is the SDK transport's (it replays the stored events). */
  ended(stream: CallEventStream): void {
    this.streams.delete(stream.streamId)
  }

  /** The session is closing: every call is cancelled and every stream ended. */
  close(): void {
    this.closing = true
    for (const controller of this.running.values()) controller.abort(new Error("session closed"))
    this.running.clear()
    for (const waiting of this.waiting.values()) waiting.reject(new Error("session closed"))
    for (const stream of this.streams.values()) stream.end()
  }
}
