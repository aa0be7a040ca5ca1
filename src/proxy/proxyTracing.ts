/**
 * HTTP connector requests with telemetry on: a client span per upstream exchange (a child of the
 * platform's `http.server` span, which continues the caller's `traceparent`), its W3C trace
 * context sent to the upstream in place of the caller's, and the request in the exported
 * metrics. Built only when telemetry is on; the proxy's untraced path never calls it.
 * @module
 */
import type { OutgoingHttpHeaders } from "node:http"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { GatewayTelemetry } from "../telemetry/Telemetry.js"

/** `version-traceid-parentid-flags` (W3C Trace Context level 1). */
const traceparentOf = (span: { readonly traceId: string; readonly spanId: string; readonly sampled: boolean }) =>
  `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`

/** Wraps one upstream exchange: `headers` (not yet sent) get the exchange span's `traceparent`. */
export const proxyExchangeTracing = (telemetry: GatewayTelemetry) =>
<A extends { readonly response: { readonly statusCode?: number | undefined } }, E, R>(
  connectorId: string,
  method: string,
  headers: OutgoingHttpHeaders,
  exchange: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => {
  const started = performance.now()
  return Effect.flatMap(Effect.option(Effect.currentSpan), (span) => {
    if (Option.isSome(span)) headers["traceparent"] = traceparentOf(span.value)
    return exchange
  }).pipe(
    Effect.onExit((exit) =>
      Effect.sync(() =>
        telemetry.recordProxyRequest(
          connectorId,
          method,
          exit._tag === "Success" ? exit.value.response.statusCode : undefined,
          (performance.now() - started) / 1000
        )
      )
    ),
    Effect.withSpan(`${method} ${connectorId}`, {
      kind: "client",
      captureStackTrace: false,
      attributes: { "http.request.method": method, "aperture.connector": connectorId }
    })
  )
}
