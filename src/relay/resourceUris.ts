/**
 * Resource URIs in results, in the form a caller can use: an upstream hands out its own URIs
 * (a tool's `resource_link`, an embedded resource, a prompt's embedded resource, the `uri` of
 * what `resources/read` returns), which a caller reads at `/v1/mcp` only as `<id>-<uri>`
 * (the endpoint contract). Every such URI of a prefixed connector is rewritten to `<id>-<uri>`, whether or
 * not the connector lists it: reading `<id>-<uri>` goes to connector `<id>` with `<uri>` and the
 * upstream decides whether it exists ({@link unlistedResource}), so the rule needs no lookup.
 *
 * This runs on every `tools/call` result: it scans one short array and copies only the items it
 * changes; a result without resource URIs is returned as it is (no copy, no re-encoding).
 * @module
 */
import type { CatalogSnapshot } from "../catalog/Catalog.js"
import { decideEntry } from "../catalog/entryGrant.js"
import type { IndexEntry } from "../catalog/index.js"
import { exposedUri } from "../catalog/names.js"
import { speaksMcp } from "../config/model.js"
import type { CallerPolicy, Decision } from "../grants/policy.js"

type Json = Record<string, unknown>

const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null

/** A content block with its resource URI exposed; the block itself when it carries none. */
const exposedBlock = (block: unknown, connectorId: string): unknown => {
  if (!isObject(block)) return block
  const type = block["type"]
  if (type === "resource_link") {
    const uri = block["uri"]
    return typeof uri === "string" ? { ...block, uri: exposedUri(connectorId, uri, true) } : block
  }
  if (type === "resource") {
    const resource = block["resource"]
    if (!isObject(resource) || typeof resource["uri"] !== "string") return block
    return { ...block, resource: { ...resource, uri: exposedUri(connectorId, resource["uri"], true) } }
  }
  return block
}

/** The array with each item exposed: the same array when no item changed, else a copy. */
const exposedItems = (items: ReadonlyArray<unknown>, connectorId: string, expose: (item: unknown, connectorId: string) => unknown) => {
  let copy: Array<unknown> | undefined
  for (let i = 0; i < items.length; i++) {
    const item = items[i]
    const exposed = expose(item, connectorId)
    if (exposed !== item) {
      copy ??= items.slice()
      copy[i] = exposed
    }
  }
  return copy ?? items
}

/** A prompt message: its `content` is one block (an array of them is read too). */
const exposedMessage = (message: unknown, connectorId: string): unknown => {
  if (!isObject(message)) return message
  const content = message["content"]
  const exposed = Array.isArray(content) ? exposedItems(content, connectorId, exposedBlock) : exposedBlock(content, connectorId)
  return exposed === content ? message : { ...message, content: exposed }
}

/** One of `resources/read`'s `contents`. */
const exposedContents = (contents: unknown, connectorId: string): unknown => {
  if (!isObject(contents) || typeof contents["uri"] !== "string") return contents
  return { ...contents, uri: exposedUri(connectorId, contents["uri"], true) }
}

const withExposed = (result: Json, key: string, connectorId: string, expose: (item: unknown, connectorId: string) => unknown): Json => {
  const items = result[key]
  if (!Array.isArray(items)) return result
  const exposed = exposedItems(items, connectorId, expose)
  return exposed === items ? result : { ...result, [key]: exposed }
}

/**
 * A complete result of `method` from connector `connector` with its resource URIs exposed; the
 * same object when there are none (or the connector is not prefixed: its URIs are exposed as
 * they are).
 *
 * A tool's `structuredContent` is left alone: it is the tool's own data, shaped by its
 * `outputSchema` (which a rewrite could break), not a protocol content block; a URI inside it is
 * the tool's to name. Text that mentions a URI is not rewritten either.
 */
export const exposeResultUris = (
  method: string,
  connector: { readonly id: string; readonly prefix: boolean },
  result: Json
): Json => {
  if (!connector.prefix) return result
  switch (method) {
    case "tools/call":
      return withExposed(result, "content", connector.id, exposedBlock)
    case "prompts/get":
      return withExposed(result, "messages", connector.id, exposedMessage)
    case "resources/read":
      return withExposed(result, "contents", connector.id, exposedContents)
    default:
      return result
  }
}

/**
 * A read of `<id>-<uri>` that no listed resource or template of `<id>` matches (a link a tool
 * handed out, a session resource not yet in the catalog): routed to connector `<id>` when it is
 * ready, prefixed, and the caller's grants cover `<uri>` itself as a resource (e.g.
 * `<id>/resources/**`); the upstream decides whether it exists. Anything else is `undefined`:
 * the caller's "not found", as for a denied resource (deny by default).
 */
export const unlistedResource = (
  snapshot: CatalogSnapshot,
  policy: CallerPolicy,
  prefixed: { readonly connectorId: string; readonly uri: string } | undefined
): { readonly entry: IndexEntry; readonly upstreamUri: string; readonly grant: Decision } | undefined => {
  if (prefixed === undefined) return undefined
  const state = snapshot.byId.get(prefixed.connectorId)
  if (state === undefined || state.status !== "ready") return undefined
  const connector = state.connector
  if (!speaksMcp(connector) || !connector.prefix) return undefined
  const entry: IndexEntry = {
    connector,
    category: "resources",
    upstreamName: prefixed.uri,
    exposed: { uri: exposedUri(connector.id, prefixed.uri, true) }
  }
  const grant = decideEntry(policy, entry)
  return grant === undefined ? undefined : { entry, upstreamUri: prefixed.uri, grant }
}
