/**
 * A real OTLP/HTTP receiver for tests: `POST /v1/traces` and `/v1/metrics`, protobuf
 * (`application/x-protobuf`) or JSON, decoded with the protobufjs classes generated from the
 * official opentelemetry-proto definitions (shipped by `@opentelemetry/otlp-transformer` up to
 * 0.216, installed as the dev dependency `otlp-proto-definitions`). The OpenTelemetry collector
 * cannot be installed on these machines (no Debian package, no download).
 */
import { createServer, type IncomingHttpHeaders } from "node:http"
import { createRequire } from "node:module"
import type { AddressInfo } from "node:net"

const require = createRequire(import.meta.url)
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const root = require("otlp-proto-definitions/build/src/generated/root.js") as any
const collector = root.opentelemetry.proto.collector

interface ProtoType {
  decode(bytes: Uint8Array): unknown
  fromObject(object: unknown): unknown
  toObject(message: unknown, options: Record<string, unknown>): Record<string, unknown>
  encode(message: unknown): { finish(): Uint8Array }
  create(properties?: unknown): unknown
}

const SIGNALS: Record<string, { request: ProtoType; response: ProtoType }> = {
  "/v1/traces": { request: collector.trace.v1.ExportTraceServiceRequest, response: collector.trace.v1.ExportTraceServiceResponse },
  "/v1/metrics": { request: collector.metrics.v1.ExportMetricsServiceRequest, response: collector.metrics.v1.ExportMetricsServiceResponse }
}

export type AttributeValue = string | number | boolean | undefined

export interface ReceivedSpan {
  readonly name: string
  readonly traceId: string
  readonly spanId: string
  /** `""` for a root span. */
  readonly parentSpanId: string
  /** OTLP's enum: 2 server, 3 client. */
  readonly kind: number
  readonly attributes: Readonly<Record<string, AttributeValue>>
  readonly resource: Readonly<Record<string, AttributeValue>>
}

export interface ReceivedMetricPoint {
  readonly metric: string
  readonly attributes: Readonly<Record<string, AttributeValue>>
  /** A sum's value, or a histogram's count. */
  readonly value: number
}

export interface OtlpReceiver {
  /** The base endpoint (`otlp({ endpoint })`). */
  readonly url: string
  readonly spans: Array<ReceivedSpan>
  readonly metrics: Array<ReceivedMetricPoint>
  /** Every export request's headers and content type. */
  readonly requests: Array<{ readonly path: string; readonly headers: IncomingHttpHeaders }>
  readonly close: () => Promise<void>
}

const hex = (bytes: unknown): string => bytes instanceof Uint8Array ? Buffer.from(bytes).toString("hex") : ""

const valueOf = (any: Record<string, unknown> | undefined): AttributeValue => {
  if (any === undefined) return undefined
  if ("stringValue" in any) return any["stringValue"] as string
  if ("intValue" in any) return Number(any["intValue"])
  if ("doubleValue" in any) return any["doubleValue"] as number
  if ("boolValue" in any) return any["boolValue"] as boolean
  return JSON.stringify(any)
}

const attributesOf = (list: unknown): Record<string, AttributeValue> =>
  Object.fromEntries(((list ?? []) as Array<{ key: string; value?: Record<string, unknown> }>).map((kv) => [kv.key, valueOf(kv.value)]))

/** OTLP/JSON writes trace and span ids as hex (not protobuf JSON's base64): turned to bytes first. */
const idsToBytes = (value: unknown, key?: string): unknown => {
  if (Array.isArray(value)) return value.map((item) => idsToBytes(item))
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, idsToBytes(v, k)]))
  }
  return typeof value === "string" && (key === "traceId" || key === "spanId" || key === "parentSpanId") ? Buffer.from(value, "hex") : value
}

export const startOtlpReceiver = async (): Promise<OtlpReceiver> => {
  const spans: Array<ReceivedSpan> = []
  const metrics: Array<ReceivedMetricPoint> = []
  const requests: Array<{ path: string; headers: IncomingHttpHeaders }> = []

  const collect = (path: string, message: unknown, type: ProtoType) => {
    const object = type.toObject(message, { longs: Number, defaults: false, arrays: true })
    if (path === "/v1/traces") {
      for (const rs of object["resourceSpans"] as Array<Record<string, any>>) {
        const resource = attributesOf(rs["resource"]?.attributes)
        for (const ss of rs["scopeSpans"] ?? []) {
          for (const span of ss.spans ?? []) {
            spans.push({
              name: span.name,
              traceId: hex(span.traceId),
              spanId: hex(span.spanId),
              parentSpanId: hex(span.parentSpanId),
              kind: span.kind ?? 0,
              attributes: attributesOf(span.attributes),
              resource
            })
          }
        }
      }
    } else {
      for (const rm of object["resourceMetrics"] as Array<Record<string, any>>) {
        for (const sm of rm["scopeMetrics"] ?? []) {
          for (const metric of sm.metrics ?? []) {
            const points = metric.sum?.dataPoints ?? metric.histogram?.dataPoints ?? metric.gauge?.dataPoints ?? []
            for (const point of points) {
              metrics.push({
                metric: metric.name,
                attributes: attributesOf(point.attributes),
                value: Number(point.asInt ?? point.asDouble ?? point.count ?? 0)
              })
            }
          }
        }
      }
    }
  }

  const server = createServer(async (req, res) => {
    const chunks: Array<Buffer> = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const signal = SIGNALS[req.url ?? ""]
    if (req.method !== "POST" || signal === undefined) {
      res.writeHead(404).end()
      return
    }
    requests.push({ path: req.url!, headers: req.headers })
    const body = Buffer.concat(chunks)
    const json = (req.headers["content-type"] ?? "").startsWith("application/json")
    try {
      const message = json ? signal.request.fromObject(idsToBytes(JSON.parse(body.toString("utf8")))) : signal.request.decode(body)
      collect(req.url!, message, signal.request)
    } catch (error) {
      res.writeHead(400, { "content-type": "text/plain" }).end(String(error))
      return
    }
    if (json) res.writeHead(200, { "content-type": "application/json" }).end("{}")
    else res.writeHead(200, { "content-type": "application/x-protobuf" }).end(Buffer.from(signal.response.encode(signal.response.create({})).finish()))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    metrics,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
}
