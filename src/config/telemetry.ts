/**
 * `telemetry: otlp({ endpoint, headers?, serviceName? })` and the standard OpenTelemetry
 * variables, decoded into {@link TelemetrySettings}.
 *
 * Precedence: `telemetry` in the config wins whole, and the `OTEL_EXPORTER_OTLP_*` variables are
 * then not read (a config file says where its own traces go); without it, the variables turn the
 * export on (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `_METRICS_ENDPOINT` over
 * `OTEL_EXPORTER_OTLP_ENDPOINT`, as the OpenTelemetry specification orders them).
 * `OTEL_SERVICE_NAME` names the service unless `serviceName` does; `OTEL_SDK_DISABLED=true`
 * turns the variables' export off.
 * @module
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { ConfigIssue, TelemetrySettings } from "./model.js"
import { Secret } from "./secret.js"
import { endpointProblem as credentialEndpointProblem } from "./endpointUrl.js"
import { hasCredentials, urlSchema } from "./urlSchema.js"

/** `service.name` when neither `serviceName` nor `OTEL_SERVICE_NAME` says. */
export const DEFAULT_SERVICE_NAME = "aperture"

const endpointProblem = (url: URL): string | undefined =>
  url.protocol !== "http:" && url.protocol !== "https:"
    ? `unsupported scheme "${url.protocol}"; expected http or https (OTLP/HTTP)`
    : hasCredentials(url)
    ? "credentials in the URL are not allowed; use headers: { authorization: env(\"…\") }"
    : undefined

const Endpoint = urlSchema(endpointProblem, { expected: "an OTLP/HTTP base URL such as http://localhost:4318" })

/** HTTP header names (RFC 9110 tokens): anything else would make every export fail. */
const HeaderName = Schema.String.pipe(
  Schema.pattern(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { message: () => "not a valid HTTP header name" })
)

/** Why `headers` (usually a credential) must not go to `url`: the gateway's rule for any credential. */
const headersProblem = (url: URL): string | undefined => {
  const problem = credentialEndpointProblem(url)
  return problem === undefined ? undefined : `export headers are credentials: ${problem}`
}

export const OtlpSchema = Schema.Struct({
  _tag: Schema.Literal("otlp"),
  endpoint: Endpoint,
  headers: Schema.optionalWith(Schema.Record({ key: HeaderName, value: Secret }), { exact: true }),
  serviceName: Schema.optionalWith(Schema.NonEmptyString, { exact: true })
}).pipe(Schema.filter((otlp) => {
  const problem = otlp.headers !== undefined && Object.keys(otlp.headers).length > 0 ? headersProblem(otlp.endpoint) : undefined
  return problem === undefined || { path: ["endpoint"], message: problem }
}))

/** `<base>/v1/<signal>`, the OTLP/HTTP path below a base endpoint. */
const signalUrl = (base: URL, signal: "traces" | "metrics"): URL => {
  const url = new URL(base)
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/v1/${signal}`
  return url
}

const serviceNameFromEnv = Config.option(Config.nonEmptyString("OTEL_SERVICE_NAME")).pipe(
  Effect.orElseSucceed(() => Option.none<string>())
)

/** From `telemetry: otlp({ … })`, decoded by {@link OtlpSchema}. */
export const fromConfig = (decoded: typeof OtlpSchema.Type): Effect.Effect<TelemetrySettings> =>
  Effect.map(serviceNameFromEnv, (envName) => ({
    kind: "otlp",
    tracesUrl: signalUrl(decoded.endpoint, "traces"),
    metricsUrl: signalUrl(decoded.endpoint, "metrics"),
    headers: decoded.headers ?? {},
    serviceName: decoded.serviceName ?? Option.getOrElse(envName, () => DEFAULT_SERVICE_NAME),
    from: "config"
  }))

const optionalVariable = (name: string) =>
  Config.option(Config.string(name)).pipe(
    Effect.orElseSucceed(() => Option.none<string>()),
    Effect.map(Option.filter((value) => value.trim() !== ""))
  )

/** `OTEL_EXPORTER_OTLP_HEADERS`: `name=value,name2=value2`, values percent-encoded (W3C Baggage form). */
const parseHeaders = (text: string): Either.Either<Record<string, Redacted.Redacted<string>>, string> => {
  const headers: Record<string, Redacted.Redacted<string>> = {}
  for (const pair of text.split(",")) {
    if (pair.trim() === "") continue
    const at = pair.indexOf("=")
    const name = at < 0 ? "" : pair.slice(0, at).trim()
    // The value is never echoed: it is usually a credential.
    if (name === "" || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      return Either.left(`expected name=value pairs separated by commas (entry ${JSON.stringify(name === "" ? "…" : name)})`)
    }
    let value: string
    try {
      value = decodeURIComponent(pair.slice(at + 1).trim())
    } catch {
      return Either.left(`the value of ${name} is not valid percent-encoding`)
    }
    headers[name.toLowerCase()] = Redacted.make(value)
  }
  return Either.right(headers)
}

const parseEndpoint = (name: string, value: string): Either.Either<URL, ConfigIssue> => {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return Either.left({ path: name, message: "not a valid URL (expected an OTLP/HTTP URL such as http://localhost:4318)" })
  }
  const problem = endpointProblem(url)
  return problem === undefined ? Either.right(url) : Either.left({ path: name, message: problem })
}

/**
 * From the environment, when the config has no `telemetry`: `undefined` when no endpoint
 * variable is set (or `OTEL_SDK_DISABLED=true`). Problems name the variable as their path.
 */
export const fromEnvironment: Effect.Effect<Either.Either<TelemetrySettings | undefined, Array<ConfigIssue>>> = Effect.gen(
  function*() {
    const disabled = yield* optionalVariable("OTEL_SDK_DISABLED")
    if (Option.isSome(disabled) && disabled.value.trim().toLowerCase() === "true") return Either.right(undefined)
    const base = yield* optionalVariable("OTEL_EXPORTER_OTLP_ENDPOINT")
    const traces = yield* optionalVariable("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    const metrics = yield* optionalVariable("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
    if (Option.isNone(base) && Option.isNone(traces) && Option.isNone(metrics)) return Either.right(undefined)
    const issues: Array<ConfigIssue> = []
    const parsed = (name: string, value: Option.Option<string>): URL | undefined => {
      if (Option.isNone(value)) return undefined
      const url = parseEndpoint(name, value.value)
      if (Either.isLeft(url)) issues.push(url.left)
      return Either.getOrUndefined(url)
    }
    const baseUrl = parsed("OTEL_EXPORTER_OTLP_ENDPOINT", base)
    // A per-signal variable is the whole URL, used as it is (the specification's rule).
    const tracesUrl = parsed("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces) ?? (baseUrl && signalUrl(baseUrl, "traces"))
    const metricsUrl = parsed("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", metrics) ?? (baseUrl && signalUrl(baseUrl, "metrics"))
    const headerText = yield* optionalVariable("OTEL_EXPORTER_OTLP_HEADERS")
    let headers: Record<string, Redacted.Redacted<string>> = {}
    if (Option.isSome(headerText)) {
      const decoded = parseHeaders(headerText.value)
      if (Either.isLeft(decoded)) issues.push({ path: "OTEL_EXPORTER_OTLP_HEADERS", message: decoded.left })
      else headers = decoded.right
    }
    if (Object.keys(headers).length > 0) {
      // Named by the variable that set each signal's URL (the per-signal one, else the base one), once.
      const targets = [
        [Option.isSome(traces) ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT", tracesUrl],
        [Option.isSome(metrics) ? "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT", metricsUrl]
      ] as const
      for (const [name, url] of targets) {
        const problem = url === undefined ? undefined : headersProblem(url)
        if (problem !== undefined && !issues.some((issue) => issue.path === name)) issues.push({ path: name, message: problem })
      }
    }
    if (issues.length > 0) return Either.left(issues)
    const serviceName = yield* serviceNameFromEnv
    return Either.right({
      kind: "otlp",
      tracesUrl,
      metricsUrl,
      headers,
      serviceName: Option.getOrElse(serviceName, () => DEFAULT_SERVICE_NAME),
      from: "environment"
    } satisfies TelemetrySettings)
  }
)

/** One line for `aperture check`: where the export goes, never a header value. */
export const describeTelemetry = (settings: TelemetrySettings): string => {
  const targets = [
    settings.tracesUrl === undefined ? undefined : `traces ${settings.tracesUrl.href}`,
    settings.metricsUrl === undefined ? undefined : `metrics ${settings.metricsUrl.href}`
  ].filter((x) => x !== undefined)
  const names = Object.keys(settings.headers)
  const headers = names.length === 0 ? "" : `, headers ${names.join(", ")} (values hidden)`
  const from = settings.from === "environment" ? " (from OTEL_EXPORTER_OTLP_* variables)" : ""
  return `telemetry: otlp, service ${settings.serviceName}: ${targets.join(", ")}${headers}${from}`
}
