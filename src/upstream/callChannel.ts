/**
 * Routing an upstream's server→client traffic (sampling, elicitation, roots, log messages) to
 * the caller whose call caused it. Every upstream connection is shared by all callers, and
 * those messages name no request, so the gateway tracks calls:
 *
 * - over streamable HTTP they arrive on the call's own response stream: the gateway reads it
 *   itself (`upstreamCall`) and hands them over with the call, or, for a call the SDK client
 *   sends (a redirected endpoint, a name the 2026 header must encode, methods other than
 *   tools/call, prompts/get and resources/read), the call's async context names the caller
 *   (AsyncLocalStorage, entered by {@link CallRegistry.withinCall});
 * - otherwise (stdio, legacy SSE) they go to the caller with a call in flight on that
 *   connector when there is exactly one — never guessed among several, since a wrong guess
 *   would show one user's data to another.
 * @module
 */
import {
  getSupportedElicitationModes,
  type ClientCapabilities,
  type LoggingLevel,
  ProtocolError,
  ProtocolErrorCode
} from "@modelcontextprotocol/client"
import type { Identity } from "../plugin/IdentityPlugin.js"
import { ContextWhileRunning } from "./contextWhileRunning.js"

export interface DownstreamCall {
  readonly connectorId: string
  readonly identity: Identity
  /** What the caller's client declared it supports (sampling, elicitation, roots). */
  readonly capabilities: ClientCapabilities | undefined
  /** `legacy`: a 2025-era session, which can take server→client requests. */
  readonly era: "legacy" | "modern"
  /** Log messages below this level are not forwarded; `undefined` on the 2026 era: none are. */
  readonly logLevel: LoggingLevel | undefined
  /** Sends a notification on the caller's request stream. */
  readonly notify: (notification: { method: string; params?: Record<string, unknown> }) => Promise<void>
  /** Sends a request to the caller on its request stream (2025-era callers only); `signal` cancels it. */
  readonly request:
    | ((request: { method: string; params?: Record<string, unknown> }, signal: AbortSignal) => Promise<unknown>)
    | undefined
  /** Asks a 2026-era caller through an `input_required` round (it cannot take requests). */
  readonly ask: ((method: string, params: Record<string, unknown> | undefined) => Promise<unknown>) | undefined
  /**
   * Closes the caller's response stream without ending the call (SSE polling, SEP-1699): the
   * client resumes with Last-Event-ID. Used when the upstream did the same to us.
   */
  readonly closeStream: (() => void) | undefined
  /** Set once the upstream answered. */
  answered: boolean
}

/** The call being forwarded in this async context, if any. */
export const callInContext = (): DownstreamCall | undefined => currentCall.getStore()

const LEVELS: ReadonlyArray<LoggingLevel> = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]

const currentCall = new ContextWhileRunning<DownstreamCall>()

/** Asks a caller something outside any of its calls (the caller's own 2025-era session, say). */
export type AskOutsideCall = (
  method: string,
  params: Record<string, unknown> | undefined,
  signal: AbortSignal
) => Promise<unknown>

/** One caller's way to be reached outside its calls. */
export interface CallerChannel {
  readonly ask: AskOutsideCall
  /** A log message sent outside any call (filtered by the caller's own level). */
  readonly log: (params: Record<string, unknown>) => void
}

/** Calls in flight per connector, and the routing of what upstreams send back outside a response. */
export class CallRegistry {
  private readonly inFlight = new Map<string, Set<DownstreamCall>>()

  /**
   * `owner`: this registry serves one caller's own upstream session (see `callerSessions.ts`),
   * so whatever that session sends belongs to that caller: to one of its calls in flight, or,
   * with none, through `owner` (an upstream asks for roots right after the session opens, or
   * after `notifications/roots/list_changed`).
   */
  constructor(private readonly owner?: CallerChannel) {}

  /** Whether a call is in flight on the connector. */
  busy(connectorId: string): boolean {
    return (this.inFlight.get(connectorId)?.size ?? 0) > 0
  }

  /**
   * Runs `forward` as a call in flight on its connector: a message naming no call goes to it when
   * it is the only one.
   */
  run<A>(call: DownstreamCall, forward: () => Promise<A>): Promise<A> {
    let calls = this.inFlight.get(call.connectorId)
    if (calls === undefined) {
      calls = new Set()
      this.inFlight.set(call.connectorId, calls)
    }
    calls.add(call)
    const done = () => {
      call.answered = true
      calls.delete(call)
    }
    return forward().finally(done)
  }

  /**
   * Runs `forward` in `call`'s async context: what the SDK client reads on the call's response
   * stream is routed to this caller (a context in use only while such calls run).
   */
  withinCall<A>(call: DownstreamCall, forward: () => Promise<A>): Promise<A> {
    return currentCall.run(call, forward)
  }

  /** The caller an upstream message belongs to, if it can be known. */
  private callerOf(connectorId: string): DownstreamCall | undefined {
    const current = currentCall.getStore()
    if (current !== undefined && current.connectorId === connectorId) return current
    const calls = this.inFlight.get(connectorId)
    // With one caller's own session every call is that caller's: any of them will do.
    if (calls !== undefined && (calls.size === 1 || this.owner !== undefined && calls.size > 0)) {
      return calls.values().next().value
    }
    return undefined
  }

  /** Forwards an upstream's server→client request to its caller, if that caller can take it. */
  async forwardRequest(
    connectorId: string,
    method: string,
    params: Record<string, unknown> | undefined,
    signal: AbortSignal,
    call: DownstreamCall | undefined = this.callerOf(connectorId)
  ): Promise<unknown> {
    if (call === undefined) {
      if (this.owner !== undefined) return this.owner.ask(method, params, signal)
      throw new ProtocolError(
        ProtocolErrorCode.InternalError,
        `Aperture cannot tell which caller this ${method} is for (no single call in flight on connector ${connectorId})`
      )
    }
    const missing = missingCapability(call.capabilities, method, params)
    if (missing !== undefined) {
      throw new ProtocolError(ProtocolErrorCode.MethodNotFound, `The calling client does not support ${missing}`)
    }
    // The upstream cancelling its request cancels the caller's (notifications/cancelled both ways).
    if (call.request !== undefined) return call.request({ method, ...(params !== undefined && { params }) }, signal)
    if (call.ask !== undefined) return call.ask(method, params)
    throw new ProtocolError(
      ProtocolErrorCode.MethodNotFound,
      `The calling client speaks 2026-07-28, where ${method} exists only inside tools/call, prompts/get and resources/read`
    )
  }

  /** Forwards an upstream's log message to its caller, when the caller's level lets it through. */
  forwardLog(
    connectorId: string,
    params: { level?: unknown } & Record<string, unknown>,
    call: DownstreamCall | undefined = this.callerOf(connectorId)
  ): void {
    if (call === undefined) {
      this.owner?.log(params)
      return
    }
    if (call.era === "modern" && call.logLevel === undefined) return
    if (!logPasses(params.level, call.logLevel)) return
    call.notify({ method: "notifications/message", params }).catch(() => {})
  }
}

/** Whether a log message at `level` reaches a caller whose level is `threshold` (none set: all do). */
export const logPasses = (level: unknown, threshold: LoggingLevel | undefined): boolean =>
  threshold === undefined || LEVELS.indexOf(level as LoggingLevel) >= LEVELS.indexOf(threshold)

/** What the caller lacks to receive this request, or `undefined` if it can. */
export const missingCapability = (
  capabilities: ClientCapabilities | undefined,
  method: string,
  params: Record<string, unknown> | undefined
): string | undefined => {
  switch (method) {
    case "sampling/createMessage":
      return capabilities?.sampling === undefined ? "sampling" : undefined
    case "roots/list":
      return capabilities?.roots === undefined ? "roots" : undefined
    case "elicitation/create": {
      const modes = getSupportedElicitationModes(capabilities?.elicitation)
      return params?.["mode"] === "url"
        ? (modes.supportsUrlMode ? undefined : "URL-mode elicitation")
        : (modes.supportsFormMode ? undefined : "elicitation")
    }
    default:
      return undefined
  }
}
