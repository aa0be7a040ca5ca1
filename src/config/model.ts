/**
 * The config as the runtime uses it, after decoding: every default applied, secrets as
 * `Redacted`, grant patterns compiled. Both the TS DSL and Aperture JSON decode to this.
 * @module
 */
import type * as Duration from "effect/Duration"
import type * as Redacted from "effect/Redacted"
import type { ResolvedAuth } from "../plugin/AuthPlugin.js"
import type { Grant } from "./grantPattern.js"
import type { ResolvedIdentityPlugin } from "../plugin/IdentityPlugin.js"
import type { HttpMethodName, Isolation } from "./dsl.js"

export interface ServerSettings {
  readonly host: string
  readonly port: number
  readonly allowedHosts: ReadonlyArray<string> | undefined
  readonly allowedOrigins: ReadonlyArray<string> | undefined
  readonly sessionIdleTimeout: Duration.Duration
  readonly sessionsPerCaller: number
  /**
   * The origin users reach the gateway at (`server.publicUrl`), for the redirect URIs of per-user
   * OAuth behind a proxy; `undefined`: the origin of the request that starts the flow.
   */
  readonly publicUrl: URL | undefined
  /** Where the gateway keeps state on disk (per-user tokens): `server.stateDir`, default `.aperture` beside the config. */
  readonly stateDir: string
}

interface ConnectorCommon {
  readonly id: string
  /** Position in the config; first wins when unprefixed names collide. */
  readonly index: number
  readonly labels: ReadonlyArray<string>
  readonly description: string | undefined
  readonly timeout: Duration.Duration
}

export interface McpConnector extends ConnectorCommon {
  readonly kind: "mcp"
  readonly url: URL | undefined
  /** A credential shared by every caller; `undefined` with {@link McpConnector.userAuth} (or none at all). */
  readonly auth: ResolvedAuth | undefined
  /** Per-user OAuth: each user authorizes the connector once, and calls carry their own token. */
  readonly userAuth: UserOAuthSettings | undefined
  readonly prefix: boolean
  /** Always `"caller"` with {@link McpConnector.userAuth}: a user's upstream session carries their token. */
  readonly isolation: Isolation
}

/**
 * Per-user OAuth (`userOAuth(…)`, JSON `oauth2_authorization_code`): authorization code with PKCE
 * S256, a client secret only for confidential clients; or `userOAuth.dynamic(…)` (JSON
 * `oauth2_dcr`): the authorization server discovered from the upstream (RFC 9728, RFC 8414) and a
 * client registered there (RFC 7591).
 */
export type UserOAuthSettings =
  | {
    readonly kind: "authorization_code"
    readonly clientId: string
    readonly clientSecret: Redacted.Redacted<string> | undefined
    readonly authorizationUrl: URL
    readonly tokenUrl: URL
    readonly scopes: ReadonlyArray<string>
    readonly audience: string | undefined
    readonly resource: string | undefined
  }
  | { readonly kind: "dynamic"; readonly scopes: ReadonlyArray<string> }

export interface StdioConnector extends ConnectorCommon {
  readonly kind: "stdio"
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly env: Readonly<Record<string, Redacted.Redacted<string>>>
  readonly cwd: string | undefined
  readonly prefix: boolean
  readonly isolation: Isolation
}

export interface HttpConnector extends ConnectorCommon {
  readonly kind: "http"
  readonly url: URL | undefined
  readonly auth: ResolvedAuth | undefined
  readonly methods: ReadonlyArray<HttpMethodName>
  readonly allowPrivate: boolean
}

export type Connector = McpConnector | StdioConnector | HttpConnector
/** Connectors that speak MCP (their tools, resources and prompts join `/v1/mcp`). */
export type McpSpeakingConnector = McpConnector | StdioConnector

export const speaksMcp = (c: Connector): c is McpSpeakingConnector => c.kind !== "http"

export interface ConfigIssue {
  /** Dotted path, e.g. `connectors.github.auth.secret`. */
  readonly path: string
  readonly message: string
}

export const formatIssue = (issue: ConfigIssue): string =>
  issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`

const ApertureConfigTypeId: unique symbol = Symbol.for("aperture/ApertureConfig") as never

/** Marks a decoded config, so APIs taking either a user config or a decoded one can tell them apart. */
export const markDecoded = <A extends object>(config: A): A & { readonly [ApertureConfigTypeId]: true } =>
  Object.assign(config, { [ApertureConfigTypeId]: true as const })

export const isApertureConfig = (u: unknown): u is ApertureConfig =>
  typeof u === "object" && u !== null && ApertureConfigTypeId in u

/** Where audit lines go, and whether call arguments are in them. */
export interface AuditSettings {
  readonly to: { readonly kind: "stdout" } | { readonly kind: "file"; readonly path: string }
  /** `omit`: arguments never written; `redacted`: written with secret-looking values replaced. */
  readonly arguments: "omit" | "redacted"
}

/** Shared state in Redis (`cluster: redis({ … })`). */
export interface ClusterSettings {
  readonly kind: "redis"
  /** The whole URL, which may hold a password: only ever given to the client. */
  readonly url: Redacted.Redacted<string>
  /** Host and port from the URL, for messages (never the password). */
  readonly host: string
  readonly port: number
  readonly keyPrefix: string
}

/** OpenTelemetry export over OTLP/HTTP (`telemetry: otlp({ … })`, or the `OTEL_EXPORTER_OTLP_*` variables). */
export interface TelemetrySettings {
  readonly kind: "otlp"
  /** Where spans are posted; `undefined`: no traces (only a metrics endpoint was given). */
  readonly tracesUrl: URL | undefined
  /** Where metrics are posted; `undefined`: no metrics. */
  readonly metricsUrl: URL | undefined
  /** Sent with every export; values may be credentials, so they are never shown. */
  readonly headers: Readonly<Record<string, Redacted.Redacted<string>>>
  readonly serviceName: string
  /** `config`: the `telemetry` field; `environment`: the `OTEL_EXPORTER_OTLP_*` variables. */
  readonly from: "config" | "environment"
}

export interface ApertureConfig {
  readonly server: ServerSettings
  readonly connectors: ReadonlyArray<Connector>
  readonly identity: ReadonlyArray<ResolvedIdentityPlugin>
  readonly grants: ReadonlyArray<Grant>
  /** One JSON line per decision on a call, read, get or proxy request; `undefined`: no audit log. */
  readonly audit: AuditSettings | undefined
  /** Shared state for several replicas; `undefined`: one process, state in memory. */
  readonly cluster: ClusterSettings | undefined
  /** Encrypts state at rest (shared tokens, per-user tokens); set whenever `cluster` or a per-user connector is. */
  readonly secretKey: Redacted.Redacted<string> | undefined
  /** OpenTelemetry export; `undefined` (the default): none, and tracing costs nothing. */
  readonly telemetry?: TelemetrySettings | undefined
  /** Problems that don't stop start-up (a connector without `url` stays down). */
  readonly warnings: ReadonlyArray<ConfigIssue>
  /** The file it came from, when loaded from one. */
  readonly source: string | undefined
  /** Descriptions for `aperture check`, computed from the input (never holding a secret). */
  readonly describe: {
    readonly auth: Readonly<Record<string, string>>
  }
}
