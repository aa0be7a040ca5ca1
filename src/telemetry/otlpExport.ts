/**
 * The OpenTelemetry SDK behind {@link Telemetry}: spans and metrics exported over OTLP/HTTP
 * (protobuf, the specification's default protocol), through `@effect/opentelemetry` so Effect's
 * own spans (`http.server`, `Effect.fn`) go the same way. Loaded with a dynamic `import()` only
 * when telemetry is configured: a gateway without it never loads the SDK.
 * @module
 */
import * as Resource from "@effect/opentelemetry/Resource"
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import * as OtelTracer from "@effect/opentelemetry/Tracer"
import * as Headers from "@effect/platform/Headers"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import { type Attributes, type Context as OtelContext, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace, type Tracer } from "@opentelemetry/api"
import { defaultTextMapGetter, defaultTextMapSetter } from "@opentelemetry/api"
import { W3CTraceContextPropagator } from "@opentelemetry/core"
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-proto"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto"
import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as EffectTracer from "effect/Tracer"
import type { TelemetrySettings } from "../config/model.js"
import { version } from "../version.js"
import {
  type ExchangeAttributes,
  type GatewayTelemetry,
  type RequestAttributes,
  Telemetry,
  type TraceContextHeaders,
  type TracedOutcome
} from "./Telemetry.js"

/** How long shutdown waits for the last export. */
const SHUTDOWN_TIMEOUT_MS = 5_000
/** The specification's default metric export interval, unless `OTEL_METRIC_EXPORT_INTERVAL` says. */
const DEFAULT_METRIC_INTERVAL_MS = 60_000

const propagator = new W3CTraceContextPropagator()

/** The caller's context as a parent (`ROOT_CONTEXT` when absent or malformed: a new trace). */
const parentContext = (parent: TraceContextHeaders | undefined): OtelContext =>
  parent === undefined ? ROOT_CONTEXT : propagator.extract(ROOT_CONTEXT, parent, defaultTextMapGetter)

const contextOf = (span: Span, parent: OtelContext): TraceContextHeaders => {
  const carrier: Record<string, string> = {}
  propagator.inject(trace.setSpan(parent, span), carrier, defaultTextMapSetter)
  return { traceparent: carrier["traceparent"] as string, tracestate: carrier["tracestate"] }
}

/** The OpenTelemetry GenAI/MCP conventions' attribute for what a method names. */
const TARGET_ATTRIBUTE: Readonly<Record<string, string>> = {
  "tools/call": "gen_ai.tool.name",
  "prompts/get": "gen_ai.prompt.name",
  "resources/read": "mcp.resource.uri",
  "resources/subscribe": "mcp.resource.uri",
  "resources/unsubscribe": "mcp.resource.uri"
}

const spanName = (method: string, target: string | undefined) => target === undefined ? method : `${method} ${target}`

const baseAttributes = (method: string, target: string | undefined): Attributes => {
  const attributes: Attributes = { "mcp.method.name": method }
  const key = TARGET_ATTRIBUTE[method]
  if (key !== undefined && target !== undefined) attributes[key] = target
  if (method === "tools/call") attributes["gen_ai.operation.name"] = "execute_tool"
  return attributes
}

const endSpan = (span: Span, outcome: TracedOutcome, code: number | undefined) => {
  span.setAttribute("aperture.outcome", outcome)
  if (code !== undefined) span.setAttribute("rpc.jsonrpc.error_code", code)
  if (outcome === "error" || outcome === "tool_error" || outcome === "rejected") {
    span.setAttribute("error.type", code === undefined ? outcome : String(code))
    span.setStatus({ code: SpanStatusCode.ERROR })
  }
  span.end()
}

const makeGatewayTelemetry = (tracer: Tracer, meterProvider: MeterProvider | undefined): GatewayTelemetry => {
  const meter = meterProvider?.getMeter("aperture", version)
  const requests = meter?.createCounter("aperture.requests", {
    description: "Requests the gateway served: MCP requests by method, and HTTP connector (proxy) requests by HTTP method."
  })
  const duration = meter?.createHistogram("aperture.request.duration", {
    unit: "s",
    description: "Time from the caller's request to the gateway's answer (for the proxy: to the upstream's response headers)."
  })
  const record = (attributes: Attributes, seconds: number) => {
    requests?.add(1, attributes)
    duration?.record(seconds, attributes)
  }
  return {
    startRequest: (attributes: RequestAttributes, parent) => {
      const parentCtx = parentContext(parent)
      const span = tracer.startSpan(spanName(attributes.method, attributes.target), {
        kind: SpanKind.SERVER,
        attributes: { ...baseAttributes(attributes.method, attributes.target), "user.id": attributes.login }
      }, parentCtx)
      const started = performance.now()
      let connector: string | undefined
      return {
        context: contextOf(span, parentCtx),
        setConnector: (id) => {
          connector = id
          span.setAttribute("aperture.connector", id)
        },
        end: (outcome, code) => {
          endSpan(span, outcome, code)
          // A request refused before any connector is counted without one.
          const labels: Attributes = { "mcp.method.name": attributes.method, "aperture.outcome": outcome }
          if (connector !== undefined) labels["aperture.connector"] = connector
          record(labels, (performance.now() - started) / 1000)
        }
      }
    },
    startExchange: (attributes: ExchangeAttributes, parent) => {
      const parentCtx = parentContext(parent)
      const span = tracer.startSpan(spanName(attributes.method, attributes.target), {
        kind: SpanKind.CLIENT,
        attributes: { ...baseAttributes(attributes.method, attributes.target), "aperture.connector": attributes.connectorId }
      }, parentCtx)
      return { context: contextOf(span, parentCtx), end: (outcome, code) => endSpan(span, outcome, code) }
    },
    recordProxyRequest: (connectorId, method, status, seconds) =>
      record({
        "http.request.method": method,
        "aperture.connector": connectorId,
        "aperture.outcome": status === undefined || status >= 500 ? "error" : "ok",
        ...(status === undefined ? {} : { "http.response.status_code": status })
      }, seconds)
  }
}

const plainHeaders = (headers: TelemetrySettings["headers"]): Record<string, string> =>
  Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, Redacted.value(value)]))

const metricInterval = (): number => {
  const fromEnv = Number(process.env["OTEL_METRIC_EXPORT_INTERVAL"])
  return Number.isFinite(fromEnv) && fromEnv > 0 ? fromEnv : DEFAULT_METRIC_INTERVAL_MS
}

/** Metrics: a meter provider of our own (the gateway's counters are plain numbers, not Effect metrics). */
const meterProviderOf = (settings: TelemetrySettings) =>
  settings.metricsUrl === undefined ? Effect.succeed(undefined) : Effect.acquireRelease(
    Effect.sync(() => new MeterProvider({
      readers: [
        new PeriodicExportingMetricReader({
          exporter: new OTLPMetricExporter({ url: settings.metricsUrl!.href, headers: plainHeaders(settings.headers) }),
          exportIntervalMillis: metricInterval()
        })
      ]
    })),
    (provider) => Effect.promise(() => provider.shutdown()).pipe(Effect.timeoutOption(SHUTDOWN_TIMEOUT_MS), Effect.ignore)
  )

const never = () => false

/**
 * Effect's spans as OpenTelemetry spans, without `@effect/opentelemetry`'s `context` hook: that
 * hook enters an OpenTelemetry context around every step of every fiber so that code using the
 * global context manager (auto-instrumentation) sees Effect's span. The gateway registers no
 * context manager and parents its own spans explicitly, so the hook would only allocate (it was
 * a fifth of telemetry's CPU per proxied request).
 */
const effectTracer = Layer.unwrapEffect(Effect.map(OtelTracer.make, (tracer) =>
  Layer.setTracer(EffectTracer.make({ span: tracer.span, context: (execution) => execution() }))))

/** Header names whose values spans never carry (the platform's four, and any that looks like a credential). */
const REDACTED_HEADERS: ReadonlyArray<string | RegExp> = [
  "authorization",
  "cookie",
  "set-cookie",
  "x-api-key",
  "proxy-authorization",
  "mcp-session-id",
  "last-event-id",
  /auth|token|secret|key|session|cookie|password|credential|signature/i
]

/**
 * The SDK for `settings`: the Effect tracer (spans of Effect code, the platform's `http.server`
 * span continuing the caller's `traceparent`), tracing switched on for the gateway's fibers
 * (`aperture start` and `Aperture.start` switch it off for everything else), and {@link Telemetry}.
 */
export const otlpLayer = (settings: TelemetrySettings): Layer.Layer<Telemetry> => {
  const resource = Resource.layerFromEnv(Resource.configToAttributes({ serviceName: settings.serviceName, serviceVersion: version }))
  const tracing = settings.tracesUrl === undefined
    ? Layer.succeed(OtelTracer.OtelTracer, trace.getTracer("aperture", version)) // the API's no-op tracer
    : Layer.provideMerge(effectTracer, OtelTracer.layerTracer).pipe(Layer.provide(NodeSdk.layerTracerProvider(
      new BatchSpanProcessor(new OTLPTraceExporter({ url: settings.tracesUrl.href, headers: plainHeaders(settings.headers) })),
      { shutdownTimeout: SHUTDOWN_TIMEOUT_MS }
    )))
  const service = Layer.scoped(
    Telemetry,
    Effect.gen(function*() {
      const tracer = yield* OtelTracer.OtelTracer
      const meterProvider = yield* meterProviderOf(settings)
      return makeGatewayTelemetry(tracer, meterProvider)
    })
  )
  const tracingOn = Layer.scopedDiscard(Effect.all([
    Effect.locallyScoped(FiberRef.currentTracerEnabled, true),
    Effect.locallyScoped(HttpMiddleware.currentTracerDisabledWhen, never),
    // The platform's http.server span records every request and response header but the four it
    // redacts by default; these carry credentials or session handles too (a proxy credential, a
    // 2025-era session id, which is its session's bearer; an identity plugin's own header).
    Effect.locallyScoped(Headers.currentRedactedNames, REDACTED_HEADERS)
  ], { discard: true }))
  return Layer.mergeAll(service, tracingOn).pipe(Layer.provide(tracing), Layer.provide(resource))
}
