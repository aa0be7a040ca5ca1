/**
 * Secrets taken out of text a server sent back: an authorization server or an upstream may echo
 * what it was sent (an error page showing the request's headers or URL), and that text reaches
 * logs and callers.
 * @module
 */
import type { Authorization } from "../plugin/AuthPlugin.js"

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

/** How many distinct authorizations a connector remembers having sent (a token and the ones before it). */
const REMEMBERED_AUTHORIZATIONS = 4

const sameValues = (a: Readonly<Record<string, string>> | undefined, b: Readonly<Record<string, string>> | undefined) => {
  if (a === b) return true
  if (a === undefined || b === undefined) return false
  for (const name in a) if (a[name] !== b[name]) return false
  for (const name in b) if (!(name in a)) return false
  return true
}

/**
 * The credentials a connector sent lately, so an answer echoing one can be scrubbed: a JSON-RPC
 * error inside an HTTP 200 is read by the MCP client, not by the fetch that added the credential.
 * Noting costs a comparison per request (no allocation while the credential is unchanged); the
 * secrets' forms are worked out only when an error is scrubbed.
 */
export class SentCredentials {
  /** Newest first, distinct by content. */
  private readonly recent: Array<Authorization> = []

  note(authorization: Authorization): void {
    const newest = this.recent[0]
    if (
      newest === authorization ||
      (newest !== undefined && sameValues(newest.headers, authorization.headers) &&
        sameValues(newest.query, authorization.query))
    ) return
    this.recent.unshift(authorization)
    if (this.recent.length > REMEMBERED_AUTHORIZATIONS) this.recent.pop()
  }

  /** `text` with every form of each remembered credential replaced by `<redacted>`. */
  scrub(text: string): string {
    if (this.recent.length === 0) return text
    const secrets = [...new Set(this.recent.flatMap(authorizationSecrets))].sort((a, b) => b.length - a.length)
    return scrubSecrets(text, secrets)
  }

  /** A JSON value (an error's `data`) with the credentials scrubbed out of its strings. */
  scrubJson(value: unknown): unknown {
    if (value === undefined || this.recent.length === 0) return value
    const json = JSON.stringify(value)
    if (json === undefined) return value
    const scrubbed = this.scrub(json)
    if (scrubbed === json) return value
    try {
      return JSON.parse(scrubbed) as unknown
    } catch {
      // A secret that spanned JSON syntax: the scrubbed text, rather than the secret.
      return scrubbed
    }
  }
}
