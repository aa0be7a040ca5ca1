/**
 * `/v1/connectors/<id>/<path>` → the upstream URL. The path is decoded exactly once, to check
 * it: no `.`/`..` segments (encoded or not, and not with path parameters: `..;x` or `.%3b`,
 * which Tomcat, Jetty and Spring treat as `..`, nor spelled with Unicode dots or trailing spaces), no encoded slash or backslash, no double
 * encoding (`%252e`), no control characters, no empty segment (`//host`, nor `;x` alone, which
 * those servers read as empty). What passes is forwarded as
 * the caller wrote it, so the upstream's one decode sees what was checked; the result must
 * still lie under the connector's base URL.
 * @module
 */
import * as Either from "effect/Either"
import { CONNECTORS_PREFIX } from "../http/paths.js"

export interface ProxyTarget {
  readonly connectorId: string
  /** The raw path after the connector ID: `""` or starting with `/`. */
  readonly rawPath: string
  /** The raw query string without `?` (`""` when none). */
  readonly rawQuery: string
}

/** Splits a raw request target `/v1/connectors/<id>/<path>?<query>`; `undefined` when it is not one. */
export const splitTarget = (requestTarget: string): ProxyTarget | undefined => {
  if (!requestTarget.startsWith(CONNECTORS_PREFIX)) return undefined
  const q = requestTarget.indexOf("?")
  const path = q === -1 ? requestTarget : requestTarget.slice(0, q)
  const rawQuery = q === -1 ? "" : requestTarget.slice(q + 1)
  const rest = path.slice(CONNECTORS_PREFIX.length)
  const slash = rest.indexOf("/")
  const connectorId = slash === -1 ? rest : rest.slice(0, slash)
  if (connectorId === "") return undefined
  return { connectorId, rawPath: slash === -1 ? "" : rest.slice(slash), rawQuery }
}

const ENCODED_SEPARATOR = /%(2f|5c)/i
const DOUBLE_ENCODED = /%25[0-9a-f]{2}/i
const CONTROL = /[\u0000-\u001f\u007f]/

const NON_ASCII = /[^\u0000-\u007f]/

/**
 * A segment some server reads as `.` or `..`: Unicode dots that NFKC folds to `.` (fullwidth
 * `．`, `․`, `‥`), as servers and filesystems that normalise do, or dots with trailing spaces,
 * which Windows drops. Normalised only when the segment has non-ASCII characters (rare).
 */
const isDotSpelling = (segment: string): boolean => {
  const folded = (NON_ASCII.test(segment) ? segment.normalize("NFKC") : segment).split(";", 1)[0]!.trimEnd()
  return folded === "." || folded === ".."
}

/**
 * Checks a raw path; `Right` holds the decoded path without its leading `/` (the grant name,
 * e.g. `repos/octo/hello`), `Left` says what is wrong.
 */
export const decodePath = (rawPath: string): Either.Either<string, string> => {
  if (rawPath === "" || rawPath === "/") return Either.right("")
  if (!rawPath.startsWith("/")) return Either.left("path must start with /")
  if (rawPath.includes("\\")) return Either.left("backslash in path")
  if (ENCODED_SEPARATOR.test(rawPath)) return Either.left("encoded slash or backslash in path")
  if (DOUBLE_ENCODED.test(rawPath)) return Either.left("double-encoded character in path")
  const segments = rawPath.slice(1).split("/")
  const decoded: Array<string> = []
  for (let i = 0; i < segments.length; i++) {
    const raw = segments[i] as string
    if (raw === "") {
      // A trailing slash is an empty last segment; anywhere else `//` is refused.
      if (i === segments.length - 1) {
        decoded.push("")
        continue
      }
      return Either.left("empty path segment (//)")
    }
    let segment: string
    try {
      segment = decodeURIComponent(raw)
    } catch {
      return Either.left("malformed percent-encoding in path")
    }
    if (segment === "." || segment === "..") return Either.left("dot segment (. or ..) in path")
    const semicolon = segment.indexOf(";")
    if (semicolon !== -1) {
      // Servlet containers drop a segment's `;params` before resolving dot segments.
      const beforeParams = segment.slice(0, semicolon)
      if (beforeParams === "." || beforeParams === "..") {
        return Either.left("dot segment with path parameters (..; or .;) in path")
      }
      if (beforeParams === "") return Either.left("empty path segment with path parameters (;) in path")
    }
    if (isDotSpelling(segment)) return Either.left("dot segment in another spelling (Unicode dots or trailing spaces) in path")
    if (CONTROL.test(segment)) return Either.left("control character in path")
    decoded.push(segment)
  }
  return Either.right(decoded.join("/"))
}

/**
 * The query parameter, if any, that asks the upstream for another method: `_method` (with any
 * encoding or case, and as `_method[]`), which Rails, Laravel, Symfony and Express
 * `method-override` honour on a POST. A `?_method=DELETE` would do what the connector's
 * `methods` and the grant were checked against as a POST, so such a request is refused, not
 * forwarded (dropping the parameter would change the request the caller meant).
 */
export const methodOverrideParam = (rawQuery: string): string | undefined => {
  if (rawQuery === "") return undefined
  for (const pair of rawQuery.split("&")) {
    const rawName = pair.split("=", 1)[0] as string
    let name: string
    try {
      name = decodeURIComponent(rawName.replace(/\+/g, " "))
    } catch {
      name = rawName
    }
    const lower = name.trim().toLowerCase()
    if (lower === "_method" || lower.startsWith("_method[")) return name
  }
  return undefined
}

/** The base URL with exactly one trailing slash on its path. */
export const normalizeBase = (base: URL): URL => {
  const normalized = new URL(base)
  if (!normalized.pathname.endsWith("/")) normalized.pathname += "/"
  normalized.hash = ""
  return normalized
}

/**
 * The upstream URL for a checked raw path and query under `base` (from {@link normalizeBase});
 * `Left` when the result would leave the base (defence in depth after {@link decodePath}).
 */
export const upstreamUrl = (base: URL, rawPath: string, rawQuery: string): Either.Either<URL, string> => {
  const target = new URL(base)
  target.pathname = base.pathname + (rawPath.startsWith("/") ? rawPath.slice(1) : rawPath)
  if (target.origin !== base.origin || !target.pathname.startsWith(base.pathname)) {
    return Either.left("path leaves the connector's base URL")
  }
  const baseQuery = base.search.slice(1)
  const query = baseQuery === "" ? rawQuery : rawQuery === "" ? baseQuery : `${baseQuery}&${rawQuery}`
  if (query !== "") target.search = query
  return Either.right(target)
}

/**
 * Adds the credential's query parameters, replacing any the caller sent under the same names
 * (replace, never merge), and leaving the caller's other parameters byte for byte.
 */
export const withQueryParams = (url: URL, params: Readonly<Record<string, string>>): URL => {
  const names = Object.keys(params)
  if (names.length === 0) return url
  const kept = url.search.slice(1).split("&").filter((pair) => {
    if (pair === "") return false
    const name = pair.split("=", 1)[0] as string
    let decodedName: string
    try {
      decodedName = decodeURIComponent(name.replace(/\+/g, " "))
    } catch {
      return true
    }
    return !names.includes(decodedName)
  })
  const added = names.map((name) => `${encodeURIComponent(name)}=${encodeURIComponent(params[name] as string)}`)
  const result = new URL(url)
  result.search = [...kept, ...added].join("&")
  return result
}
