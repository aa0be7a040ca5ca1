/**
 * Tools the gateway answers itself. `aperture_list_connectors` tells an agent which HTTP
 * connectors it may call and where (`/v1/connectors/<id>/`): it is listed only when at least
 * one HTTP connector exists and the caller holds a `proxy` grant on one, and it needs no grant
 * of its own (it only reveals what the caller may already use).
 * @module
 */
import type { UpstreamItem } from "../catalog/index.js"
import type { Connector, HttpConnector } from "../config/model.js"
import type { CallerPolicy } from "../grants/policy.js"
import { CONNECTORS_PREFIX } from "../http/paths.js"

export const LIST_CONNECTORS_TOOL = "aperture_list_connectors"

const listConnectorsDefinition: UpstreamItem = {
  name: LIST_CONNECTORS_TOOL,
  title: "List HTTP connectors",
  description: "Lists the HTTP APIs you can call through this gateway: each connector's id, description, allowed methods " +
    "and base path. Send requests to <gateway origin><base_path><api path>; the gateway adds the API's credentials.",
  inputSchema: { type: "object", properties: {}, additionalProperties: false },
  outputSchema: {
    type: "object",
    properties: {
      connectors: {
        type: "array",
        items: {
          type: "object",
          properties: {
            id: { type: "string" },
            description: { type: "string" },
            base_path: { type: "string" },
            methods: { type: "array", items: { type: "string" } }
          },
          required: ["id", "description", "base_path", "methods"]
        }
      }
    },
    required: ["connectors"]
  },
  annotations: { title: "List HTTP connectors", readOnlyHint: true, openWorldHint: false }
}

export const makeSystemTools = (connectors: ReadonlyArray<Connector>) => {
  const httpConnectors = connectors.filter((c): c is HttpConnector => c.kind === "http")
  const usable = (policy: CallerPolicy) => httpConnectors.filter((c) => policy.touches(c.id, c.labels, "proxy"))
  // Keyed by the caller view's tool array, which is already one per (catalog version, grants held).
  const listed = new WeakMap<ReadonlyArray<UpstreamItem>, ReadonlyArray<UpstreamItem>>()

  /** The caller's tools with the system tools they may see appended. */
  const withSystemTools = (tools: ReadonlyArray<UpstreamItem>, policy: CallerPolicy): ReadonlyArray<UpstreamItem> => {
    if (httpConnectors.length === 0) return tools
    let result = listed.get(tools)
    if (result === undefined) {
      result = usable(policy).length > 0 ? [...tools, listConnectorsDefinition] : tools
      listed.set(tools, result)
    }
    return result
  }

  /** The result of a system tool call, or `undefined` when `name` is no system tool this caller sees. */
  const call = (name: unknown, policy: CallerPolicy): Record<string, unknown> | undefined => {
    if (name !== LIST_CONNECTORS_TOOL || httpConnectors.length === 0) return undefined
    const mine = usable(policy)
    if (mine.length === 0) return undefined
    const structured = {
      connectors: mine.map((c) => ({
        id: c.id,
        description: c.description ?? "",
        base_path: `${CONNECTORS_PREFIX}${c.id}/`,
        methods: [...c.methods]
      }))
    }
    return { content: [{ type: "text", text: JSON.stringify(structured, null, 2) }], structuredContent: structured }
  }

  return { withSystemTools, call } as const
}
