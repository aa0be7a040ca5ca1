/**
 * OpenTelemetry export, as the rest of the gateway sees it: a service that exists only when
 * `telemetry` is configured. Services that trace look it up once, when they are built, and pick
 * their traced or plain functions then, so with telemetry off a request does no tracing work at
 * all (no span, no attribute, no header).
 *
 * The MCP side (router and relay) is plain TypeScript on promises, so its spans are made with the
 * OpenTelemetry API directly, parented on the caller's W3C trace context (the `traceparent` of
 * its request, or of its `_meta`, SEP-414). Effect code (the platform's `http.server` span, the
 * proxy, `Effect.fn` spans) traces through the Effect tracer `@effect/opentelemetry` installs.
 * @module
 */
import * as Context from "effect/Context"

/** How a traced request ended. */
export type TracedOutcome =
  /** The upstream answered with a result. */
  | "ok"
  /** The upstream answered with a tool result marked `isError`. */
  | "tool_error"
  /** A JSON-RPC error (the upstream's, or the gateway's: timeout, connector down). */
  | "error"
  /** The gateway refused it before any upstream: a tool, prompt or resource not found or not granted. */
  | "rejected"
  /** The caller cancelled it, or its session closed. */
  | "cancelled"

/** W3C trace context to continue or to hand on. */
export interface TraceContextHeaders {
  readonly traceparent: string
  readonly tracestate: string | undefined
}

/** The span of one MCP request from a caller. */
export interface RequestSpan {
  /** This span's context, the parent of the upstream exchange's. */
  readonly context: TraceContextHeaders
  /** The connector that served it, once the router picked one. */
  readonly setConnector: (connectorId: string) => void
  /** Ends the span (and records the request metrics); `code` is the JSON-RPC error code, if any. */
  readonly end: (outcome: TracedOutcome, code?: number) => void
}

/** The client span of one exchange with an upstream. */
export interface ExchangeSpan {
  /** To send upstream (`traceparent` header, `_meta`): the upstream's spans become its children. */
  readonly context: TraceContextHeaders
  readonly end: (outcome: TracedOutcome, code?: number) => void
}

export interface RequestAttributes {
  /** The MCP method, e.g. `tools/call`. */
  readonly method: string
  /** The tool or prompt name, or the resource URI, as the caller named it (never arguments). */
  readonly target: string | undefined
  /** The caller's login. */
  readonly login: string
}

export interface ExchangeAttributes {
  readonly method: string
  readonly connectorId: string
  /** The name or URI as the upstream knows it. */
  readonly target: string | undefined
}

export interface GatewayTelemetry {
  /** Starts the span of an MCP request, a child of `parent` (the caller's trace context) when given. */
  readonly startRequest: (attributes: RequestAttributes, parent: TraceContextHeaders | undefined) => RequestSpan
  /** Starts the client span of an upstream exchange, a child of `parent`. */
  readonly startExchange: (attributes: ExchangeAttributes, parent: TraceContextHeaders | undefined) => ExchangeSpan
  /** Records one HTTP connector (proxy) request in the exported metrics. */
  readonly recordProxyRequest: (connectorId: string, method: string, status: number | undefined, seconds: number) => void
}

/** Present only while OpenTelemetry export is on (see `telemetryLayer`). */
export class Telemetry extends Context.Tag("aperture/Telemetry")<Telemetry, GatewayTelemetry>() {}
