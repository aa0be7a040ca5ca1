/**
 * What `aperture check` prints: connectors with the names they expose, identity plugins,
 * grants and warnings; with `--as`, what one caller may reach. Built from the decoded config;
 * never prints a secret.
 * @module
 */
import * as Duration from "effect/Duration"
import { type CompiledPattern, patternTouchesConnector } from "../config/grantPattern.js"
import { adminPolicy, srcMatches } from "../grants/policy.js"
import { CONNECTORS_PREFIX } from "../http/paths.js"
import { describeIdentityPlugin, type Identity } from "../plugin/IdentityPlugin.js"
import { type ApertureConfig, type Connector, formatIssue } from "../config/model.js"
import { describeTelemetry } from "../config/telemetry.js"

const exposes = (c: Connector): string => {
  if (c.kind === "http") return `proxied at ${CONNECTORS_PREFIX}${c.id}/ (methods ${c.methods.join(", ")})`
  return c.prefix
    ? `tools and prompts as ${c.id}_<name>, resources as ${c.id}-<uri>`
    : "names unprefixed (prefix: false)"
}

const target = (c: Connector): string => {
  switch (c.kind) {
    case "stdio":
      return [c.command, ...c.args].join(" ")
    case "mcp":
    case "http":
      return c.url?.href ?? "(no url)"
  }
}

export const checkReport = (config: ApertureConfig): string => {
  const lines: Array<string> = []
  lines.push(`${config.source ?? "config"}: valid`)
  lines.push(`listen: ${config.server.host}:${config.server.port}`)
  // Host and port only: the URL may carry a password.
  lines.push(config.cluster === undefined
    ? "cluster: none (one process, in-memory state)"
    : `cluster: redis ${config.cluster.host}:${config.cluster.port} (key prefix ${config.cluster.keyPrefix})`)
  if (config.telemetry !== undefined) lines.push(describeTelemetry(config.telemetry))
  const perUser = config.connectors.some((c) => c.kind === "mcp" && c.userAuth !== undefined)
  if (perUser || config.server.publicUrl !== undefined) {
    lines.push(`public url: ${config.server.publicUrl?.origin ?? "(the origin of the request that starts a connect flow)"}`)
  }
  if (perUser) lines.push(`state dir: ${config.server.stateDir}`)
  lines.push("")
  lines.push(`connectors (${config.connectors.length}):`)
  const width = Math.max(0, ...config.connectors.map((c) => c.id.length))
  for (const c of config.connectors) {
    lines.push(`  ${c.id.padEnd(width)}  ${c.kind.padEnd(5)}  ${target(c)}`)
    const pad = " ".repeat(width + 4)
    lines.push(`${pad}exposes: ${exposes(c)}`)
    lines.push(`${pad}auth: ${config.describe.auth[c.id] ?? "none"}`)
    if (c.kind === "mcp" && c.userAuth !== undefined) {
      // What to register at the provider (for a registered client) or what Aperture registers (dynamic).
      lines.push(`${pad}redirect uri: ${config.server.publicUrl?.origin ?? "<public origin>"}/aperture/auth/${c.id}/callback`)
    }
    if (c.kind === "stdio" && Object.keys(c.env).length > 0) {
      lines.push(`${pad}env: ${Object.keys(c.env).join(", ")} (values hidden)`)
    }
    if (c.labels.length > 0) lines.push(`${pad}labels: ${c.labels.join(", ")}`)
    if (c.kind !== "http") lines.push(`${pad}timeout: ${Duration.format(c.timeout)}`)
    if (c.kind !== "http") {
      lines.push(`${pad}isolation: ${c.kind === "mcp" && c.userAuth !== undefined
        ? "caller (per-user OAuth: each user's upstream session carries their own token)"
        : c.isolation === "caller"
        ? `caller (an upstream ${c.kind === "stdio" ? "process" : "session"} per caller)`
        : `shared (one upstream ${c.kind === "stdio" ? "process" : "session"} for every caller)`}`)
    }
  }
  lines.push("")
  lines.push(`identity (${config.identity.length}, first match wins):`)
  config.identity.forEach((p, i) => lines.push(`  ${i + 1}. ${describeIdentityPlugin(p)}`))
  lines.push("")
  lines.push(`grants (${config.grants.length}, deny by default):`)
  config.grants.forEach((g, i) => {
    const also = [g.admin === true && "role admin", g.readMetrics === true && "readMetrics"].filter(Boolean)
    const reaches = g.connectors.map((p) => p.source).join(", ") || (also.length > 0 ? "no connectors" : "(nothing)")
    lines.push(`  ${i}. src ${g.src.join(", ")} -> ${reaches}${also.length > 0 ? ` (${also.join(", ")})` : ""}`)
  })
  const { adminGrants } = adminPolicy(config.grants)
  lines.push(adminGrants.length > 0
    ? `admin: grants ${adminGrants.join(", ")}`
    : "admin: loopback callers (no grant has role \"admin\")")
  lines.push("")
  lines.push(`warnings (${config.warnings.length}):`)
  for (const w of config.warnings) lines.push(`  ${formatIssue(w)}`)
  return lines.join("\n")
}

/**
 * `aperture check --as <login> [--groups a,b] [--tags x]`: what that caller would be allowed,
 * connector by connector, with the grant and pattern behind each line. Worked out from the
 * config alone (no upstream is contacted): a pattern is shown against every connector it can
 * reach, so `github/tools/*` reads as "github: tools/*".
 */
export const accessReport = (config: ApertureConfig, identity: Identity): string => {
  const lines: Array<string> = []
  const who = [
    identity.groups.length > 0 ? `groups ${identity.groups.join(", ")}` : "no groups",
    identity.tags.length > 0 ? `tags ${identity.tags.join(", ")}` : "no tags"
  ]
  lines.push(`as ${identity.login} (${who.join("; ")}):`)
  const held = config.grants.flatMap((grant, index) =>
    grant.src.some((src) => srcMatches(src, identity)) ? [{ grant, index }] : []
  )
  if (held.length === 0) {
    lines.push("  no grant names this caller: nothing is visible or callable (deny by default)")
    return lines.join("\n")
  }
  lines.push(`  grants: ${held.map(({ grant, index }) => `${index} (src ${grant.src.filter((s) => srcMatches(s, identity)).join(", ")})`).join("; ")}`)
  const width = Math.max(0, ...config.connectors.map((c) => c.id.length))
  for (const c of config.connectors) {
    const reaching = held.flatMap(({ grant, index }) =>
      grant.connectors.filter((p) => patternTouchesConnector(p, c.id, c.labels)).map((p) => `${scopeOf(p, c)} (grant ${index}: ${p.source})`)
    )
    lines.push(`  ${c.id.padEnd(width)}  ${reaching.length === 0 ? "nothing" : reaching.join(", ")}`)
  }
  return lines.join("\n")
}

/** What a pattern allows of one connector, without the connector part. */
const scopeOf = (pattern: CompiledPattern, c: Connector): string => {
  if (pattern.kind === "label") return "everything"
  const [first, ...rest] = pattern.source.split("/")
  const scope = first === "**" ? pattern.source : rest.join("/")
  if (scope === "**" || scope === "*/**" || scope === "") return "everything"
  return c.kind === "http" && !/^(?:\*\*|\*|proxy)(?:\/|$)/.test(scope) ? `${scope} (an http connector has only proxy)` : scope
}
