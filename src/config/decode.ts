/**
 * Decodes whatever `aperture.config.ts` exports (or the Aperture JSON shape, after `json.ts`
 * converts it) into an {@link ApertureConfig}. Every problem is collected with its path in one
 * run; nothing stops at the first error.
 * @module
 */
import * as path from "node:path"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { AuthPluginSchema, describeAuth } from "../plugin/AuthPlugin.js"
import { type CompiledPattern, parsePattern } from "./grantPattern.js"
import type { Grant } from "./grantPattern.js"
import { IdentityPluginSchema, type ResolvedIdentityPlugin } from "../plugin/IdentityPlugin.js"
import type {
  ApertureConfig,
  AuditSettings,
  ClusterSettings,
  ConfigIssue,
  Connector,
  HttpConnector,
  McpConnector,
  ServerSettings,
  StdioConnector,
  TelemetrySettings
} from "./model.js"
import { formatIssue, markDecoded } from "./model.js"
import { DurationSchema } from "./duration.js"
import type { BuiltInPlugins } from "./jsonAuth.js"
import { Secret } from "./secret.js"
import { MCP_URL_SCHEMES } from "./transportSchemes.js"
import { hasCredentials, urlSchema } from "./urlSchema.js"
import * as Telemetry from "./telemetry.js"
import { describeUserOAuth, isUserOAuthInput, toUserOAuthSettings, UserOAuthSchema } from "./userOAuth.js"

/** The config has problems; each names its path. */
export class ConfigInvalid extends Data.TaggedError("ConfigInvalid")<{
  readonly source: string | undefined
  readonly issues: ReadonlyArray<ConfigIssue>
}> {
  override get message(): string {
    return `invalid config${this.source ? ` ${this.source}` : ""}:\n` + this.issues.map(formatIssue).join("\n")
  }
}

export const CONNECTOR_ID = /^[A-Za-z][A-Za-z0-9]*$/
const CONNECTOR_ID_PROBLEM =
  `connector ID must match ${CONNECTOR_ID.source} (a letter, then letters and digits; "_" and "-" separate exposed names)`
export const RESERVED_CONNECTOR_IDS: ReadonlyArray<string> = ["aperture"]
const DEFAULT_TIMEOUT = Duration.seconds(60)
const DEFAULT_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] as const

const Label = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, {
    message: () => "labels are letters, digits, \"_\", \".\" and \"-\", starting with a letter or digit"
  }),
  Schema.filter((label) => label !== "system" || "label \"system\" is reserved for Aperture's own connector")
)

const urlWithSchemes = (schemes: ReadonlyArray<string>) =>
  urlSchema((url) =>
    !schemes.includes(url.protocol)
      ? `unsupported scheme "${url.protocol}"; expected ${schemes.map((x) => x.slice(0, -1)).join(", ")}`
      : hasCredentials(url)
      ? "credentials in the URL are not allowed; use auth: basic({ … }) or another auth plugin"
      : undefined
  )

const opt = <A, I>(schema: Schema.Schema<A, I>) => Schema.optionalWith(schema, { exact: true })

const IsolationSchema = Schema.Literal("caller", "shared").annotations({
  message: () => ({ message: 'expected "caller" (an upstream session per caller) or "shared" (one for everyone)', override: true })
})

const McpSchema = Schema.Struct({
  _tag: Schema.Literal("mcp"),
  url: opt(urlWithSchemes(MCP_URL_SCHEMES)),
  auth: opt(AuthPluginSchema),
  prefix: opt(Schema.Boolean),
  labels: opt(Schema.Array(Label)),
  description: opt(Schema.String),
  timeout: opt(DurationSchema),
  isolation: opt(IsolationSchema)
})

const StdioSchema = Schema.Struct({
  _tag: Schema.Literal("stdio"),
  command: Schema.NonEmptyString.annotations({ message: () => "expected a non-empty command" }),
  args: opt(Schema.Array(Schema.String)),
  env: opt(Schema.Record({ key: Schema.String, value: Secret })),
  cwd: opt(Schema.String),
  prefix: opt(Schema.Boolean),
  labels: opt(Schema.Array(Label)),
  description: opt(Schema.String),
  timeout: opt(DurationSchema),
  isolation: opt(IsolationSchema)
})

const HttpSchema = Schema.Struct({
  _tag: Schema.Literal("http"),
  url: opt(urlWithSchemes(["http:", "https:"])),
  auth: opt(AuthPluginSchema),
  methods: opt(Schema.Array(Schema.Literal("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))),
  allowPrivate: opt(Schema.Boolean),
  labels: opt(Schema.Array(Label)),
  description: opt(Schema.String),
  timeout: opt(DurationSchema)
})

/**
 * 2025-era sessions one caller (login) may hold open at once unless `server.sessionsPerCaller`
 * says otherwise; the next is refused with 429. Without a cap one caller could fill the global
 * 10,000 in seconds and lock every other caller out until the idle timeout; 100 is far above what
 * a client needs (one session per connection) and leaves room for 100 such callers.
 */
export const DEFAULT_SESSIONS_PER_CALLER = 100

/**
 * `server.publicUrl`: an http(s) origin. A path is refused rather than dropped: redirect URIs are
 * `<origin>/aperture/auth/<id>/callback`, and a gateway under a path prefix would need the
 * provider to know that prefix, which this setting cannot express.
 */
const PublicOrigin = urlSchema((url) =>
  url.protocol !== "http:" && url.protocol !== "https:"
    ? `unsupported scheme "${url.protocol}"; expected http or https`
    : hasCredentials(url)
    ? "credentials in the URL are not allowed"
    : url.pathname !== "/" || url.search !== "" || url.hash !== ""
    ? `expected an origin only (such as ${url.origin}): redirect URIs are <origin>/aperture/auth/<connector id>/callback`
    : undefined, { expected: "an origin such as https://gw.example.com" }).pipe(
  // Kept as the bare origin (redirect URIs are built on it).
  Schema.transform(Schema.instanceOf(URL), { strict: true, decode: (url) => new URL(url.origin), encode: (url) => url })
)

/** `server.stateDir` unless set: beside the config file (or in the working directory without one). */
const DEFAULT_STATE_DIR = ".aperture"

const ServerSchema = Schema.Struct({
  host: opt(Schema.NonEmptyString),
  port: opt(Schema.Int.pipe(Schema.between(0, 65535, { message: () => "expected a port number from 0 to 65535" }))),
  allowedHosts: opt(Schema.Array(Schema.NonEmptyString)),
  allowedOrigins: opt(Schema.Array(Schema.NonEmptyString)),
  sessionIdleTimeout: opt(DurationSchema),
  sessionsPerCaller: opt(Schema.Int.pipe(Schema.between(1, 1_000_000, { message: () => "expected a whole number from 1 to 1000000" }))),
  publicUrl: opt(PublicOrigin),
  stateDir: opt(Schema.NonEmptyString)
})

const AuditSchema = Schema.Struct({
  to: Schema.Union(
    Schema.Literal("stdout"),
    Schema.Struct({ file: Schema.NonEmptyString })
  ).annotations({ message: () => ({ message: "expected \"stdout\" or { file: \"…\" }", override: true }) }),
  arguments: opt(Schema.Union(Schema.Literal(false), Schema.Literal("redacted")).annotations({
    message: () => ({ message: "expected false or \"redacted\"", override: true })
  }))
})

const RedisSchema = Schema.Struct({
  _tag: Schema.Literal("redis"),
  url: Secret,
  keyPrefix: opt(Schema.String)
})

const REDIS_URL_SCHEMES = ["redis:", "rediss:"]
const DEFAULT_KEY_PREFIX = "aperture:"
/** Shorter keys are guessable; 32 characters is what an AES-256 key's worth of randomness needs. */
export const SECRET_KEY_MIN_LENGTH = 32

/** Host and port of a Redis URL, or why it is not one. The URL itself is never echoed: it may hold a password. */
const redisAddress = (url: string): Either.Either<{ host: string; port: number }, string> => {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return Either.left("not a valid URL (expected redis://[user:password@]host[:port][/db])")
  }
  if (!REDIS_URL_SCHEMES.includes(parsed.protocol)) {
    return Either.left(`unsupported scheme "${parsed.protocol.slice(0, -1)}"; expected redis or rediss`)
  }
  if (parsed.hostname === "") return Either.left("the URL names no host")
  return Either.right({ host: parsed.hostname, port: parsed.port === "" ? 6379 : Number(parsed.port) })
}

const TopLevelSchema = Schema.Struct({
  server: opt(Schema.Unknown),
  connectors: opt(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  identity: opt(Schema.Array(Schema.Unknown)),
  grants: opt(Schema.Array(Schema.Unknown)),
  audit: opt(Schema.Unknown),
  cluster: opt(Schema.Unknown),
  secretKey: opt(Schema.Unknown),
  telemetry: opt(Schema.Unknown)
})

const Src = Schema.String.pipe(
  Schema.filter((src) => {
    if (src === "*") return true
    // Logins from tokens may hold ":" (OAuth client IDs, URNs); group names and tags may not.
    const prefixed = src.startsWith("group:") || src.startsWith("tag:")
    const name = prefixed ? src.slice(src.indexOf(":") + 1) : src
    return (prefixed ? /^[^\s:]+$/ : /^\S+$/).test(name) ||
      `invalid src "${src}": expected a login, group:<name>, tag:<name> or "*"`
  })
)

const GrantSchema = Schema.Struct({
  src: Schema.Array(Src).pipe(Schema.minItems(1, { message: () => "needs at least one src" })),
  connectors: opt(Schema.Array(Schema.String)),
  role: opt(Schema.Literal("admin")),
  readMetrics: opt(Schema.Literal(true))
})

const parseOptions = { errors: "all", onExcessProperty: "error" } as const

const expectedFields = (message: string): string => {
  const names = [...message.matchAll(/"([^"]+)"/g)].map((m) => m[1]).filter((n) => n !== "_tag")
  return names.length > 0 ? ` (expected one of: ${names.join(", ")})` : ""
}

const toIssues = (error: ParseResult.ParseError, prefix: ReadonlyArray<PropertyKey>): Array<ConfigIssue> =>
  ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => {
    const fullPath = [...prefix, ...issue.path].map(String).join(".")
    switch (issue._tag) {
      case "Unexpected":
        return { path: fullPath, message: `unexpected field${expectedFields(issue.message)}` }
      case "Missing":
        return { path: fullPath, message: "is required" }
      default:
        return { path: fullPath, message: issue.message.charAt(0).toLowerCase() + issue.message.slice(1) }
    }
  })

/** Decodes with a schema; failures become issues under `prefix`. */
const decodeAt = <A, I>(schema: Schema.Schema<A, I>, input: unknown, prefix: ReadonlyArray<PropertyKey>) =>
  Schema.decodeUnknown(schema, parseOptions)(input).pipe(
    Effect.mapError((error) => toIssues(error, prefix)),
    Effect.either
  )

export interface DecodeOptions {
  /** The config file, for messages and for resolving relative `cwd`s. */
  readonly source?: string | undefined
  /** The built-in plugins decoding falls back on (the default identity), from the composition root. */
  readonly plugins: BuiltInPlugins
}

/** The built-in default identity plugins; their options are the gateway's own, so a failure is a bug. */
const defaultIdentity = (plugins: BuiltInPlugins): Effect.Effect<ReadonlyArray<ResolvedIdentityPlugin>> =>
  Effect.forEach(plugins.defaultIdentity, (plugin) => Schema.decodeUnknown(IdentityPluginSchema)(plugin)).pipe(Effect.orDie)

/**
 * Decodes a user config (the TS DSL shape) or fails with every issue. The public
 * `decodeConfig` (src/Aperture.ts) is this one with the built-in plugins bound.
 */
export const decodeConfig = (
  input: unknown,
  options: DecodeOptions
): Effect.Effect<ApertureConfig, ConfigInvalid> =>
  Effect.gen(function*() {
    const issues: Array<ConfigIssue> = []
    const warnings: Array<ConfigIssue> = []
    const source = options.source
    const baseDir = source === undefined ? process.cwd() : path.dirname(source)

    if (!Predicate.isRecord(input)) {
      return yield* new ConfigInvalid({
        source,
        issues: [{ path: "", message: "the config must be an object (export default defineConfig({ … }))" }]
      })
    }
    // Unknown top-level fields are reported, and the known sections are still checked one by one.
    const top = yield* decodeAt(TopLevelSchema, input, [])
    if (Either.isLeft(top)) issues.push(...top.left)
    const section = <K extends keyof typeof TopLevelSchema.Type>(key: K, ok: (u: unknown) => boolean) =>
      ok(input[key]) ? input[key] as (typeof TopLevelSchema.Type)[K] : undefined
    const raw = {
      server: input["server"],
      connectors: section("connectors", Predicate.isRecord),
      identity: section("identity", Array.isArray),
      grants: section("grants", Array.isArray)
    }

    // server
    let server: ServerSettings = {
      host: "127.0.0.1",
      port: 8080,
      allowedHosts: undefined,
      allowedOrigins: undefined,
      sessionIdleTimeout: Duration.minutes(30),
      sessionsPerCaller: DEFAULT_SESSIONS_PER_CALLER,
      publicUrl: undefined,
      stateDir: path.resolve(baseDir, DEFAULT_STATE_DIR)
    }
    if (raw.server !== undefined) {
      const decoded = yield* decodeAt(ServerSchema, raw.server, ["server"])
      if (Either.isLeft(decoded)) issues.push(...decoded.left)
      else {
        const s = decoded.right
        server = {
          host: s.host ?? server.host,
          port: s.port ?? server.port,
          allowedHosts: s.allowedHosts,
          allowedOrigins: s.allowedOrigins,
          sessionIdleTimeout: s.sessionIdleTimeout ?? server.sessionIdleTimeout,
          sessionsPerCaller: s.sessionsPerCaller ?? server.sessionsPerCaller,
          publicUrl: s.publicUrl,
          stateDir: s.stateDir === undefined ? server.stateDir : path.resolve(baseDir, s.stateDir)
        }
      }
    }

    // audit
    let audit: AuditSettings | undefined
    if (input["audit"] !== undefined) {
      const decoded = yield* decodeAt(AuditSchema, input["audit"], ["audit"])
      if (Either.isLeft(decoded)) issues.push(...decoded.left)
      else {
        const { arguments: args, to } = decoded.right
        audit = {
          to: to === "stdout" ? { kind: "stdout" } : { kind: "file", path: path.resolve(baseDir, to.file) },
          arguments: args === "redacted" ? "redacted" : "omit"
        }
      }
    }

    // cluster and secretKey
    let cluster: ClusterSettings | undefined
    if (input["cluster"] !== undefined) {
      const tag = Predicate.isRecord(input["cluster"]) ? input["cluster"]["_tag"] : undefined
      if (tag !== "redis") {
        issues.push({ path: "cluster", message: "expected a cluster made with redis({ url })" })
      } else {
        const decoded = yield* decodeAt(RedisSchema, input["cluster"], ["cluster"])
        if (Either.isLeft(decoded)) issues.push(...decoded.left)
        else {
          const address = redisAddress(Redacted.value(decoded.right.url))
          if (Either.isLeft(address)) issues.push({ path: "cluster.url", message: address.left })
          else {
            cluster = {
              kind: "redis",
              url: decoded.right.url,
              ...address.right,
              keyPrefix: decoded.right.keyPrefix ?? DEFAULT_KEY_PREFIX
            }
          }
        }
      }
    }
    let secretKey: Redacted.Redacted<string> | undefined
    if (input["secretKey"] !== undefined) {
      const decoded = yield* decodeAt(Secret, input["secretKey"], ["secretKey"])
      if (Either.isLeft(decoded)) issues.push(...decoded.left)
      else if (Redacted.value(decoded.right).length < SECRET_KEY_MIN_LENGTH) {
        issues.push({ path: "secretKey", message: `must be at least ${SECRET_KEY_MIN_LENGTH} characters (e.g. openssl rand -base64 32)` })
      } else secretKey = decoded.right
    } else if (input["cluster"] !== undefined) {
      issues.push({
        path: "secretKey",
        message: "required with cluster: shared tokens are kept in Redis encrypted; set secretKey: env(\"APERTURE_SECRET_KEY\")"
      })
    }
    // telemetry (see telemetry.ts for the precedence over the OTEL_* variables)
    let telemetry: TelemetrySettings | undefined
    if (input["telemetry"] !== undefined) {
      const tag = Predicate.isRecord(input["telemetry"]) ? input["telemetry"]["_tag"] : undefined
      if (tag !== "otlp") {
        issues.push({ path: "telemetry", message: "expected telemetry made with otlp({ endpoint })" })
      } else {
        const decoded = yield* decodeAt(Telemetry.OtlpSchema, input["telemetry"], ["telemetry"])
        if (Either.isLeft(decoded)) issues.push(...decoded.left)
        else telemetry = yield* Telemetry.fromConfig(decoded.right)
      }
    } else {
      const fromEnvironment = yield* Telemetry.fromEnvironment
      if (Either.isLeft(fromEnvironment)) issues.push(...fromEnvironment.left)
      else telemetry = fromEnvironment.right
    }
    /** Connectors with per-user OAuth, which need `secretKey` (checked after the connectors). */
    const perUser: Array<string> = []

    // connectors
    const connectors: Array<Connector> = []
    const authDescriptions: Record<string, string> = {}
    const entries = Object.entries(raw.connectors ?? {})
    for (const [index, [id, value]] of entries.entries()) {
      const at = ["connectors", id]
      if (!CONNECTOR_ID.test(id)) {
        issues.push({ path: at.join("."), message: CONNECTOR_ID_PROBLEM })
      } else if (RESERVED_CONNECTOR_IDS.includes(id)) {
        issues.push({ path: at.join("."), message: `connector ID "${id}" is reserved` })
      }
      const tag = Predicate.isRecord(value) ? value["_tag"] : undefined
      if (tag !== "mcp" && tag !== "stdio" && tag !== "http") {
        issues.push({
          path: at.join("."),
          message: "expected a connector made with mcp({ … }), stdio({ … }) or http({ … })"
        })
        continue
      }
      const common = (c: { labels?: ReadonlyArray<string> | undefined; description?: string | undefined; timeout?: Duration.Duration | undefined }) => ({
        id,
        index,
        labels: c.labels ?? [],
        description: c.description,
        timeout: c.timeout ?? DEFAULT_TIMEOUT
      })
      // Per-user OAuth sits in `auth` but is no auth plugin: decoded on its own, and only MCP over HTTP takes it.
      const fields = value as Record<string, unknown> // a record: it has a connector tag
      const userOAuthInput = isUserOAuthInput(fields["auth"]) ? fields["auth"] : undefined
      if (userOAuthInput !== undefined && tag !== "mcp") {
        issues.push({
          path: [...at, "auth"].join("."),
          message: `per-user OAuth is for MCP connectors (mcp({ url, auth: ${userOAuthInput._tag}(…) })), not ${tag}() ones`
        })
        continue
      }
      if (tag === "mcp") {
        const { auth: _auth, ...rest } = fields
        const decoded = yield* decodeAt(McpSchema, userOAuthInput === undefined ? value : rest, at)
        const userAuth = userOAuthInput === undefined
          ? Either.right(undefined)
          : yield* decodeAt(UserOAuthSchema, userOAuthInput, [...at, "auth"])
        if (Either.isLeft(userAuth)) issues.push(...userAuth.left)
        if (Either.isLeft(decoded)) {
          issues.push(...decoded.left)
          continue
        }
        const c = decoded.right
        if (userOAuthInput !== undefined && c.isolation === "shared") {
          issues.push({
            path: [...at, "isolation"].join("."),
            message: "must be \"caller\" (or left out) with per-user OAuth: per-user OAuth connectors give each user their own upstream session"
          })
        }
        if (Either.isLeft(userAuth)) continue
        if (c.url === undefined) {
          warnings.push({ path: `${at.join(".")}.url`, message: "no url configured; this connector stays down" })
        }
        const connector: McpConnector = {
          kind: "mcp",
          ...common(c),
          url: c.url,
          auth: c.auth,
          userAuth: userAuth.right === undefined ? undefined : toUserOAuthSettings(userAuth.right),
          prefix: c.prefix ?? true,
          // A user's upstream session carries that user's token, so it is never shared.
          isolation: userAuth.right === undefined ? c.isolation ?? "caller" : "caller"
        }
        connectors.push(connector)
        if (userOAuthInput !== undefined) perUser.push(id)
        authDescriptions[id] = userOAuthInput === undefined ? describeAuth(c.auth) : describeUserOAuth(userOAuthInput)
      } else if (tag === "stdio") {
        const decoded = yield* decodeAt(StdioSchema, value, at)
        if (Either.isLeft(decoded)) {
          issues.push(...decoded.left)
          continue
        }
        const c = decoded.right
        const connector: StdioConnector = {
          kind: "stdio",
          ...common(c),
          command: c.command,
          args: c.args ?? [],
          env: c.env ?? {},
          cwd: c.cwd === undefined ? undefined : path.resolve(baseDir, c.cwd),
          prefix: c.prefix ?? true,
          // A process per caller unless asked otherwise: a stdio server is written for one client,
          // and one process for everyone would show each caller what another set in it.
          isolation: c.isolation ?? "caller"
        }
        connectors.push(connector)
        authDescriptions[id] = "none (stdio)"
      } else {
        const decoded = yield* decodeAt(HttpSchema, value, at)
        if (Either.isLeft(decoded)) {
          issues.push(...decoded.left)
          continue
        }
        const c = decoded.right
        if (c.url === undefined) {
          warnings.push({ path: `${at.join(".")}.url`, message: "no url configured; this connector stays down" })
        }
        const connector: HttpConnector = {
          kind: "http",
          ...common(c),
          url: c.url,
          auth: c.auth,
          methods: c.methods ?? DEFAULT_METHODS,
          allowPrivate: c.allowPrivate ?? false
        }
        connectors.push(connector)
        authDescriptions[id] = describeAuth(c.auth)
      }
    }

    if (perUser.length > 0 && input["secretKey"] === undefined) {
      issues.push({
        path: "secretKey",
        message: `required with per-user OAuth (connector${perUser.length > 1 ? "s" : ""} ${perUser.join(", ")}): per-user tokens are stored encrypted; set secretKey: env("APERTURE_SECRET_KEY")`
      })
    }

    // identity
    const identity: Array<ResolvedIdentityPlugin> = []
    if (raw.identity === undefined) {
      identity.push(...yield* defaultIdentity(options.plugins))
    } else {
      for (const [i, plugin] of raw.identity.entries()) {
        const decoded = yield* decodeAt(IdentityPluginSchema, plugin, ["identity", i])
        if (Either.isLeft(decoded)) issues.push(...decoded.left)
        else identity.push(decoded.right)
      }
      if (raw.identity.length === 0) {
        warnings.push({ path: "identity", message: "no identity plugins: every request will be refused with 401" })
      }
    }

    // grants
    const grants: Array<Grant> = []
    const connectorIds = new Set(Object.keys(raw.connectors ?? {}))
    for (const [i, value] of (raw.grants ?? []).entries()) {
      const decoded = yield* decodeAt(GrantSchema, value, ["grants", i])
      if (Either.isLeft(decoded)) {
        issues.push(...decoded.left)
        continue
      }
      const { connectors: sources, readMetrics, role } = decoded.right
      if (sources === undefined && role === undefined && readMetrics === undefined) {
        issues.push({ path: `grants.${i}`, message: "a grant needs connectors, role or readMetrics" })
        continue
      }
      const patterns: Array<CompiledPattern> = []
      for (const [j, source] of (sources ?? []).entries()) {
        const parsed = parsePattern(source)
        const at = `grants.${i}.connectors.${j}`
        if (Either.isLeft(parsed)) {
          issues.push({ path: at, message: `${parsed.left} (pattern "${source}")` })
        } else {
          patterns.push(parsed.right)
          const literal = parsed.right.kind === "glob" ? parsed.right.connectorLiteral : undefined
          if (literal !== undefined && literal !== "aperture" && !connectorIds.has(literal)) {
            warnings.push({ path: at, message: `no connector "${literal}" is configured; "${source}" matches nothing` })
          }
        }
      }
      grants.push({ src: decoded.right.src, connectors: patterns, admin: role === "admin", readMetrics: readMetrics === true })
    }
    if ((raw.grants ?? []).length === 0 && connectors.length > 0) {
      warnings.push({ path: "grants", message: "no grants: nothing is visible to any caller (deny by default)" })
    }

    if (issues.length > 0) return yield* new ConfigInvalid({ source, issues })
    return markDecoded({
      server,
      connectors,
      identity,
      grants,
      audit,
      cluster,
      secretKey,
      telemetry,
      warnings,
      source,
      describe: { auth: authDescriptions }
    }) satisfies ApertureConfig
  })
