/**
 * What `aperture check` prints: connectors with the names they expose, identity plugins,
 * grants and warnings. Built from the decoded config; never prints a secret.
 * @module
 */
import { Duration } from "effect"
import { describeIdentityPlugin } from "../identity/IdentityPlugin.js"
import { type ApertureConfig, type Connector, formatIssue } from "../config/model.js"

const exposes = (c: Connector): string => {
  if (c.kind === "http") return `proxied at /v1/connectors/${c.id}/ (methods ${c.methods.join(", ")})`
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
  lines.push("")
  lines.push(`connectors (${config.connectors.length}):`)
  const width = Math.max(0, ...config.connectors.map((c) => c.id.length))
  for (const c of config.connectors) {
    lines.push(`  ${c.id.padEnd(width)}  ${c.kind.padEnd(5)}  ${target(c)}`)
    const pad = " ".repeat(width + 4)
    lines.push(`${pad}exposes: ${exposes(c)}`)
    lines.push(`${pad}auth: ${config.describe.auth[c.id] ?? "none"}`)
    if (c.kind === "stdio" && Object.keys(c.env).length > 0) {
      lines.push(`${pad}env: ${Object.keys(c.env).join(", ")} (values hidden)`)
    }
    if (c.labels.length > 0) lines.push(`${pad}labels: ${c.labels.join(", ")}`)
    if (c.kind !== "http") lines.push(`${pad}timeout: ${Duration.format(c.timeout)}`)
  }
  lines.push("")
  lines.push(`identity (${config.identity.length}, first match wins):`)
  config.identity.forEach((p, i) => lines.push(`  ${i + 1}. ${describeIdentityPlugin(p)}`))
  lines.push("")
  lines.push(`grants (${config.grants.length}, deny by default):`)
  config.grants.forEach((g, i) =>
    lines.push(`  ${i}. src ${g.src.join(", ")} -> ${g.connectors.map((p) => p.source).join(", ") || "(nothing)"}`)
  )
  lines.push("")
  lines.push(`warnings (${config.warnings.length}):`)
  for (const w of config.warnings) lines.push(`  ${formatIssue(w)}`)
  return lines.join("\n")
}
