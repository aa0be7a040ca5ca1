/**
 * Aperture: an MCP connector gateway. Import the config DSL from here in `aperture.config.ts`,
 * or `Aperture` to embed the gateway in a program.
 * @module
 */
export { Aperture } from "./Aperture.js"
export type { ApertureServices, RunningGateway } from "./Aperture.js"
export { defineConfig, grant, http, mcp, otlp, redis, stdio, userOAuth } from "./config/dsl.js"
export type {
  AuditOptions,
  AuthorizationCodeUserOAuthInput,
  ClusterInput,
  ConnectorInput,
  DurationInput,
  DynamicUserOAuthInput,
  DynamicUserOAuthOptions,
  GrantInput,
  HttpConnectorOptions,
  HttpMethodName,
  Isolation,
  McpConnectorOptions,
  OtlpOptions,
  RedisClusterOptions,
  ServerOptions,
  StdioConnectorOptions,
  TelemetryInput,
  UserConfig,
  UserOAuthInput,
  UserOAuthOptions
} from "./config/dsl.js"
export { env, Secret } from "./config/secret.js"
export type { EnvRef, SecretInput } from "./config/secret.js"
export { AuthError, defineAuthPlugin } from "./plugin/AuthPlugin.js"
export type { AuthContext, AuthPlugin, AuthPluginSpec, Authorization, Credential, UpstreamRequest } from "./plugin/AuthPlugin.js"
export { defineIdentityPlugin, IdentityRejected } from "./plugin/IdentityPlugin.js"
export type {
  AuthorizationServer,
  CallerRequest,
  Identifier,
  Identity,
  IdentityPlugin,
  IdentityPluginSpec
} from "./plugin/IdentityPlugin.js"
export { bearer } from "../plugins/auth/bearer.js"
export { apiKey } from "../plugins/auth/apiKey.js"
export { basic } from "../plugins/auth/basic.js"
export { clientCredentials } from "../plugins/auth/clientCredentials.js"
export { loopback } from "../plugins/identity/loopback.js"
export { apiKeys, hashApiKey } from "../plugins/identity/apiKeys.js"
export { trustedHeaders } from "../plugins/identity/trustedHeaders.js"
export { jwt } from "../plugins/identity/jwt.js"
export { AuditLog } from "./audit/AuditLog.js"
export { GrantPolicy } from "./grants/GrantPolicy.js"
export { LiveConfig } from "./config/LiveConfig.js"
export type { AppliedConfig, ConfigChange, LiveConfigService } from "./config/LiveConfig.js"
export type { Audit, AuditEvent, AuditLine, AuditOutcome } from "./audit/AuditLog.js"
export { decodeConfig, loadConfig, loadConfigFile } from "./Aperture.js"
export { ConfigInvalid } from "./config/decode.js"
export { ListenFailed } from "./edge/ListenFailed.js"
export { ClusterUnavailable } from "./cluster/ClusterRedis.js"
export { ConfigLoadError, ConfigNotFound } from "./config/load.js"
export type { ApertureConfig, ConfigIssue, Connector, UserOAuthSettings } from "./config/model.js"
