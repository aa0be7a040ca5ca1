/**
 * Tool arguments as the audit log may show them (`audit.arguments: "redacted"`): values under
 * keys that name a secret, and strings that look like credentials, are replaced; long strings
 * are cut and deep structures stop at a depth. The shape stays, so an operator can see what
 * kind of call it was without reading what the secrets were.
 * @module
 */

export const REDACTED = "[redacted]"

/** Keys whose values are secrets, whatever they look like (compared without case, "-", "_" or "."). */
const SECRET_PARTS = ["token", "secret", "password", "passwd", "passphrase", "authorization", "credential", "cookie", "signature", "bearer", "sessionid"]
const SECRET_NAMES = new Set(["auth", "pwd", "pin", "otp", "session"])
export const isSecretKey = (key: string): boolean => {
  const k = key.toLowerCase().replace(/[-_.\s]/g, "")
  return SECRET_NAMES.has(k) || k.endsWith("key") || SECRET_PARTS.some((part) => k.includes(part))
}
/** Common credential prefixes (GitHub, Slack, OpenAI-style, AWS access keys, JWTs). */
const KNOWN_PREFIX = /^(?:gh[pousr]_|github_pat_|xox[abprs]-|sk-|AKIA|ASIA|eyJ)[A-Za-z0-9_\-.]{8,}/
/** A long run without spaces mixing letters and digits: a key, a token, a hash. */
const OPAQUE_MIN = 24

const MAX_DEPTH = 6
const MAX_ITEMS = 50
const MAX_STRING = 256

const looksOpaque = (s: string): boolean =>
  KNOWN_PREFIX.test(s) || (s.length >= OPAQUE_MIN && !/\s/.test(s) && /[0-9]/.test(s) && /[A-Za-z]/.test(s))

const redactString = (s: string): string => {
  if (looksOpaque(s)) return REDACTED
  return s.length > MAX_STRING ? `${s.slice(0, MAX_STRING)}…(+${s.length - MAX_STRING} chars)` : s
}

/** A copy of `value` safe to write to the audit log. */
export const redact = (value: unknown, depth = 0): unknown => {
  if (typeof value === "string") return redactString(value)
  if (value === null || typeof value !== "object") return value
  if (depth >= MAX_DEPTH) return "[…]"
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_ITEMS).map((item) => redact(item, depth + 1))
    if (value.length > MAX_ITEMS) items.push(`…(+${value.length - MAX_ITEMS} items)`)
    return items
  }
  const out: Record<string, unknown> = {}
  let count = 0
  for (const [key, item] of Object.entries(value)) {
    if (count++ >= MAX_ITEMS) {
      out["…"] = `+${Object.keys(value).length - MAX_ITEMS} keys`
      break
    }
    out[key] = isSecretKey(key) ? REDACTED : redact(item, depth + 1)
  }
  return out
}
