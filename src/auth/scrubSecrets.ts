/**
 * Secrets taken out of text a server sent back: an authorization server or an upstream may echo
 * what it was sent (an error page showing the request's headers or URL), and that text reaches
 * logs and callers.
 * @module
 */
import type { Authorization } from "./AuthPlugin.js"

/** Replaces every occurrence of each secret (of 4 characters or more) with `<redacted>`. */
export const scrubSecrets = (text: string, secrets: ReadonlyArray<string>): string =>
  secrets.reduce((scrubbed, secret) => secret.length >= 4 ? scrubbed.split(secret).join("<redacted>") : scrubbed, text)

/**
 * The forms in which what a credential added to a request could come back: each header and query
 * value, a header's token without its scheme (`Bearer x` → `x`), and a value as it reads once
 * percent-encoded in a URL.
 */
export const authorizationSecrets = (authorization: Authorization): Array<string> => {
  const secrets: Array<string> = []
  for (const value of Object.values(authorization.headers ?? {})) {
    secrets.push(value)
    const space = value.indexOf(" ")
    if (space > 0) secrets.push(value.slice(space + 1).trim())
  }
  for (const value of Object.values(authorization.query ?? {})) {
    secrets.push(value, encodeURIComponent(value), new URLSearchParams({ v: value }).toString().slice(2))
  }
  // Longest first, so a token inside a longer form is not left half-replaced.
  return [...new Set(secrets)].sort((a, b) => b.length - a.length)
}
