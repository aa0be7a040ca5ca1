/**
 * Exposed names at `/v1/mcp`: tools and prompts `<id>_<name>`, resources `<id>-<uri>`,
 * templates `<id>-<uriTemplate>`. Connector IDs hold no `_` or `-`, so prefixed names of two
 * connectors can never collide. Tool names stay within 64 characters of `[A-Za-z0-9_-]` (what
 * LLM provider APIs accept); a longer or unusual name is shortened with a stable hash suffix.
 * @module
 */
import { createHash } from "node:crypto"

export const MAX_TOOL_NAME_LENGTH = 64
const SAFE = /^[A-Za-z0-9_-]+$/

const stableHash = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 8)

/**
 * A tool or prompt name as callers see it. Deterministic: the same input always gives the same
 * output, so a shortened name survives restarts.
 */
export const exposedName = (connectorId: string, name: string, prefix: boolean): string => {
  const raw = prefix ? `${connectorId}_${name}` : name
  if (raw.length <= MAX_TOOL_NAME_LENGTH && SAFE.test(raw)) return raw
  const hash = stableHash(raw)
  const sanitized = raw.replace(/[^A-Za-z0-9_-]/g, "_")
  return `${sanitized.slice(0, MAX_TOOL_NAME_LENGTH - hash.length - 1)}_${hash}`
}

/** A resource URI or URI template as callers see it. */
export const exposedUri = (connectorId: string, uri: string, prefix: boolean): string =>
  prefix ? `${connectorId}-${uri}` : uri

/** The connector a prefixed URI names, and the upstream URI, or `undefined` when it has no `<id>-` prefix. */
export const splitPrefixedUri = (uri: string): { readonly connectorId: string; readonly uri: string } | undefined => {
  const dash = uri.indexOf("-")
  if (dash <= 0) return undefined
  const connectorId = uri.slice(0, dash)
  return /^[A-Za-z][A-Za-z0-9]*$/.test(connectorId) ? { connectorId, uri: uri.slice(dash + 1) } : undefined
}
