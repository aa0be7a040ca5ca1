/**
 * Secrets in a JSON config as `GET /api/config` shows it: a literal secret is replaced by
 * {@link SECRET_PLACEHOLDER}, an `{ "env": "NAME" }` reference stays as written (it holds no
 * secret). A `PUT` carrying the placeholder where the file has a literal secret keeps that value.
 * @module
 */
import type { ConfigIssue } from "./model.js"

/** What a literal secret reads as at `GET /api/config`, and means "unchanged" in a `PUT`. */
export const SECRET_PLACEHOLDER = "********"

/** Fields that hold a secret wherever they appear (auth blocks, `secret_key`). */
const SECRET_FIELDS: ReadonlySet<string> = new Set(["secret", "password", "client_secret", "private_key", "secret_key"])

/** Whether the field at `path` holds a secret: a secret field, or the cluster's Redis URL (it may carry a password). */
const isSecretAt = (path: ReadonlyArray<string>) =>
  SECRET_FIELDS.has(path[path.length - 1] ?? "") || path.join(".") === "cluster.redis.url"

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** The config with each literal secret replaced by the placeholder. */
export const maskSecrets = (value: unknown, path: ReadonlyArray<string> = []): unknown => {
  if (typeof value === "string") return isSecretAt(path) ? SECRET_PLACEHOLDER : value
  if (Array.isArray(value)) return value.map((v, i) => maskSecrets(v, [...path, String(i)]))
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskSecrets(v, [...path, k])]))
  return value
}

const at = (value: unknown, path: ReadonlyArray<string>): unknown =>
  path.reduce<unknown>((node, key) => (isObject(node) || Array.isArray(node) ? (node as Record<string, unknown>)[key] : undefined), value)

/**
 * `edited` with each placeholder put back to the literal secret `current` holds at the same
 * place; a placeholder where `current` has none is an issue (there is nothing to keep).
 */
export const restoreSecrets = (
  edited: unknown,
  current: unknown
): { readonly value: unknown; readonly issues: ReadonlyArray<ConfigIssue> } => {
  const issues: Array<ConfigIssue> = []
  const walk = (value: unknown, path: ReadonlyArray<string>): unknown => {
    if (value === SECRET_PLACEHOLDER && isSecretAt(path)) {
      const kept = at(current, path)
      if (typeof kept === "string") return kept
      issues.push({
        path: path.join("."),
        message: `"${SECRET_PLACEHOLDER}" keeps the secret the file holds here, and it holds none: write the secret, or { "env": "NAME" }`
      })
      return value
    }
    if (Array.isArray(value)) return value.map((v, i) => walk(v, [...path, String(i)]))
    if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, [...path, k])]))
    return value
  }
  return { value: walk(edited, []), issues }
}
