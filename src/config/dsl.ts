/**
 * The user-facing config DSL: `defineConfig` and the connector, grant and secret helpers. Each
 * helper only shapes a plain value (like Vite's `defineConfig`); `decode.ts` checks everything
 * at load time, so a typo is both a compile error and a load error with its path.
 * @module
 */
import type { AuthPlugin } from "../plugin/AuthPlugin.js"
import type { IdentityPlugin } from "../plugin/IdentityPlugin.js"
import type { SecretInput } from "./secret.js"

/** A duration: milliseconds, or an Effect duration string such as `"30 seconds"`. */
export type DurationInput = number | string

interface ConnectorCommonOptions {
  /** Free-form labels; grants may match them with `label:<name>`. */
  readonly labels?: ReadonlyArray<string>
  readonly description?: string
}

interface McpCommonOptions extends ConnectorCommonOptions {
  /**
   * `false` exposes this connector's names unprefixed. When two connectors then expose the same
   * name, the first in the config keeps it and the other's item is withheld, with a warning.
   * Default `true`.
   */
  readonly prefix?: boolean
  /** Per-request timeout toward the upstream. Default 60 seconds. */
  readonly timeout?: DurationInput
  /**
   * How upstream sessions map to callers. `"caller"`: each caller login gets its own upstream
   * session (opened on its first request, closed when idle), so nothing one caller sets upstream
   * (roots, log level, the server's per-session memory) is seen by another; for stdio, one
   * process per caller. `"shared"`: one session for everyone, for servers that keep no
   * per-session state (on stdio, one process). Default `"caller"`.
   */
  readonly isolation?: Isolation
}

/** See {@link McpCommonOptions.isolation}. */
export type Isolation = "caller" | "shared"

export interface McpConnectorOptions extends McpCommonOptions {
  /** Streamable HTTP endpoint (legacy SSE is detected), or `ws://` / `wss://` for MCP over WebSocket. */
  readonly url?: string
  /**
   * A credential shared by every caller (an auth plugin such as `bearer(…)`), or per-user OAuth
   * (`userOAuth(…)`, `userOAuth.dynamic()`): each user authorizes once and calls carry their token.
   */
  readonly auth?: AuthPlugin<any, any> | UserOAuthInput
}

export interface StdioConnectorOptions extends McpCommonOptions {
  readonly command: string
  readonly args?: ReadonlyArray<string>
  /** Extra environment for the process. It does not inherit the gateway's environment beyond PATH, HOME and the like. */
  readonly env?: Readonly<Record<string, SecretInput>>
  /** Working directory, relative to the config file. */
  readonly cwd?: string
}

export type HttpMethodName = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS"

export interface HttpConnectorOptions extends ConnectorCommonOptions {
  /** The API's base URL; requests to `/v1/connectors/<id>/<path>` go to `<url>/<path>`. */
  readonly url?: string
  readonly auth?: AuthPlugin<any, any>
  /** Methods callers may use. Default GET, HEAD, POST, PUT, PATCH, DELETE. */
  readonly methods?: ReadonlyArray<HttpMethodName>
  /** Permit a loopback or link-local upstream (refused by default as an SSRF guard). */
  readonly allowPrivate?: boolean
  readonly timeout?: DurationInput
}

export interface McpConnectorInput extends McpConnectorOptions { readonly _tag: "mcp" }
export interface StdioConnectorInput extends StdioConnectorOptions { readonly _tag: "stdio" }
export interface HttpConnectorInput extends HttpConnectorOptions { readonly _tag: "http" }
export type ConnectorInput = McpConnectorInput | StdioConnectorInput | HttpConnectorInput

/** An MCP server reached over streamable HTTP (falling back to legacy SSE) or WebSocket. */
export const mcp = (options: McpConnectorOptions): McpConnectorInput => ({ _tag: "mcp", ...options })

/** A local MCP server process, started and supervised by Aperture. */
export const stdio = (options: StdioConnectorOptions): StdioConnectorInput => ({ _tag: "stdio", ...options })

/** A REST API proxied at `/v1/connectors/<id>/<path>` with its credential injected. */
export const http = (options: HttpConnectorOptions): HttpConnectorInput => ({ _tag: "http", ...options })

export interface UserOAuthOptions {
  /** The OAuth client registered at the provider, with redirect URI `<public origin>/aperture/auth/<connector id>/callback`. */
  readonly clientId: string
  /** Only for a confidential client; without it the client is public (PKCE alone, as always). */
  readonly clientSecret?: SecretInput
  /** The provider's authorization endpoint, where the user's browser is sent to consent. */
  readonly authorizationUrl: string
  /** The provider's token endpoint. */
  readonly tokenUrl: string
  /** Requested at authorization. Include the provider's offline scope if it needs one for a refresh token. */
  readonly scopes?: ReadonlyArray<string>
  /** Sent as `audience` (Auth0, Okta and others use it to pick the API). */
  readonly audience?: string
  /** RFC 8707 resource indicator. */
  readonly resource?: string
}

export interface DynamicUserOAuthOptions {
  /** Requested at authorization. Default: none (the provider's default). */
  readonly scopes?: ReadonlyArray<string>
}

/** Per-user OAuth with a client registered at the provider (see {@link userOAuth}). */
export interface AuthorizationCodeUserOAuthInput extends UserOAuthOptions { readonly _tag: "userOAuth" }
/** Per-user OAuth with a client Aperture registers itself (see {@link userOAuth.dynamic}). */
export interface DynamicUserOAuthInput extends DynamicUserOAuthOptions { readonly _tag: "userOAuth.dynamic" }
export type UserOAuthInput = AuthorizationCodeUserOAuthInput | DynamicUserOAuthInput

/**
 * Per-user OAuth for an `mcp()` connector's `auth`: each user authorizes the upstream once with
 * their own account (authorization code, always PKCE S256), Aperture keeps their tokens
 * (encrypted with `secretKey`) and their calls carry their own token, each user in their own
 * upstream session. `userOAuth.dynamic()` needs no client: the authorization server is found
 * from the upstream's metadata (RFC 9728, RFC 8414) and a client registered there (RFC 7591).
 *
 * @example
 * github: mcp({
 *   url: "https://api.githubcopilot.com/mcp/",
 *   auth: userOAuth({
 *     clientId: "Iv1.abc", clientSecret: env("GITHUB_CLIENT_SECRET"),
 *     authorizationUrl: "https://github.com/login/oauth/authorize",
 *     tokenUrl: "https://github.com/login/oauth/access_token"
 *   })
 * })
 */
export const userOAuth: {
  (options: UserOAuthOptions): AuthorizationCodeUserOAuthInput
  /** Per-user OAuth with dynamic client registration: see {@link userOAuth}. */
  readonly dynamic: (options?: DynamicUserOAuthOptions) => DynamicUserOAuthInput
} = Object.assign(
  (options: UserOAuthOptions): AuthorizationCodeUserOAuthInput => ({ ...options, _tag: "userOAuth" }),
  { dynamic: (options: DynamicUserOAuthOptions = {}): DynamicUserOAuthInput => ({ ...options, _tag: "userOAuth.dynamic" }) }
)

export interface GrantInput {
  /** Logins, `group:<name>`, `tag:<name>` or `*`. */
  readonly src: ReadonlyArray<string>
  /** `connectorID/category/name` patterns (`*`, `**`) or `label:<name>`. */
  readonly connectors?: ReadonlyArray<string>
  /**
   * `"admin"`: the callers in `src` read `/metrics` and see every connector in full at
   * `/api/connectors`. While no grant names an admin, loopback callers are the admins.
   */
  readonly role?: "admin"
  /** `true`: the callers in `src` may read `/metrics` (and nothing more of the admin surfaces). */
  readonly readMetrics?: true
}

/**
 * Allows the callers in `src` to see and use what `connectors` matches, and with `role: "admin"`
 * or `readMetrics: true` to read the admin surfaces. Grants only ever add. A grant needs at least
 * one of `connectors`, `role` or `readMetrics`.
 */
export const grant = (options: GrantInput): GrantInput => options

export interface ServerOptions {
  /** Default `127.0.0.1`. */
  readonly host?: string
  /** Default `8080`; `0` picks a free port. */
  readonly port?: number
  /** `Host` header values accepted on `/v1/mcp`. Default: loopback names when bound to loopback, anything otherwise. */
  readonly allowedHosts?: ReadonlyArray<string>
  /** `Origin` values accepted on `/v1/mcp` (requests without `Origin` are always accepted). */
  readonly allowedOrigins?: ReadonlyArray<string>
  /** A 2025-era session unused this long is closed. Default 30 minutes. */
  readonly sessionIdleTimeout?: DurationInput
  /** 2025-era sessions one caller (login) may hold open at once; the next initialize is 429. Default 100. */
  readonly sessionsPerCaller?: number
  /**
   * The origin users reach the gateway at, e.g. `"https://gw.example.com"` behind a proxy: per-user
   * OAuth redirect URIs are `<publicUrl>/aperture/auth/<connector id>/callback`. An origin only
   * (no path). Default: the origin of the request that starts the flow.
   */
  readonly publicUrl?: string
  /** Where the gateway keeps state on disk (per-user tokens), relative to the config file. Default `.aperture`. */
  readonly stateDir?: string
}

export interface AuditOptions {
  /** `"stdout"`, or `{ file }` (appended to; relative to the config file). */
  readonly to: "stdout" | { readonly file: string }
  /** Call arguments in audit lines: `false` (default) leaves them out; `"redacted"` writes them with secret-looking values replaced. */
  readonly arguments?: false | "redacted"
}

export interface RedisClusterOptions {
  /**
   * `redis://` or `rediss://` (TLS) URL, e.g. `env("REDIS_URL")`. A secret: it may carry a
   * password, so it is held redacted and only its host and port are ever shown.
   */
  readonly url: SecretInput
  /** Prefix of every key the gateway writes. Default `"aperture:"`. */
  readonly keyPrefix?: string
}

export interface RedisClusterInput extends RedisClusterOptions { readonly _tag: "redis" }
export type ClusterInput = RedisClusterInput

/** Shared state in Redis, so several gateway replicas serve as one. */
export const redis = (options: RedisClusterOptions): RedisClusterInput => ({ _tag: "redis", ...options })

export interface OtlpOptions {
  /**
   * The OTLP/HTTP receiver's base URL, e.g. `"http://localhost:4318"` (an OpenTelemetry
   * collector): traces go to `<endpoint>/v1/traces`, metrics to `<endpoint>/v1/metrics`.
   */
  readonly endpoint: string
  /** Sent with every export, e.g. `{ authorization: env("OTLP_TOKEN") }`; values are secrets, never shown. */
  readonly headers?: Readonly<Record<string, SecretInput>>
  /** The `service.name` resource attribute. Default `OTEL_SERVICE_NAME`, else `"aperture"`. */
  readonly serviceName?: string
}

export interface OtlpTelemetryInput extends OtlpOptions { readonly _tag: "otlp" }
export type TelemetryInput = OtlpTelemetryInput

/**
 * Exports traces (a span per MCP request and per upstream exchange) and metrics over OTLP/HTTP
 * (protobuf) with the OpenTelemetry SDK.
 *
 * @example
 * telemetry: otlp({ endpoint: "http://localhost:4318", headers: { authorization: env("OTLP_AUTH") } })
 */
export const otlp = (options: OtlpOptions): OtlpTelemetryInput => ({ _tag: "otlp", ...options })

export interface UserConfig {
  readonly server?: ServerOptions
  readonly connectors?: Readonly<Record<string, ConnectorInput>>
  /** Tried in order; the first that recognises a request decides. Default `[loopback({ login: "local" })]`. */
  readonly identity?: ReadonlyArray<IdentityPlugin<any, any>>
  readonly grants?: ReadonlyArray<GrantInput>
  /** One JSON line per decision on a call, read, get or proxy request. Default: none. */
  readonly audit?: AuditOptions
  /** Where replicas share state. Default: none (one process, state in memory). */
  readonly cluster?: ClusterInput
  /**
   * Key that encrypts state at rest (tokens kept in Redis, per-user OAuth tokens); at least 32
   * characters. Required with `cluster` and with any `userOAuth` connector.
   */
  readonly secretKey?: SecretInput
  /**
   * OpenTelemetry export. Default: none, unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or
   * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `_METRICS_ENDPOINT`) is set; with `telemetry` in the
   * config those variables are not read (`OTEL_SERVICE_NAME` still names the service unless
   * `serviceName` does).
   */
  readonly telemetry?: TelemetryInput
}

/** Types an `aperture.config.ts`; returns its argument unchanged. */
export function defineConfig(config: UserConfig): UserConfig
export function defineConfig(config: () => UserConfig | Promise<UserConfig>): () => UserConfig | Promise<UserConfig>
export function defineConfig(config: unknown): unknown {
  return config
}
