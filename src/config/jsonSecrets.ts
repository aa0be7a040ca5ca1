/**
 * Secrets in a JSON config as `GET /api/config` shows it: a literal secret is replaced by
 * {@link SECRET_PLACEHOLDER}, an `{ "env": "NAME" }` reference stays as written (it holds no
 * secret). A `PUT` carrying the placeholder where the file has a literal secret keeps that value,
 * only while the secret still goes where it went; a `PUT` names only environment variables the
 * file already names.
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

/** Whether `a` and `b` are the same JSON value (objects compared by key, not key order). */
const sameJson = (a: unknown, b: unknown): boolean => {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => sameJson(v, b[i]))
  }
  if (isObject(a) || isObject(b)) {
    if (!isObject(a) || !isObject(b)) return false
    const keys = Object.keys(a)
    return keys.length === Object.keys(b).length && keys.every((k) => k in b && sameJson(a[k], b[k]))
  }
  return a === b
}

/**
 * What decides where a connector's secrets are sent: its protocol and URL, and its auth block
 * without the secrets (type, token_url, auth_url, in, name, client_id, …).
 */
const destinationOf = (config: unknown, connectorId: string): unknown => {
  const server = at(config, ["connectors", "servers", connectorId])
  if (!isObject(server)) return undefined
  const auth = server.auth
  return {
    protocol: server.protocol,
    url: server.url,
    auth: isObject(auth) ? Object.fromEntries(Object.entries(auth).filter(([k]) => !SECRET_FIELDS.has(k))) : auth
  }
}

/** The environment variable an `{ "env": "NAME" }` secret reference names, if `value` is one. */
const envNameOf = (value: unknown): string | undefined =>
  isObject(value) && typeof value.env === "string" ? value.env : undefined

/** Why an `{ "env": "NAME" }` in a PUT is refused: it is not where the file has it, going where it goes. */
export const ENV_MOVED =
  "an { \"env\": \"NAME\" } reference in a PUT must stay where the file has it, with its connector's destination unchanged; write the secret itself, or change the reference in the file on the machine"

/**
 * `edited` with each placeholder put back to the literal secret `current` holds at the same
 * place; a placeholder where `current` has none is an issue (there is nothing to keep), and so is
 * one under a connector whose destination changed: the placeholder keeps a secret only where it
 * goes, else an admin could send the file's secret to a server of theirs without ever reading it.
 * An `{ "env": "NAME" }` naming a variable `current` does not reference is an issue too.
 */
export const restoreSecrets = (
  edited: unknown,
  current: unknown
): { readonly value: unknown; readonly issues: ReadonlyArray<ConfigIssue> } => {
  const issues: Array<ConfigIssue> = []
  // The gateway's environment holds more than the config's secrets (APERTURE_SECRET_KEY, cloud
  // credentials, …), and a reload reads whatever a reference names: a PUT naming a variable as a
  // secret of a connector pointed at the admin's server would send it there. So a reference is
  // treated as the secret it names: a PUT keeps it where the file has it, with the connector's
  // destination unchanged, and nowhere else. Only the machine's owner points one elsewhere.
  /** Whether the connector a secret at `path` belongs to still sends it where the file does. */
  const destinationKept = (path: ReadonlyArray<string>) =>
    !(path[0] === "connectors" && path[1] === "servers" && path.length > 3) ||
    sameJson(destinationOf(edited, path[2]!), destinationOf(current, path[2]!))
  const walk = (value: unknown, path: ReadonlyArray<string>): unknown => {
    if (value === SECRET_PLACEHOLDER && isSecretAt(path)) {
      const kept = at(current, path)
      if (typeof kept !== "string") {
        issues.push({
          path: path.join("."),
          message: `"${SECRET_PLACEHOLDER}" keeps the secret the file holds here, and it holds none: write the secret, or { "env": "NAME" }`
        })
        return value
      }
      // `connectors.servers.<id>.…`: the connector's URL, protocol and auth settings say where
      // this secret is sent. (`cluster.redis.url` is its own destination; `secret_key` is sent nowhere.)
      if (!destinationKept(path)) {
        issues.push({
          path: path.join("."),
          message: `the connector's destination changed: write the secret again ("${SECRET_PLACEHOLDER}" keeps a secret only where it goes)`
        })
        return value
      }
      return kept
    }
    const envName = envNameOf(value)
    if (envName !== undefined) {
      if (envNameOf(at(current, path)) !== envName || !destinationKept(path)) {
        issues.push({ path: path.join("."), message: ENV_MOVED })
      }
      return value
    }
    if (Array.isArray(value)) return value.map((v, i) => walk(v, [...path, String(i)]))
    if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, [...path, k])]))
    return value
  }
  return { value: walk(edited, []), issues }
}
