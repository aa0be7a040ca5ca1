/**
 * The router's functions with OpenTelemetry spans, chosen once when the router is built and
 * only when telemetry is on (with it off the router keeps its plain functions: no span, no
 * `_meta` copy, nothing per request).
 *
 * - Each MCP request a caller sends that the router answers (calls, reads, prompts, completions,
 *   `logging/setLevel`, and the lists, answered by the gateway alone) gets a server span, a child
 *   of the caller's trace context: its `_meta.traceparent` (SEP-414, the more specific) or else
 *   its `traceparent` header. Attributes: the method, the tool or prompt name
 *   or resource URI, the connector, the caller's login and the outcome; never arguments or results.
 * - Each exchange with an upstream gets a client span, a child of the request's, and its trace
 *   context goes upstream in `params._meta` (`traceparent`, `tracestate`: SEP-414), which
 *   `relay/upstreamCall.ts` also sends as headers over streamable HTTP.
 * @module
 */
import { TRACEPARENT_META_KEY, TRACESTATE_META_KEY } from "@modelcontextprotocol/client"
import type { Identity } from "../plugin/IdentityPlugin.js"
import type { CallContext } from "../relay/forwardCall.js"
import type { RelayOutcome } from "../relay/outcome.js"
import type { GatewayTelemetry, RequestSpan, TraceContextHeaders, TracedOutcome } from "../telemetry/Telemetry.js"
import type { LiveUpstream } from "../upstream/Upstreams.js"

type Params = Record<string, unknown> | undefined

/** What a request names: a tool or prompt name, a resource URI. */
const targetOf = (params: Params): string | undefined => {
  const name = params?.["name"] ?? params?.["uri"]
  return typeof name === "string" ? name : undefined
}

/** The caller's trace context: `_meta` (SEP-414) over the request's headers. */
const callerTraceContext = (context: CallContext, params: Params): TraceContextHeaders | undefined => {
  const meta = params?.["_meta"] as Record<string, unknown> | undefined
  const fromMeta = meta?.[TRACEPARENT_META_KEY]
  if (typeof fromMeta === "string") {
    const state = meta?.[TRACESTATE_META_KEY]
    return { traceparent: fromMeta, tracestate: typeof state === "string" ? state : undefined }
  }
  return context.traceparent === undefined ? undefined : { traceparent: context.traceparent, tracestate: context.tracestate }
}

const outcomeOf = (outcome: RelayOutcome): [TracedOutcome, number | undefined] => {
  switch (outcome._tag) {
    case "Result":
      return [outcome.value["isError"] === true ? "tool_error" : "ok", undefined]
    case "ProtocolFailure":
      return ["error", outcome.code]
    case "Cancelled":
      return ["cancelled", undefined]
  }
}

const thrownOutcome = (error: unknown): [TracedOutcome, number | undefined] => {
  const code = (error as { code?: unknown } | null)?.code
  return ["error", typeof code === "number" ? code : undefined]
}

type Forward = (
  upstream: LiveUpstream,
  method: string,
  params: Record<string, unknown>,
  context: CallContext,
  identity?: Identity
) => Promise<RelayOutcome>

/** `forward` with a client span per upstream exchange, its context sent upstream in `_meta`. */
export const tracedForward = (telemetry: GatewayTelemetry, forward: Forward): Forward =>
(upstream, method, params, context, identity) => {
  const connectorId = upstream.connector.id
  context.requestSpan?.setConnector(connectorId)
  const exchange = telemetry.startExchange(
    { method, connectorId, target: targetOf(params) },
    context.requestSpan?.context ?? callerTraceContext(context, params)
  )
  const meta: Record<string, unknown> = { ...(params["_meta"] as Record<string, unknown> | undefined) }
  meta[TRACEPARENT_META_KEY] = exchange.context.traceparent
  if (exchange.context.tracestate !== undefined) meta[TRACESTATE_META_KEY] = exchange.context.tracestate
  else delete meta[TRACESTATE_META_KEY]
  return forward(upstream, method, { ...params, _meta: meta }, context, identity).then((outcome) => {
    exchange.end(...outcomeOf(outcome))
    return outcome
  }, (error: unknown) => {
    exchange.end(...thrownOutcome(error))
    throw error
  })
}

type Handler<A> = (identity: Identity, params: Params, context: CallContext) => Promise<A> | A

/**
 * `handler` with a server span per request. A request that reached no connector and failed was
 * refused by the gateway itself (not found, or not granted: the caller is told the same for both).
 */
export const tracedRequest = <A>(
  telemetry: GatewayTelemetry,
  method: string,
  handler: Handler<A>,
  outcome: (answer: A) => [TracedOutcome, number | undefined]
) =>
(identity: Identity, params: Params, context: CallContext): Promise<A> => {
  const span = telemetry.startRequest({ method, target: targetOf(params), login: identity.login }, callerTraceContext(context, params))
  let reached = false
  const requestSpan: RequestSpan = {
    context: span.context,
    setConnector: (id) => {
      reached = true
      span.setConnector(id)
    },
    end: span.end
  }
  const refused = ([kind, code]: [TracedOutcome, number | undefined]): [TracedOutcome, number | undefined] =>
    !reached && kind === "error" ? ["rejected", code] : [kind, code]
  return Promise.resolve().then(() => handler(identity, params, { ...context, requestSpan })).then((answer) => {
    span.end(...refused(outcome(answer)))
    return answer
  }, (error: unknown) => {
    span.end(...refused(thrownOutcome(error)))
    throw error
  })
}

/**
 * A list answered from the catalog (no upstream exchange), with its server span, a child of the
 * caller's `_meta.traceparent` (when `metaOf` finds one) or else of its `traceparent` header.
 */
export const tracedList = <P, A>(
  telemetry: GatewayTelemetry,
  method: string,
  list: (identity: Identity, params: P, traceparent?: string) => A,
  metaOf: (params: P) => Params = () => undefined
) =>
(identity: Identity, params: P, traceparent?: string): A => {
  const parent = callerTraceContext({ traceparent, tracestate: undefined } as CallContext, metaOf(params))
  const span = telemetry.startRequest({ method, target: undefined, login: identity.login }, parent)
  try {
    const answer = list(identity, params, traceparent)
    span.end("ok")
    return answer
  } catch (error) {
    span.end("rejected", thrownOutcome(error)[1])
    throw error
  }
}

/** The lists a 2025-era session answers as bytes (`router.listJson`), each with its span. */
export const tracedListJson = <M extends string, A>(
  telemetry: GatewayTelemetry,
  byMethod: Record<M, (identity: Identity, cursor: string | undefined, traceparent?: string) => A>
): Record<M, (identity: Identity, cursor: string | undefined, traceparent?: string) => A> => {
  const traced = {} as Record<M, (identity: Identity, cursor: string | undefined, traceparent?: string) => A>
  for (const method of Object.keys(byMethod) as Array<M>) {
    const list = byMethod[method]
    traced[method] = (identity, cursor, traceparent) => {
      const answer = list(identity, cursor)
      // None: the SDK path answers it (and makes its span): one span per request.
      if (answer === undefined) return answer
      const parent = traceparent === undefined ? undefined : { traceparent, tracestate: undefined }
      telemetry.startRequest({ method, target: undefined, login: identity.login }, parent).end("ok")
      return answer
    }
  }
  return traced
}

/** For handlers that answer with the relay's outcome (`tools/call`). */
export const relayOutcomeOf = outcomeOf
/** For handlers that answer with a result and throw their failures (`prompts/get`, `resources/read`). */
export const answered = (): [TracedOutcome, number | undefined] => ["ok", undefined]
