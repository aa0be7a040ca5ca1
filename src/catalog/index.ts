/**
 * The catalog index: every ready connector's tools, prompts, resources and templates under their
 * exposed names, built once per change (never per request), in config order. Exposed objects are
 * the upstream's JSON with only the name (or URI) replaced.
 * @module
 */
import type { Connector, McpSpeakingConnector } from "../config/model.js"
import type { Category } from "../config/grantPattern.js"
import { exposedName, exposedUri } from "./names.js"

/** An upstream definition as received: passed through untouched apart from its name. */
export type UpstreamItem = { readonly [key: string]: unknown }

export type ConnectorStatus = "connecting" | "ready" | "down" | "misconfigured" | "needs_auth"

export interface UpstreamLists {
  readonly tools: ReadonlyArray<UpstreamItem & { readonly name: string }>
  readonly prompts: ReadonlyArray<UpstreamItem & { readonly name: string }>
  readonly resources: ReadonlyArray<UpstreamItem & { readonly uri: string }>
  readonly templates: ReadonlyArray<UpstreamItem & { readonly uriTemplate: string }>
}

export const emptyLists: UpstreamLists = { tools: [], prompts: [], resources: [], templates: [] }

export interface UpstreamInfo {
  readonly name: string | undefined
  readonly version: string | undefined
  readonly protocolVersion: string | undefined
  readonly transport: string
}

export interface ConnectorState {
  readonly connector: Connector
  readonly status: ConnectorStatus
  /** Why it is not ready; never holds a secret. */
  readonly error: string | undefined
  /** Epoch ms of the last status change. */
  readonly since: number
  /** Whether the first connection attempt has finished (for `/healthz?ready`). */
  readonly attempted: boolean
  readonly lists: UpstreamLists
  readonly upstream: UpstreamInfo | undefined
}

export interface IndexEntry {
  readonly connector: McpSpeakingConnector
  readonly category: Category
  /** The upstream's own name or URI (what grants match and what is sent upstream). */
  readonly upstreamName: string
  /** The upstream definition with the exposed name (or URI) in place. */
  readonly exposed: UpstreamItem
}

export interface CatalogIndex {
  readonly tools: ReadonlyArray<IndexEntry>
  readonly prompts: ReadonlyArray<IndexEntry>
  readonly resources: ReadonlyArray<IndexEntry>
  readonly templates: ReadonlyArray<IndexEntry>
  readonly toolsByName: ReadonlyMap<string, IndexEntry>
  readonly promptsByName: ReadonlyMap<string, IndexEntry>
  readonly resourcesByUri: ReadonlyMap<string, IndexEntry>
  readonly templatesByUri: ReadonlyMap<string, IndexEntry>
  /** Per connector: names withheld because they collided with an earlier connector's. */
  readonly collisions: ReadonlyMap<string, ReadonlyArray<string>>
}

interface Kind {
  readonly category: Category
  readonly key: "name" | "uri" | "uriTemplate"
  readonly noun: string
  readonly expose: (id: string, name: string, prefix: boolean) => string
}

const KINDS = {
  tools: { category: "tools", key: "name", noun: "tool", expose: exposedName },
  prompts: { category: "prompts", key: "name", noun: "prompt", expose: exposedName },
  resources: { category: "resources", key: "uri", noun: "resource", expose: exposedUri },
  templates: { category: "templates", key: "uriTemplate", noun: "resource template", expose: exposedUri }
} as const satisfies Record<keyof UpstreamLists, Kind>

/**
 * One connector's list under exposed names, made once per list: a list is replaced when it
 * changes, never edited, so a rebuild (one per connector as 100 connect at start-up) re-exposes
 * only the list that changed instead of copying every connector's items again.
 */
const exposedLists = new WeakMap<ReadonlyArray<UpstreamItem>, { readonly connector: McpSpeakingConnector; readonly entries: ReadonlyArray<IndexEntry> }>()

const exposedEntries = (connector: McpSpeakingConnector, kind: Kind, items: ReadonlyArray<UpstreamItem>): ReadonlyArray<IndexEntry> => {
  const cached = exposedLists.get(items)
  if (cached !== undefined && cached.connector === connector) return cached.entries
  const entries = items.map((item): IndexEntry => {
    const upstreamName = item[kind.key] as string
    const name = kind.expose(connector.id, upstreamName, connector.prefix)
    return { connector, category: kind.category, upstreamName, exposed: name === upstreamName ? item : { ...item, [kind.key]: name } }
  })
  exposedLists.set(items, { connector, entries })
  return entries
}

/** Builds the index from the connectors' states, ready ones only, in config order. */
export const buildIndex = (states: ReadonlyArray<ConnectorState>): CatalogIndex => {
  const collisions = new Map<string, Array<string>>()
  const build = (list: keyof UpstreamLists) => {
    const kind: Kind = KINDS[list]
    const entries: Array<IndexEntry> = []
    const byName = new Map<string, IndexEntry>()
    for (const state of states) {
      if (state.status !== "ready" || state.connector.kind === "http") continue
      const connector = state.connector
      for (const entry of exposedEntries(connector, kind, state.lists[list])) {
        const name = entry.exposed[kind.key] as string
        const existing = byName.get(name)
        if (existing !== undefined) {
          if (existing.connector.id !== connector.id) {
            const message = `${kind.noun} "${name}" of connector "${connector.id}" collides with connector "${existing.connector.id}" ` +
              `(prefix: false); only "${existing.connector.id}"'s is exposed`
            collisions.set(connector.id, [...(collisions.get(connector.id) ?? []), message])
          }
          continue
        }
        entries.push(entry)
        byName.set(name, entry)
      }
    }
    return [entries, byName] as const
  }
  const [tools, toolsByName] = build("tools")
  const [prompts, promptsByName] = build("prompts")
  const [resources, resourcesByUri] = build("resources")
  const [templates, templatesByUri] = build("templates")
  return { tools, prompts, resources, templates, toolsByName, promptsByName, resourcesByUri, templatesByUri, collisions }
}
