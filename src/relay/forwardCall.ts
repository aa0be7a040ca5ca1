/**
 * Forwarding one call to its upstream, whatever the two sides' protocol eras:
 * - the caller's own capabilities and log level ride along to a 2026-era upstream;
 * - an upstream's `input_required` result goes back to the caller (2026-07-28), or through a
 *   shim (the SDK's, or `inputRequiredShim.ts` for direct calls) as real requests to a 2025-era
 *   session; its `requestState` is sealed per caller;
 * - a `tools/call` to a streamable-HTTP upstream is sent without the SDK client
 *   (`upstreamCall.ts`); one the upstream redirects goes through the SDK client after all;
 * - a 2025-era upstream's server→client requests reach a 2025-era caller as related requests,
 *   and a 2026-07-28 caller as `input_required` rounds (see {@link HeldCall});
 * - the upstream's JSON-RPC errors pass through unchanged; a silent upstream times out
 *   (reset by progress, paused while the caller answers), and the call is cancelled upstream.
 *
 * It returns how the request ended as data ({@link RelayOutcome}), never throwing a protocol
 * error: the router turns a failure into the SDK's `ProtocolError` once, where it answers.
 * @module
 */
import {
  CLIENT_CAPABILITIES_META_KEY,
  type ClientCapabilities,
  type createRequestStateCodec,
  LOG_LEVEL_META_KEY,
  type LoggingLevel,
  ProtocolError,
  ProtocolErrorCode,
  SERVER_INFO_META_KEY
} from "@modelcontextprotocol/server"
import type { Identity } from "../plugin/IdentityPlugin.js"
import { CredentialWaitAborted } from "../upstream/authorizedFetch.js"
import type { DownstreamCall } from "../upstream/callChannel.js"
import type { UpstreamRoute } from "../upstream/upstreamRoute.js"
import { MCP_NAME_SOURCE, plainHeaderValue, upstreamCall, type UpstreamCallOutcome } from "./upstreamCall.js"
import { passthrough } from "../upstream/passthrough.js"
import { describeError } from "../catalog/UpstreamError.js"
import type { LiveUpstream } from "../upstream/Upstreams.js"
import { HeldCall, type HeldCalls } from "./heldCalls.js"
import { inactivityTimer } from "./inactivityTimer.js"
import { exposeResultUris } from "./resourceUris.js"
import { type Cancelled, type ProtocolFailure, protocolFailure, type RelayOutcome, type RelayResult, relayResult } from "./outcome.js"
import type { RequestSpan } from "../telemetry/Telemetry.js"

/** Per-call context from the downstream request. */
export interface CallContext {
  readonly signal: AbortSignal
  readonly progressToken: string | number | undefined
  readonly notify: (notification: { method: string; params?: Record<string, unknown> }) => Promise<void>
  /** A multi-round retry's answers (2026-07-28 `inputResponses`, or the SDK shim's for 2025 sessions). */
  readonly inputResponses: Record<string, unknown> | undefined
  /** A multi-round retry's state, as our codec decoded it (see {@link RoundState}). */
  readonly requestState: unknown
  /** What the caller's client declared (forwarded per request to 2026-era upstreams). */
  readonly capabilities: ClientCapabilities | undefined
  /** `legacy`: a 2025-era session. */
  readonly era: "legacy" | "modern"
  /** The caller's log level (set with logging/setLevel, or per request on the 2026 era). */
  readonly logLevel: LoggingLevel | undefined
  /** Sends a request to the caller on this call's stream (2025-era sessions only). */
  readonly request:
    | ((request: { method: string; params?: Record<string, unknown> }, signal: AbortSignal) => Promise<unknown>)
    | undefined
  /** Ends the caller's response stream while the call goes on (2025-era sessions with resumption). */
  readonly closeStream: (() => void) | undefined
  /** The caller's W3C `traceparent` and `tracestate` headers, read by telemetry only (router/tracedCalls.ts). */
  readonly traceparent?: string | undefined
  readonly tracestate?: string | undefined
  /** With telemetry on: this request's span, the parent of its upstream exchange's. */
  readonly requestSpan?: RequestSpan | undefined
}

/**
 * The `requestState` the gateway hands callers, sealed with the caller and connector it belongs
 * to, so a caller can neither forge it nor replay another caller's round (every caller is the
 * same client to the upstream).
 */
export interface RoundState {
  /** Connector the round belongs to. */
  readonly c: string
  /** Login of the caller the round belongs to. */
  readonly l: string
  /** The upstream's requestState, if it sent one. */
  readonly s?: string
  /** A held upstream call waiting for this caller's answers (see {@link HeldCall}). */
  readonly h?: string
}

export type RoundStateCodec = ReturnType<typeof createRequestStateCodec<RoundState>>

/** Methods whose 2026-07-28 results may be `input_required`. */
export const MULTI_ROUND_METHODS: ReadonlySet<string> = new Set(["tools/call", "prompts/get", "resources/read"])

/** Hard cap on one call however much progress it reports, as a multiple of the connector timeout. */
const HARD_CAP_FACTOR = 10

const invalidRoundState = (): ProtocolFailure =>
  protocolFailure(ProtocolErrorCode.InvalidParams, "Invalid or expired requestState", { reason: "invalid_request_state" })

const isProtocolFailure = (value: unknown): value is ProtocolFailure =>
  (value as { _tag?: unknown } | null | undefined)?._tag === "ProtocolFailure"

/**
 * A 2026-era upstream stamps its own `serverInfo` into each result's `_meta`; the caller's server
 * is the gateway, whose stamp the SDK adds on the way out.
 */
const withoutUpstreamServerInfo = (result: Record<string, unknown>) => {
  const meta = result["_meta"] as Record<string, unknown> | undefined
  if (meta !== undefined && SERVER_INFO_META_KEY in meta) {
    const { [SERVER_INFO_META_KEY]: _, ...rest } = meta
    if (Object.keys(rest).length === 0) delete result["_meta"]
    else result["_meta"] = rest
  }
  return result
}

/**
 * The upstream's direct route for a call, when the gateway may send it without the SDK client:
 * one of the methods it sends itself, a streamable-HTTP connection, and on the 2026 era a name
 * or URI that travels in `Mcp-Name` as it is (see {@link plainHeaderValue}).
 */
const directRouteFor = (upstream: LiveUpstream, method: string, params: Record<string, unknown>): UpstreamRoute | undefined => {
  const named = MCP_NAME_SOURCE[method]
  const direct = upstream.direct
  if (named === undefined || direct === undefined || !direct.usable) return undefined
  if (upstream.era === "modern" && !(typeof params[named] === "string" && plainHeaderValue(params[named]))) return undefined
  return direct
}

/** As the SDK client's 2026 decoding: a complete result reaches the caller without its `resultType`. */
const completeResult = (result: Record<string, unknown>) => {
  if (result["resultType"] === "complete") delete result["resultType"]
  return result
}

/**
 * A call past the hard cap, as the SDK path reports its client's total timeout. (An error, not
 * a {@link ProtocolFailure}: it is the call's abort reason, which the upstream sees too.)
 */
const hardCapError = (connectorId: string) =>
  new ProtocolError(ProtocolErrorCode.InternalError, `connector ${connectorId}: Request timed out`)

/** Aborts `controller` when `signal` does, until the returned function unlinks them. */
const link = (signal: AbortSignal, onAbort: () => void): () => void => {
  if (signal.aborted) {
    onAbort()
    return () => {}
  }
  signal.addEventListener("abort", onAbort, { once: true })
  return () => signal.removeEventListener("abort", onAbort)
}

export const makeForwarder = (roundStates: RoundStateCodec, heldCalls: HeldCalls) => {
  const ownerOf = (identity: Identity, connectorId: string) => `${identity.login}\u0000${connectorId}`

  /** Waits for a held call's outcome: the result, or the next round of questions for the caller. */
  const settle = async (held: HeldCall, context: CallContext, identity: Identity, connectorId: string): Promise<RelayOutcome> => {
    const unlink = link(context.signal, () => held.abort(new Error("cancelled by the caller")))
    try {
      const outcome = await held.next()
      if (outcome.kind === "result") return outcome.result
      const token = heldCalls.hold(held, ownerOf(identity, connectorId))
      return relayResult({
        resultType: "input_required",
        inputRequests: outcome.inputRequests,
        requestState: await roundStates.mint({ c: connectorId, l: identity.login, h: token })
      })
    } finally {
      unlink()
    }
  }

  /**
   * Sends one request to an upstream for a caller (`identity` undefined: the gateway's own
   * request) and returns how it ended; it rejects only on a fault of the gateway's own.
   */
  return async (
    upstream: LiveUpstream,
    method: string,
    baseParams: Record<string, unknown>,
    context: CallContext,
    identity?: Identity
  ): Promise<RelayOutcome> => {
    const connectorId = upstream.connector.id
    const multiRound = identity !== undefined && MULTI_ROUND_METHODS.has(method)
    // The caller's round must belong to this caller and connector.
    const round = multiRound ? context.requestState as RoundState | undefined : undefined
    if (round !== undefined && (round.c !== connectorId || round.l !== identity!.login)) return invalidRoundState()

    // A 2026-era caller answering the questions of a held upstream call.
    if (round?.h !== undefined && identity !== undefined) {
      const held = heldCalls.take(round.h, ownerOf(identity, connectorId))
      if (held === undefined) return invalidRoundState()
      held.answer(context.inputResponses)
      return settle(held, context, identity, connectorId)
    }

    let params = baseParams
    if (multiRound) {
      params = {
        ...params,
        ...(context.inputResponses !== undefined && { inputResponses: context.inputResponses }),
        ...(round?.s !== undefined && { requestState: round.s })
      }
    }
    if (upstream.era === "modern") {
      // A 2026-era request carries its client's identity: forward the caller's own
      // capabilities and log level, so the upstream asks only what this caller can answer.
      const meta = { ...(params["_meta"] as Record<string, unknown> | undefined) }
      meta[CLIENT_CAPABILITIES_META_KEY] = context.capabilities ?? {}
      if (context.logLevel !== undefined) meta[LOG_LEVEL_META_KEY] = context.logLevel
      params = { ...params, _meta: meta }
    }

    const timeoutMs = upstream.timeout.ms
    const controller = new AbortController()
    // Built only when it happens: an Error captures a stack trace, too costly for every call.
    let timedOut: ProtocolError | undefined
    const timer = inactivityTimer(timeoutMs, () => {
      timedOut = new ProtocolError(
        ProtocolErrorCode.InternalError,
        `connector ${connectorId} did not answer within ${upstream.timeout.text}`
      )
      controller.abort(timedOut)
    })
    // While the caller answers a question, the upstream is not the one keeping us waiting.
    const paused = <A>(promise: () => Promise<A>) => {
      timer.pause()
      return promise().finally(timer.resume)
    }
    let held: HeldCall | undefined
    const call: DownstreamCall | undefined = identity === undefined ? undefined : {
      connectorId,
      identity,
      capabilities: context.capabilities,
      era: context.era,
      logLevel: context.logLevel,
      notify: context.notify,
      request: context.request === undefined ? undefined : (request, signal) => paused(() => context.request!(request, signal)),
      ask: context.era === "modern" && multiRound
        ? (askedMethod, askedParams) => paused(() => held!.ask(askedMethod, askedParams))
        : undefined,
      closeStream: context.closeStream,
      answered: false
    }
    const progressToken = context.progressToken
    const onProgress = (progress: Record<string, unknown>) => {
      timer.reset()
      if (progressToken !== undefined) {
        context.notify({ method: "notifications/progress", params: { ...progress, progressToken } }).catch(() => {})
      }
    }
    let cappedAt: ProtocolError | undefined
    const requestWithSdk = (): Promise<RelayResult> =>
      upstream.client.request({ method, params }, passthrough, {
        // input_required results come back as they are: the caller answers them (2026-07-28),
        // or the SDK's shim asks a 2025-era caller with real requests and calls us again.
        allowInputRequired: multiRound,
        signal: controller.signal,
        timeout: timeoutMs * HARD_CAP_FACTOR,
        maxTotalTimeout: timeoutMs * HARD_CAP_FACTOR,
        onprogress: onProgress
      }).then(relayResult)
    // Over streamable HTTP the SDK client reads the call's messages in the call's async context;
    // other transports' messages arrive outside any call's.
    const sendWithSdk = call !== undefined && upstream.direct !== undefined
      ? () => upstream.calls.withinCall(call, requestWithSdk)
      : requestWithSdk
    const direct = identity !== undefined ? directRouteFor(upstream, method, params) : undefined
    const send = direct === undefined ? sendWithSdk : (): Promise<RelayResult | ProtocolFailure> => {
      // The SDK client's hard cap, which the direct path does not get from it.
      const cap = setTimeout(() => {
        cappedAt = hardCapError(connectorId)
        controller.abort(cappedAt)
      }, timeoutMs * HARD_CAP_FACTOR)
      return upstreamCall(direct, method, params, {
        signal: controller.signal,
        onProgress,
        onLog: (log) => upstream.calls.forwardLog(connectorId, log, call),
        onRequest: (requestMethod, requestParams, signal) =>
          upstream.calls.forwardRequest(connectorId, requestMethod, requestParams, signal, call)
      }).then((outcome: UpstreamCallOutcome) => {
        // Not run upstream: the SDK client follows the redirect as it may.
        if (outcome._tag === "Redirected") return sendWithSdk()
        if (outcome._tag === "Result") completeResult(outcome.value)
        return outcome
      }).finally(() => clearTimeout(cap))
    }

    /**
     * What a failed request tells the caller: the first that applies of our timeout (or the
     * credential it cut short), the hard cap, the upstream's own JSON-RPC error (returned by the
     * direct path, thrown by the SDK client), the caller's cancellation, a broken connection.
     */
    const failed = (error: unknown): ProtocolFailure | Cancelled => {
      if (timedOut !== undefined && controller.signal.reason === timedOut) {
        return error instanceof CredentialWaitAborted
          ? protocolFailure(
            ProtocolErrorCode.InternalError,
            `connector ${connectorId}: its credential was not ready within ${upstream.timeout.text} (the token endpoint did not answer in time); the call was not sent`
          )
          : protocolFailure(timedOut.code, timedOut.message)
      }
      if (cappedAt !== undefined && controller.signal.reason === cappedAt) {
        // As the SDK client's own total timeout: the connection is checked too.
        upstream.suspect()
        return protocolFailure(cappedAt.code, cappedAt.message)
      }
      // A JSON-RPC error answered by the upstream passes through (ProtocolError is
      // brand-checked, so the client package's errors match the server package's class),
      // without the credential it was sent: an upstream may echo its request in an error.
      if (isProtocolFailure(error) || error instanceof ProtocolError) {
        const sent = upstream.sentCredentials
        return sent === undefined
          ? protocolFailure(error.code, error.message, error.data)
          : protocolFailure(error.code, sent.scrub(error.message), sent.scrubJson(error.data))
      }
      if (controller.signal.aborted) return { _tag: "Cancelled", reason: error }
      // Anything else is the connection: let the connector check it now.
      upstream.suspect()
      return protocolFailure(ProtocolErrorCode.InternalError, `connector ${connectorId}: ${describeError(error)}`)
    }

    const unlinkCaller = link(context.signal, () => controller.abort(new Error("cancelled by the caller")))
    const result: Promise<RelayOutcome> = (call === undefined ? send() : upstream.calls.run(call, send))
      .then(async (outcome): Promise<RelayOutcome> => {
        if (outcome._tag === "ProtocolFailure") return failed(outcome)
        const value = outcome.value
        if (multiRound && value["resultType"] === "input_required") {
          const upstreamState = value["requestState"]
          value["requestState"] = await roundStates.mint({
            c: connectorId,
            l: identity!.login,
            ...(typeof upstreamState === "string" && { s: upstreamState })
          })
          return outcome
        }
        const exposed = exposeResultUris(method, upstream.connector, withoutUpstreamServerInfo(value))
        return exposed === value ? outcome : relayResult(exposed)
      })
      .catch(failed)
      .finally(timer.stop)
    try {
      if (call?.ask === undefined || identity === undefined) return await result
      held = new HeldCall(result, (reason) => controller.abort(reason))
      return await settle(held, context, identity, connectorId)
    } finally {
      unlinkCaller()
    }
  }
}
