/**
 * Grant patterns: `connectorID/category/name` globs (`*` within one segment, `**` any number of
 * segments) and `label:x`. Parsed once at load time; a malformed pattern is a load error with
 * a reason (the original silently drops it).
 * @module
 */
import * as Either from "effect/Either"

export const CATEGORIES = ["tools", "resources", "templates", "prompts", "proxy"] as const
export type Category = typeof CATEGORIES[number]

/** The thing a decision is about: one item of one connector. */
export interface GrantTarget {
  readonly connectorId: string
  readonly labels: ReadonlyArray<string>
  readonly category: Category
  /** Upstream (unprefixed) name: tool or prompt name, resource URI, URI template, or proxy path. */
  readonly name: string
}

export type CompiledPattern =
  | { readonly kind: "label"; readonly source: string; readonly label: string }
  | {
    readonly kind: "glob"
    readonly source: string
    /** The first segment when it is a literal connector ID, for "unknown connector" warnings. */
    readonly connectorLiteral: string | undefined
    /** Matches the connector IDs the pattern can reach. */
    readonly connectorRegex: RegExp
    readonly regex: RegExp
  }

const escapeRegex = (s: string) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")
const segmentRegex = (segment: string) => escapeRegex(segment).replace(/\*/g, "[^/]*")
const isCategory = (s: string): s is Category => (CATEGORIES as ReadonlyArray<string>).includes(s)

const globRegex = (segments: ReadonlyArray<string>): RegExp => {
  if (segments.length === 1 && segments[0] === "**") return /^.*$/s
  let source = ""
  segments.forEach((segment, i) => {
    const afterLeadingGlobstar = i === 1 && segments[0] === "**"
    if (segment === "**") {
      source += i === 0 ? "(?:[^/]*/)*" : "(?:/[^/]*)*"
    } else {
      source += (i === 0 || afterLeadingGlobstar ? "" : "/") + segmentRegex(segment)
    }
  })
  return new RegExp(`^${source}$`, "s")
}

/** Parses one pattern; `Left` holds a message saying what is wrong and what to write instead. */
export const parsePattern = (source: string): Either.Either<CompiledPattern, string> => {
  if (source.length === 0) return Either.left("empty pattern")
  if (source.startsWith("label:")) {
    const label = source.slice(6)
    return /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(label)
      ? Either.right({ kind: "label", source, label })
      : Either.left(`invalid label "${label}": letters, digits, "_", "." and "-"`)
  }
  const segments = source.split("/")
  for (const segment of segments) {
    if (segment.includes("**") && segment !== "**") {
      return Either.left(`"**" must be a whole segment (in "${segment}")`)
    }
  }
  const [connector, category, ...name] = segments as [string, ...Array<string>]
  if (connector !== "**") {
    if (connector === "") return Either.left("missing connector ID before the first \"/\"")
    if (!/^[A-Za-z0-9*]+$/.test(connector)) {
      return Either.left(`invalid connector "${connector}": connector IDs are letters and digits ("*" allowed)`)
    }
    if (category === undefined) {
      return Either.left(`expected connectorID/category/name; did you mean "${connector}/**"?`)
    }
    if (category !== "**" && category !== "*" && !isCategory(category)) {
      return Either.left(`unknown category "${category}"; expected one of ${CATEGORIES.join(", ")}, "*" or "**"`)
    }
    if (category !== "**" && name.length === 0) {
      return Either.left(`missing name after the category; did you mean "${connector}/${category}/*"?`)
    }
  }
  const connectorLiteral = connector.includes("*") ? undefined : connector
  const connectorRegex = connector === "**" ? /^.*$/ : new RegExp(`^${segmentRegex(connector)}$`)
  return Either.right({ kind: "glob", source, connectorLiteral, connectorRegex, regex: globRegex(segments) })
}

/** Whether one compiled pattern covers the target. */
export const patternMatches = (pattern: CompiledPattern, target: GrantTarget): boolean =>
  pattern.kind === "label"
    ? target.labels.includes(pattern.label)
    : pattern.regex.test(`${target.connectorId}/${target.category}/${target.name}`)

/**
 * Whether the pattern reaches this connector at all (its first segment matches the ID, or its
 * label is on it): decides whether a connector is listed for a caller, not whether an item is allowed.
 */
export const patternTouchesConnector = (
  pattern: CompiledPattern,
  connectorId: string,
  labels: ReadonlyArray<string>
): boolean => pattern.kind === "label" ? labels.includes(pattern.label) : pattern.connectorRegex.test(connectorId)

/**
 * Whether the pattern can allow anything of `category` on this connector (e.g. whether a caller
 * may use an HTTP connector's proxy at all), without naming an item.
 */
export const patternTouchesCategory = (
  pattern: CompiledPattern,
  connectorId: string,
  labels: ReadonlyArray<string>,
  category: Category
): boolean => {
  if (!patternTouchesConnector(pattern, connectorId, labels)) return false
  if (pattern.kind === "label") return true
  const [first, second] = pattern.source.split("/")
  if (first === "**" || second === undefined || second === "**") return true
  return new RegExp(`^${segmentRegex(second)}$`).test(category)
}

/**
 * A grant as loaded: who (`src`) may reach what (`connectors`), and whether it makes them admins
 * (`/metrics`, every connector in full at `/api/connectors`) or lets them read `/metrics` only.
 * Absent `admin`/`readMetrics` read as `false`.
 */
export interface Grant {
  readonly src: ReadonlyArray<string>
  readonly connectors: ReadonlyArray<CompiledPattern>
  readonly admin?: boolean
  readonly readMetrics?: boolean
}
