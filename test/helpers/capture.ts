/**
 * Starts Aperture with every log line (all levels) and every span (names, attributes, events,
 * how it ended) captured as text, so tests can read what the gateway said and check that no
 * secret is in it.
 */
import { HttpServer } from "@effect/platform"
import { Cause, Effect, Exit, Layer, Logger, LogLevel, Runtime, Scope, Tracer } from "effect"
import { Aperture, decodeConfig, type RunningGateway } from "../../src/Aperture.js"
import type { UserConfig } from "../../src/config/dsl.js"
import { withoutTracing } from "../../src/http/tracing.js"

export interface Captured {
  readonly logs: Array<string>
  readonly spans: Array<string>
  /** Everything captured, as one text. */
  readonly text: () => string
}

const show = (value: unknown): string => {
  if (typeof value === "string") return value
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

const capturingLogger = (logs: Array<string>) =>
  Logger.make(({ annotations, cause, logLevel, message }) => {
    const parts = [logLevel.label, ...(Array.isArray(message) ? message : [message]).map(show)]
    for (const [key, value] of annotations) parts.push(`${key}=${show(value)}`)
    if (!Cause.isEmpty(cause)) parts.push(Cause.pretty(cause, { renderErrorCause: true }))
    logs.push(parts.join(" "))
  })

const recordingTracer = (spans: Array<string>): Tracer.Tracer => {
  let next = 0
  return Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const attributes = new Map<string, unknown>()
      const events: Array<string> = []
      let status: Tracer.SpanStatus = { _tag: "Started", startTime }
      const id = String(++next)
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: id,
        traceId: "trace",
        parent,
        context,
        get status() {
          return status
        },
        attributes,
        links,
        sampled: true,
        kind,
        end: (endTime, exit) => {
          status = { _tag: "Ended", startTime, endTime, exit }
          const ending = Exit.isFailure(exit) ? `failed: ${Cause.pretty(exit.cause, { renderErrorCause: true })}` : "ok"
          spans.push(`${name} ${show(Object.fromEntries(attributes))} events=${show(events)} ${ending}`)
        },
        attribute: (key, value) => void attributes.set(key, value),
        event: (eventName, _time, eventAttributes) => void events.push(`${eventName} ${show(eventAttributes ?? {})}`),
        addLinks: () => {}
      }
      return span
    },
    context: (f) => f()
  })
}

/**
 * Starts a gateway on a free port with logs and spans captured; `untraced`: run as `aperture
 * start` does, with tracing off.
 */
export const startCapturingGateway = async (
  config: UserConfig,
  options: { readonly untraced?: boolean } = {}
): Promise<RunningGateway & { readonly captured: Captured }> => {
  const logs: Array<string> = []
  const spans: Array<string> = []
  const scope = Effect.runSync(Scope.make())
  const layer = Aperture.layerOwnServer({ ...config, server: { ...config.server, port: 0 } }).pipe(
    Layer.provide(Logger.replace(Logger.defaultLogger, capturingLogger(logs))),
    Layer.provide(Logger.minimumLogLevel(LogLevel.All)),
    Layer.provide(Layer.setTracer(recordingTracer(spans)))
  )
  const build = Layer.toRuntime(layer).pipe(Scope.extend(scope))
  const runtime = await Effect.runPromise(options.untraced === true ? withoutTracing(build) : build)
  const address = Runtime.runSync(runtime)(HttpServer.HttpServer).address
  const origin = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : "http://unix"
  return {
    url: `${origin}/v1/mcp`,
    origin,
    close: () => Effect.runPromise(Scope.close(scope, Exit.void)),
    reload: (next) =>
      Effect.runPromise(
        Effect.flatMap(decodeConfig({ ...next, server: { ...next.server, port: 0 } }), (decoded) => Aperture.reload(decoded)).pipe(
          Effect.provide(runtime)
        )
      ),
    captured: { logs, spans, text: () => [...logs, ...spans].join("\n") }
  }
}

