/**
 * The original Aperture's JSON/HuJSON config shape (`connectors.servers`, grants with
 * `app["tailscale.com/cap/aperture"]`), converted to the DSL shape so both decode the same way.
 * Errors keep the JSON paths users see in their file (`connectors.servers.snowflake.auth.secert`).
 * @module
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import type { AuthPlugin } from "../plugin/AuthPlugin.js"
import { ConfigInvalid, decodeConfig } from "./decode.js"
import { type ConnectorInput, type GrantInput, redis, type UserConfig, userOAuth, type UserOAuthInput } from "./dsl.js"
import { type BuiltInPlugins, type JsonAuthForm, JsonSecret, toSecret } from "./jsonAuth.js"
import { type ApertureConfig, type ConfigIssue, markDecoded } from "./model.js"

/** The grant capability key the original uses for connector grants. */
export const APERTURE_CAP = "tailscale.com/cap/aperture"

/** Top-level sections of the original's config that belong to its LLM gateway, not to connectors. */
const IGNORED_SECTIONS = [
  "providers",
  "quotas",
  "hooks",
  "exporters",
  "database",
  "auto_cost_basis",
  "flags",
  "temp_grants",
  "chat_models",
  "mcp"
] as const

const opt = <A, I>(schema: Schema.Schema<A, I>) => Schema.optionalWith(schema, { exact: true })

const JsonServer = Schema.Struct({
  protocol: Schema.Literal("mcp", "http"),
  url: opt(Schema.String),
  provider: opt(Schema.String),
  auth: opt(Schema.Unknown),
  labels: opt(Schema.Array(Schema.String)),
  description: opt(Schema.String),
  category: opt(Schema.String),
  // Aperture extensions, same meaning as in the TS DSL.
  prefix: opt(Schema.Boolean),
  timeout: opt(Schema.Union(Schema.Number, Schema.String)),
  isolation: opt(Schema.String),
  methods: opt(Schema.Array(Schema.String)),
  allowPrivate: opt(Schema.Boolean)
})

/** Scopes as an array or one space-separated string, as in the original. */
const JsonScopes = Schema.Union(Schema.Array(Schema.String), Schema.String)
const scopeList = (scopes: typeof JsonScopes.Type): ReadonlyArray<string> =>
  typeof scopes === "string" ? scopes.split(/\s+/).filter((s) => s.length > 0) : scopes

/**
 * The original's per-user OAuth blocks: not auth plugins (no shared credential), so decoded here
 * into `userOAuth(…)` values; the DSL decoder checks the URLs and secrets.
 */
const JsonAuthorizationCode = Schema.Struct({
  type: Schema.Literal("oauth2_authorization_code"),
  client_id: Schema.NonEmptyString,
  client_secret: opt(JsonSecret),
  auth_url: Schema.NonEmptyString,
  token_url: Schema.NonEmptyString,
  scopes: opt(JsonScopes),
  audience: opt(Schema.String),
  resource: opt(Schema.String)
})
const JsonDynamicRegistration = Schema.Struct({
  type: Schema.Literal("oauth2_dcr"),
  scopes: opt(JsonScopes)
})
const PER_USER_TYPES: ReadonlyArray<string> = ["oauth2_authorization_code", "oauth2_dcr"]
/** The JSON spelling of the `userOAuth(…)` options, so errors name the field as written. */
const PER_USER_JSON_NAMES: Readonly<Record<string, string>> = {
  clientId: "client_id",
  clientSecret: "client_secret",
  authorizationUrl: "auth_url",
  tokenUrl: "token_url"
}

const toUserOAuth = (
  block: typeof JsonAuthorizationCode.Type | typeof JsonDynamicRegistration.Type
): UserOAuthInput =>
  block.type === "oauth2_dcr"
    ? userOAuth.dynamic(block.scopes === undefined ? {} : { scopes: scopeList(block.scopes) })
    : userOAuth({
      clientId: block.client_id,
      ...(block.client_secret !== undefined && { clientSecret: toSecret(block.client_secret) }),
      authorizationUrl: block.auth_url,
      tokenUrl: block.token_url,
      ...(block.scopes !== undefined && { scopes: scopeList(block.scopes) }),
      ...(block.audience !== undefined && { audience: block.audience }),
      ...(block.resource !== undefined && { resource: block.resource })
    })

const JsonGrant = Schema.Struct({
  src: Schema.Array(Schema.String),
  app: opt(Schema.Record({ key: Schema.String, value: Schema.Array(Schema.Unknown) })),
  // Policy-file grant fields the original also accepts; they have no effect here.
  dst: opt(Schema.Unknown),
  ip: opt(Schema.Unknown),
  srcPosture: opt(Schema.Unknown)
})

/** `"cluster": { "redis": { "url", "key_prefix"? } }`: the DSL's `redis({ url, keyPrefix })`. */
const JsonCluster = Schema.Struct({
  redis: Schema.Struct({ url: JsonSecret, key_prefix: opt(Schema.String) })
})

const JsonConfig = Schema.Struct(
  {
    connectors: opt(Schema.Struct({ servers: opt(Schema.Record({ key: Schema.String, value: Schema.Unknown })) })),
    grants: opt(Schema.Array(Schema.Unknown)),
    // Aperture extensions: where to listen, the audit log, and shared state for several
    // replicas (same meaning as in the TS config). Cluster and key are decoded below, so a
    // mistake there is reported together with every other one.
    server: opt(Schema.Unknown),
    audit: opt(Schema.Unknown),
    cluster: opt(Schema.Unknown),
    secret_key: opt(Schema.Unknown),
    ...Object.fromEntries(IGNORED_SECTIONS.map((k) => [k, opt(Schema.Unknown)])) as Record<
      typeof IGNORED_SECTIONS[number],
      Schema.optionalWith<typeof Schema.Unknown, { exact: true }>
    >
  }
)

const parseOptions = { errors: "all", onExcessProperty: "error" } as const

const issuesOf = (error: ParseResult.ParseError, prefix: ReadonlyArray<PropertyKey>): Array<ConfigIssue> =>
  ParseResult.ArrayFormatter.formatErrorSync(error).map((i) => ({
    path: [...prefix, ...i.path].map(String).join("."),
    message: i._tag === "Unexpected"
      ? "unexpected field"
      : i._tag === "Missing"
      ? "is required"
      : i.message
  }))

/**
 * A malformed secret reports each union member's mismatch (`Expected string`, `secret_key.env:
 * is required`, …); one line saying what a secret may be reads better.
 */
const oneSecretIssue = (issues: ReadonlyArray<ConfigIssue>, path: string): Array<ConfigIssue> => {
  const inSecret = (i: ConfigIssue) => i.path === path || i.path.startsWith(`${path}.`)
  if (issues.some((i) => i.path === path && i.message === "is required")) return [...issues]
  const others = issues.filter((i) => !inSecret(i))
  return others.length === issues.length
    ? others
    : [...others, { path, message: "expected a non-empty string or { \"env\": \"NAME\" }" }]
}

const decodeAt = <A, I>(schema: Schema.Schema<A, I>, input: unknown, prefix: ReadonlyArray<PropertyKey>) =>
  Either.mapLeft(Schema.decodeUnknownEither(schema, parseOptions)(input), (e) => issuesOf(e, prefix))

/**
 * The `auth` blocks the JSON may hold, from the auth forms the built-in plugins declare: one
 * Schema for them all, the plugin value for a decoded block, and each option's JSON spelling.
 */
const jsonAuthOf = (forms: ReadonlyArray<JsonAuthForm>) => {
  const byType = new Map(forms.flatMap((form) => form.types.map((type) => [type, form] as const)))
  const types = [...byType.keys(), ...PER_USER_TYPES]
  return {
    schema: Schema.Union(...forms.map((form) => form.schema)) as Schema.Schema<{ readonly type: string }, unknown>,
    expected: `expected an object with "type": ${types.slice(0, -1).join(", ")}${types.length > 1 ? " or " : ""}${types.at(-1) ?? ""}`,
    toPlugin: (block: { readonly type: string }, connectorId: string): AuthPlugin<any, any> =>
      byType.get(block.type)!.toPlugin(block, connectorId),
    jsonNames: Object.assign({}, ...forms.map((form) => form.jsonNames), PER_USER_JSON_NAMES) as Readonly<Record<string, string>>
  }
}

/** Why a field of the original's grant capability does nothing here, by field. */
const IGNORED_CAPABILITY_FIELDS: Readonly<Record<string, string>> = {
  models: "ignored: model access belongs to the original's LLM gateway, not to connectors"
}

/** The capability fields that have an effect here: `connectors`, `role: "admin"`, `read_metrics: true`. */
const capabilityWarning = (field: string, value: unknown): string | undefined => {
  switch (field) {
    case "connectors":
      return undefined
    case "role":
      return value === "admin"
        ? undefined
        : value === "user"
        ? "ignored: every identified caller is a user here; connectors come from connectors grants"
        : "ignored: role is \"admin\" (admin surfaces) or \"user\" (no effect) here"
    case "read_metrics":
      return value === true ? undefined : "ignored: only read_metrics: true has an effect (it allows /metrics)"
    default:
      return IGNORED_CAPABILITY_FIELDS[field] ?? "ignored: only \"connectors\", \"role\" and \"read_metrics\" have an effect here"
  }
}

/**
 * Warnings for what a grant holds that has no effect here, each at its JSON path: the original's
 * LLM-gateway fields (`models`, `role: "user"`, …) beside `connectors`, other capabilities under
 * `app`, and policy-file fields (`dst`, `ip`, `srcPosture`). Accepted, so the original's file
 * loads as-is, but never silently. `role: "admin"` and `read_metrics: true` do apply (admin surfaces).
 */
const ignoredInGrant = (grant: typeof JsonGrant.Type, i: number): Array<ConfigIssue> => {
  const warnings: Array<ConfigIssue> = []
  for (const field of ["dst", "ip", "srcPosture"] as const) {
    if (grant[field] !== undefined) {
      warnings.push({ path: `grants.${i}.${field}`, message: "ignored: a tailnet policy-file field; only src and app apply here" })
    }
  }
  for (const [capability, entries] of Object.entries(grant.app ?? {})) {
    if (capability !== APERTURE_CAP) {
      warnings.push({ path: `grants.${i}.app["${capability}"]`, message: `ignored: only "${APERTURE_CAP}" grants connectors` })
      continue
    }
    entries.forEach((entry, j) => {
      const at = `grants.${i}.app["${APERTURE_CAP}"].${j}`
      if (!Predicate.isRecord(entry)) {
        warnings.push({ path: at, message: "ignored: expected an object with \"connectors\", \"role\" or \"read_metrics\"" })
        return
      }
      for (const [field, value] of Object.entries(entry)) {
        const message = capabilityWarning(field, value)
        if (message !== undefined) warnings.push({ path: `${at}.${field}`, message })
      }
    })
  }
  return warnings
}

/**
 * Converts the original's JSON shape and decodes it. `warnings` gains a line for each section,
 * and each field of a grant, that is accepted but has no effect here.
 */
export const decodeApertureJson = (
  value: unknown,
  source: string | undefined,
  plugins: BuiltInPlugins
): Effect.Effect<ApertureConfig, ConfigInvalid> =>
  Effect.gen(function*() {
    const jsonAuth = jsonAuthOf(plugins.jsonAuth)
    const issues: Array<ConfigIssue> = []
    const warnings: Array<ConfigIssue> = []
    const top = decodeAt(JsonConfig, value, [])
    if (Either.isLeft(top)) return yield* new ConfigInvalid({ source, issues: top.left })
    const json = top.right

    for (const section of IGNORED_SECTIONS) {
      if (json[section] !== undefined) {
        warnings.push({
          path: section,
          message: section === "flags"
            ? "ignored (connectors are always on)"
            : "ignored: this section configures the original's LLM gateway, not connectors"
        })
      }
    }

    const connectors: Record<string, ConnectorInput> = {}
    for (const [id, raw] of Object.entries(json.connectors?.servers ?? {})) {
      const at = ["connectors", "servers", id]
      const server = decodeAt(JsonServer, raw, at)
      if (Either.isLeft(server)) {
        issues.push(...server.left)
        continue
      }
      const s = server.right
      let auth: AuthPlugin<any, any> | UserOAuthInput | undefined
      const perUserType = Predicate.isRecord(s.auth) && PER_USER_TYPES.includes(s.auth["type"] as string)
        ? s.auth["type"] as string
        : undefined
      if (perUserType !== undefined) {
        const decoded = decodeAt(Schema.Union(JsonAuthorizationCode, JsonDynamicRegistration), s.auth, [...at, "auth"])
        if (Either.isLeft(decoded)) {
          issues.push(...oneSecretIssue(decoded.left, [...at, "auth", "client_secret"].join(".")))
          continue
        }
        auth = toUserOAuth(decoded.right)
      } else if (s.auth !== undefined) {
        const typeOk = Predicate.isRecord(s.auth) && typeof s.auth["type"] === "string"
        const decoded = typeOk
          ? decodeAt(jsonAuth.schema, s.auth, [...at, "auth"])
          : Either.left([{ path: [...at, "auth"].join("."), message: jsonAuth.expected }])
        if (Either.isLeft(decoded)) {
          // A union reports the mismatch of every member; keep only the member the `type` names.
          issues.push(...decoded.left.filter((i) => !i.message.startsWith("Expected \"") || !i.path.endsWith(".type")))
          continue
        }
        auth = jsonAuth.toPlugin(decoded.right, id)
      }
      const common = {
        ...(s.url !== undefined && { url: s.url }),
        ...(s.labels !== undefined && { labels: s.labels }),
        ...(s.description !== undefined && { description: s.description }),
        ...(s.timeout !== undefined && { timeout: s.timeout })
      }
      connectors[id] = s.protocol === "mcp"
        ? {
          _tag: "mcp",
          ...common,
          ...(auth !== undefined && { auth }),
          ...(s.prefix !== undefined && { prefix: s.prefix }),
          // Checked with the DSL's own schema ("caller" | "shared"), at the same path.
          ...(s.isolation !== undefined && { isolation: s.isolation as never })
        }
        : {
          _tag: "http",
          ...common,
          // Per-user OAuth here is refused by the decoder, at this connector's auth path.
          ...(auth !== undefined && { auth: auth as AuthPlugin<any, any> }),
          ...(s.methods !== undefined && { methods: s.methods as never }),
          ...(s.allowPrivate !== undefined && { allowPrivate: s.allowPrivate })
        }
    }

    // The DSL decodes what converts (URL scheme, the key's length, secret_key required with
    // cluster); its paths are renamed to the JSON's by `relocate` below.
    let cluster: UserConfig["cluster"]
    if (json.cluster !== undefined) {
      const decoded = Predicate.isRecord(json.cluster)
        ? decodeAt(JsonCluster, json.cluster, ["cluster"])
        : Either.left([{ path: "cluster", message: "expected { \"redis\": { \"url\": … } }" }])
      if (Either.isLeft(decoded)) issues.push(...oneSecretIssue(decoded.left, "cluster.redis.url"))
      else {
        const { key_prefix, url } = decoded.right.redis
        cluster = redis({ url: toSecret(url), ...(key_prefix !== undefined && { keyPrefix: key_prefix }) })
      }
    }
    let secretKey: UserConfig["secretKey"]
    if (json.secret_key !== undefined) {
      const decoded = decodeAt(JsonSecret, json.secret_key, ["secret_key"])
      if (Either.isLeft(decoded)) issues.push(...oneSecretIssue(decoded.left, "secret_key"))
      else secretKey = toSecret(decoded.right)
    }

    // Each pattern's JSON path, to report pattern errors where the user wrote them.
    const grants: Array<GrantInput> = []
    const patternPaths: Array<Array<string>> = []
    for (const [i, raw] of (json.grants ?? []).entries()) {
      const decoded = decodeAt(JsonGrant, raw, ["grants", i])
      if (Either.isLeft(decoded)) {
        issues.push(...decoded.left)
        continue
      }
      warnings.push(...ignoredInGrant(decoded.right, i))
      const patterns: Array<string> = []
      const paths: Array<string> = []
      let admin = false
      let readMetrics = false
      for (const [j, capability] of (decoded.right.app?.[APERTURE_CAP] ?? []).entries()) {
        if (!Predicate.isRecord(capability)) continue
        if (capability["role"] === "admin") admin = true
        if (capability["read_metrics"] === true) readMetrics = true
        if (capability["connectors"] === undefined) continue
        const list = capability["connectors"]
        const at = `grants.${i}.app["${APERTURE_CAP}"].${j}.connectors`
        if (!Array.isArray(list) || !list.every((p) => typeof p === "string")) {
          issues.push({ path: at, message: "expected an array of pattern strings" })
          continue
        }
        list.forEach((pattern, k) => {
          patterns.push(pattern)
          paths.push(`${at}.${k}`)
        })
      }
      // Always with `connectors` (maybe empty): a grant of the original's that gives nothing here
      // still loads, with the warnings above saying why.
      grants.push({
        src: decoded.right.src,
        connectors: patterns,
        ...(admin && { role: "admin" as const }),
        ...(readMetrics && { readMetrics: true as const })
      })
      patternPaths.push(paths)
    }

    const config: UserConfig = {
      connectors,
      grants,
      ...(json.server !== undefined && { server: json.server as UserConfig["server"] & object }),
      ...(json.audit !== undefined && { audit: json.audit as UserConfig["audit"] & object }),
      ...(cluster !== undefined && { cluster }),
      ...(secretKey !== undefined && { secretKey })
    }
    const relocate = (issue: ConfigIssue): ConfigIssue => {
      const grant = /^grants\.(\d+)\.connectors\.(\d+)(.*)$/.exec(issue.path)
      if (grant) {
        const where = patternPaths[Number(grant[1])]?.[Number(grant[2])]
        if (where !== undefined) return { ...issue, path: where + grant[3] }
      }
      if (issue.path === "secretKey") {
        return { path: "secret_key", message: issue.message.replace("set secretKey: env(\"APERTURE_SECRET_KEY\")", "set \"secret_key\": { \"env\": \"APERTURE_SECRET_KEY\" }") }
      }
      const redisField = /^cluster\.(url|keyPrefix)$/.exec(issue.path)
      if (redisField) return { ...issue, path: `cluster.redis.${redisField[1] === "keyPrefix" ? "key_prefix" : "url"}` }
      const auth = /^connectors\.([^.]+)\.auth\.([^.]+)(.*)$/.exec(issue.path)
      if (auth) return { ...issue, path: `connectors.servers.${auth[1]}.auth.${jsonAuth.jsonNames[auth[2]!] ?? auth[2]}${auth[3]}` }
      return { ...issue, path: issue.path.replace(/^connectors\./, "connectors.servers.") }
    }
    // Decode what converted cleanly too, so one run reports every problem.
    const decoded = yield* decodeConfig(config, { source, plugins }).pipe(Effect.either)
    if (Either.isLeft(decoded)) {
      // A secret_key already reported as malformed is not also "required with cluster".
      const reported = json.secret_key !== undefined && secretKey === undefined
      issues.push(...decoded.left.issues.filter((i) => !(reported && i.path === "secretKey")).map(relocate))
    }
    if (issues.length > 0 || Either.isLeft(decoded)) return yield* new ConfigInvalid({ source, issues })
    return markDecoded({ ...decoded.right, warnings: [...warnings, ...decoded.right.warnings.map(relocate)] })
  })
