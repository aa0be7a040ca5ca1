/**
 * What `/v1/mcp` does with each method, independent of protocol era and session: lists come
 * from the catalog filtered by the caller's grants; calls, reads and gets are grant-checked,
 * renamed back to the upstream's name and forwarded to the owning upstream. A denied item
 * answers exactly as an unknown one.
 *
 * The per-request methods are plain functions returning promises: the MCP SDK calls them, and
 * a lookup plus one upstream request does not need a fiber of its own (measured: running each
 * call as an Effect cost more CPU than the lookup and forwarding together).
 * @module
 */
import { ProtocolError, ProtocolErrorCode, ResourceNotFoundError, SERVER_INFO_META_KEY, UriTemplate } from "@modelcontextprotocol/server"
import { Duration, Effect } from "effect"
import { Catalog, type CatalogSnapshot } from "../catalog/Catalog.js"
import type { IndexEntry } from "../catalog/index.js"
import { splitPrefixedUri } from "../catalog/names.js"
import { GatewayConfig } from "../config/GatewayConfig.js"
import { type CallerPolicy, PolicyCache } from "../grants/policy.js"
import type { Identity } from "../identity/IdentityPlugin.js"
import { passthrough } from "../upstream/passthrough.js"
import { describeError } from "../upstream/UpstreamError.js"
import { type LiveUpstream, Upstreams } from "../upstream/Upstreams.js"
import { allowed, callerView, page } from "./views.js"

type Params = Record<string, unknown> | undefined

/** Per-call context from the downstream request. */
export interface CallContext {
  readonly signal: AbortSignal
  readonly progressToken: string | number | undefined
  readonly notify: (notification: { method: string; params?: Record<string, unknown> }) => Promise<void>
}

const invalidParams = (message: string) => new ProtocolError(ProtocolErrorCode.InvalidParams, message)

/** Hard cap on one call however much progress it reports, as a multiple of the connector timeout. */
const HARD_CAP_FACTOR = 10

/**
 * A 2026-era upstream stamps its own `serverInfo` into each result's `_meta`; the caller's server
 * is the gateway, whose stamp the SDK adds on the way out.
 */
const withoutUpstreamServerInfo = (result: Record<string, unknown>) => {
  const meta = result["_meta"] as Record<string, unknown> | undefined
  if (meta !== undefined && SERVER_INFO_META_KEY in meta) {
    const { [SERVER_INFO_META_KEY]: _, ...rest } = meta
    if (Object.keys(rest).length === 0) delete result["_meta"]
    else result["_meta"] = rest
  }
  return result
}

/** The params to send upstream: the caller's, with the upstream name and without the caller's progress token. */
const upstreamParams = (params: Params, replace: Record<string, unknown>) => {
  const { _meta, ...rest } = params ?? {}
  const meta = _meta as Record<string, unknown> | undefined
  let forwardedMeta: Record<string, unknown> | undefined
  if (meta !== undefined) {
    const { progressToken: _, ...others } = meta
    if (Object.keys(others).length > 0) forwardedMeta = others
  }
  return { ...rest, ...replace, ...(forwardedMeta !== undefined && { _meta: forwardedMeta }) }
}

type ListKey = "tools" | "prompts" | "resources" | "templates"

export class McpRouter extends Effect.Service<McpRouter>()("aperture/McpRouter", {
  effect: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const catalog = yield* Catalog
    const upstreams = yield* Upstreams
    const policies = new PolicyCache(config.grants)

    const policyOf = (identity: Identity): CallerPolicy => policies.get(identity)

    const live = (entry: IndexEntry): LiveUpstream => {
      const upstream = upstreams.get(entry.connector.id)
      if (upstream === undefined) {
        throw new ProtocolError(ProtocolErrorCode.InternalError, `connector ${entry.connector.id} is not connected`)
      }
      return upstream
    }

    /** Sends one request to an upstream; the upstream's JSON-RPC errors pass through as they are. */
    const forward = async (
      upstream: LiveUpstream,
      method: string,
      params: Record<string, unknown>,
      context: CallContext
    ): Promise<Record<string, unknown>> => {
      const timeout = Duration.toMillis(upstream.connector.timeout)
      const progressToken = context.progressToken
      try {
        const result = await upstream.client.request({ method, params }, passthrough, {
          signal: context.signal,
          timeout,
          resetTimeoutOnProgress: true,
          maxTotalTimeout: timeout * HARD_CAP_FACTOR,
          ...(progressToken !== undefined && {
            onprogress: (progress) => {
              context.notify({ method: "notifications/progress", params: { ...progress, progressToken } }).catch(() => {})
            }
          })
        })
        return withoutUpstreamServerInfo(result)
      } catch (error) {
        // A JSON-RPC error answered by the upstream passes through as it is (ProtocolError is
        // brand-checked, so the client package's errors match the server package's class).
        if (error instanceof ProtocolError) throw new ProtocolError(error.code, error.message, error.data)
        if (context.signal.aborted) throw error
        // Anything else is the connection: let the connector check it now.
        upstream.suspect()
        throw new ProtocolError(ProtocolErrorCode.InternalError, `connector ${upstream.connector.id}: ${describeError(error)}`)
      }
    }

    const list = (key: ListKey, resultKey: string) => (identity: Identity, params: Params): Record<string, unknown> => {
      const view = callerView(catalog.current(), policyOf(identity))
      const cursor = params?.["cursor"]
      const result = page(view[key], typeof cursor === "string" ? cursor : undefined)
      if (result === undefined) throw invalidParams("Invalid cursor")
      return { [resultKey]: result.items, ...(result.nextCursor !== undefined && { nextCursor: result.nextCursor }) }
    }

    const findAllowed = (
      identity: Identity,
      byName: ReadonlyMap<string, IndexEntry>,
      name: unknown
    ): IndexEntry | undefined => {
      if (typeof name !== "string") return undefined
      const entry = byName.get(name)
      return entry !== undefined && allowed(policyOf(identity), entry) ? entry : undefined
    }

    const callTool = (identity: Identity, params: Params, context: CallContext) => {
      const name = params?.["name"]
      const entry = findAllowed(identity, catalog.current().index.toolsByName, name)
      if (entry === undefined) throw invalidParams(`Tool ${String(name)} not found`)
      return forward(live(entry), "tools/call", upstreamParams(params, { name: entry.upstreamName }), context)
    }

    const getPrompt = (identity: Identity, params: Params, context: CallContext) => {
      const name = params?.["name"]
      const entry = findAllowed(identity, catalog.current().index.promptsByName, name)
      if (entry === undefined) throw invalidParams(`Prompt ${String(name)} not found`)
      return forward(live(entry), "prompts/get", upstreamParams(params, { name: entry.upstreamName }), context)
    }

    /**
     * The connector and upstream URI for a resource URI: a listed resource, or one a listed
     * template produces. The template must be visible to the caller too.
     */
    const resolveResource = (snapshot: CatalogSnapshot, identity: Identity, uri: string) => {
      const listed = findAllowed(identity, snapshot.index.resourcesByUri, uri)
      if (listed !== undefined) return { entry: listed, upstreamUri: listed.upstreamName }
      const policy = policyOf(identity)
      const prefixed = splitPrefixedUri(uri)
      for (const template of snapshot.index.templates) {
        const connector = template.connector
        const upstreamUri = connector.prefix ? (prefixed?.connectorId === connector.id ? prefixed.uri : undefined) : uri
        if (upstreamUri === undefined) continue
        let matches = false
        try {
          matches = new UriTemplate(template.upstreamName).match(upstreamUri) !== null
        } catch {
          matches = false
        }
        if (!matches) continue
        const ok = allowed(policy, template) ||
          policy.decide({ connectorId: connector.id, labels: connector.labels, category: "resources", name: upstreamUri }) !==
            undefined
        if (ok) return { entry: template, upstreamUri }
      }
      return undefined
    }

    const readResource = (identity: Identity, params: Params, context: CallContext) => {
      const uri = params?.["uri"]
      if (typeof uri !== "string") throw invalidParams("uri is required")
      const resolved = resolveResource(catalog.current(), identity, uri)
      if (resolved === undefined) throw new ResourceNotFoundError(uri)
      return forward(live(resolved.entry), "resources/read", upstreamParams(params, { uri: resolved.upstreamUri }), context)
    }

    const complete = async (identity: Identity, params: Params, context: CallContext) => {
      const index = catalog.current().index
      const ref = params?.["ref"] as { type?: unknown; name?: unknown; uri?: unknown } | undefined
      let entry: IndexEntry | undefined
      let upstreamRef: Record<string, unknown>
      if (ref?.type === "ref/prompt") {
        entry = findAllowed(identity, index.promptsByName, ref.name)
        if (entry === undefined) throw invalidParams(`Prompt ${String(ref.name)} not found`)
        upstreamRef = { ...ref, name: entry.upstreamName }
      } else if (ref?.type === "ref/resource") {
        entry = findAllowed(identity, index.templatesByUri, ref.uri) ?? findAllowed(identity, index.resourcesByUri, ref.uri)
        if (entry === undefined) throw invalidParams(`Resource template ${String(ref.uri)} not found`)
        upstreamRef = { ...ref, uri: entry.upstreamName }
      } else {
        throw invalidParams("ref must be a ref/prompt or ref/resource")
      }
      const upstream = live(entry)
      if (!upstream.client.getServerCapabilities()?.completions) return { completion: { values: [], hasMore: false } }
      return forward(upstream, "completion/complete", upstreamParams(params, { ref: upstreamRef }), context)
    }

    /** `logging/setLevel` goes to every connected upstream the caller can reach that supports logging. */
    const setLogLevel = async (identity: Identity, params: Params, context: CallContext) => {
      const policy = policyOf(identity)
      const targets = upstreams.all().filter((u) =>
        u.client.getServerCapabilities()?.logging !== undefined && policy.touches(u.connector.id, u.connector.labels)
      )
      await Promise.all(targets.map((u) => forward(u, "logging/setLevel", upstreamParams(params, {}), context).catch(() => {})))
      return {}
    }

    return {
      listTools: list("tools", "tools"),
      listPrompts: list("prompts", "prompts"),
      listResources: list("resources", "resources"),
      listResourceTemplates: list("templates", "resourceTemplates"),
      callTool,
      getPrompt,
      readResource,
      complete,
      setLogLevel,
      policyOf
    } as const
  })
}) {}
