/**
 * What `/v1/mcp` does with each method, independent of protocol era and session: lists come
 * from the catalog filtered by the caller's grants; calls, reads and gets are grant-checked,
 * renamed back to the upstream's name and forwarded to the owning upstream. A denied item
 * answers exactly as an unknown one.
 * @module
 */
import { ProtocolError, ProtocolErrorCode, ResourceNotFoundError, SERVER_INFO_META_KEY, UriTemplate } from "@modelcontextprotocol/server"
import { Data, Duration, Effect } from "effect"
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

/** A JSON-RPC error to answer the caller with (already in the SDK's error type). */
export class McpFailure extends Data.TaggedError("McpFailure")<{ readonly error: Error }> {}

type Params = Record<string, unknown> | undefined

/** Per-call context from the downstream request. */
export interface CallContext {
  readonly progressToken: string | number | undefined
  readonly notify: (notification: { method: string; params?: Record<string, unknown> }) => Promise<void>
}

const invalidParams = (message: string) =>
  new McpFailure({ error: new ProtocolError(ProtocolErrorCode.InvalidParams, message) })

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

/** Hard cap on one call however much progress it reports, as a multiple of the connector timeout. */
const HARD_CAP_FACTOR = 10

export class McpRouter extends Effect.Service<McpRouter>()("aperture/McpRouter", {
  effect: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const catalog = yield* Catalog
    const upstreams = yield* Upstreams
    const policies = new PolicyCache(config.grants)

    const policyOf = (identity: Identity): CallerPolicy => policies.get(identity)

    const live = (entry: IndexEntry): Effect.Effect<LiveUpstream, McpFailure> => {
      const upstream = upstreams.get(entry.connector.id)
      return upstream === undefined
        ? Effect.fail(
          new McpFailure({
            error: new ProtocolError(ProtocolErrorCode.InternalError, `connector ${entry.connector.id} is not connected`)
          })
        )
        : Effect.succeed(upstream)
    }

    /** Sends one request to an upstream; the upstream's JSON-RPC errors pass through as they are. */
    const forward = (upstream: LiveUpstream, method: string, params: Record<string, unknown>, context?: CallContext) =>
      Effect.tryPromise({
        try: (signal) => {
          const timeout = Duration.toMillis(upstream.connector.timeout)
          const progressToken = context?.progressToken
          return upstream.client.request({ method, params }, passthrough, {
            signal,
            timeout,
            resetTimeoutOnProgress: true,
            maxTotalTimeout: timeout * HARD_CAP_FACTOR,
            ...(progressToken !== undefined && context !== undefined && {
              onprogress: (progress) => {
                context.notify({ method: "notifications/progress", params: { ...progress, progressToken } }).catch(() => {})
              }
            })
          }).then(withoutUpstreamServerInfo)
        },
        catch: (error) => {
          // A JSON-RPC error answered by the upstream passes through as it is (ProtocolError is
          // brand-checked, so the client package's errors match the server package's class).
          if (error instanceof ProtocolError) {
            return new McpFailure({ error: new ProtocolError(error.code, error.message, error.data) })
          }
          // Anything else is the connection: let the connector check it now.
          upstream.suspect()
          return new McpFailure({
            error: new ProtocolError(
              ProtocolErrorCode.InternalError,
              `connector ${upstream.connector.id}: ${describeError(error)}`
            )
          })
        }
      })

    /** The params to send upstream: the caller's, with the upstream name and without our progress token. */
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

    const listOf = (key: "tools" | "prompts" | "resources" | "templates", resultKey: string) =>
      Effect.fn(`McpRouter.list.${key}`)(function*(identity: Identity, params: Params) {
        const snapshot = yield* catalog.get
        const view = callerView(snapshot, policyOf(identity))
        const cursor = params?.["cursor"]
        const result = page(view[key], typeof cursor === "string" ? cursor : undefined)
        if (result === undefined) return yield* invalidParams("Invalid cursor")
        return {
          [resultKey]: result.items,
          ...(result.nextCursor !== undefined && { nextCursor: result.nextCursor })
        } as Record<string, unknown>
      })

    const findAllowed = (
      snapshot: CatalogSnapshot,
      identity: Identity,
      byName: ReadonlyMap<string, IndexEntry>,
      name: unknown
    ): IndexEntry | undefined => {
      if (typeof name !== "string") return undefined
      const entry = byName.get(name)
      return entry !== undefined && allowed(policyOf(identity), entry) ? entry : undefined
    }

    const callTool = Effect.fn("McpRouter.callTool")(function*(identity: Identity, params: Params, context: CallContext) {
      const snapshot = yield* catalog.get
      const name = params?.["name"]
      const entry = findAllowed(snapshot, identity, snapshot.index.toolsByName, name)
      if (entry === undefined) return yield* invalidParams(`Tool ${String(name)} not found`)
      yield* Effect.annotateCurrentSpan({ "aperture.connector": entry.connector.id, "mcp.tool": entry.upstreamName })
      const upstream = yield* live(entry)
      return yield* forward(upstream, "tools/call", upstreamParams(params, { name: entry.upstreamName }), context)
    })

    const getPrompt = Effect.fn("McpRouter.getPrompt")(function*(identity: Identity, params: Params, context: CallContext) {
      const snapshot = yield* catalog.get
      const name = params?.["name"]
      const entry = findAllowed(snapshot, identity, snapshot.index.promptsByName, name)
      if (entry === undefined) return yield* invalidParams(`Prompt ${String(name)} not found`)
      const upstream = yield* live(entry)
      return yield* forward(upstream, "prompts/get", upstreamParams(params, { name: entry.upstreamName }), context)
    })

    /**
     * The connector and upstream URI for a resource URI: a listed resource, or one a listed
     * template produces. The template must be visible to the caller too.
     */
    const resolveResource = (snapshot: CatalogSnapshot, identity: Identity, uri: string) => {
      const listed = findAllowed(snapshot, identity, snapshot.index.resourcesByUri, uri)
      if (listed !== undefined) return { connectorEntry: listed, upstreamUri: listed.upstreamName }
      const policy = policyOf(identity)
      const prefixed = splitPrefixedUri(uri)
      for (const template of snapshot.index.templates) {
        const connector = template.connector
        const upstreamUri = connector.prefix
          ? prefixed?.connectorId === connector.id ? prefixed.uri : undefined
          : uri
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
        if (ok) return { connectorEntry: template, upstreamUri }
      }
      return undefined
    }

    const readResource = Effect.fn("McpRouter.readResource")(function*(identity: Identity, params: Params, context: CallContext) {
      const snapshot = yield* catalog.get
      const uri = params?.["uri"]
      if (typeof uri !== "string") return yield* invalidParams("uri is required")
      const resolved = resolveResource(snapshot, identity, uri)
      if (resolved === undefined) return yield* new McpFailure({ error: new ResourceNotFoundError(uri) })
      const upstream = yield* live(resolved.connectorEntry)
      return yield* forward(upstream, "resources/read", upstreamParams(params, { uri: resolved.upstreamUri }), context)
    })

    const complete = Effect.fn("McpRouter.complete")(function*(identity: Identity, params: Params, context: CallContext) {
      const snapshot = yield* catalog.get
      const ref = params?.["ref"] as { type?: unknown; name?: unknown; uri?: unknown } | undefined
      let entry: IndexEntry | undefined
      let upstreamRef: Record<string, unknown> | undefined
      if (ref?.type === "ref/prompt") {
        entry = findAllowed(snapshot, identity, snapshot.index.promptsByName, ref.name)
        if (entry === undefined) return yield* invalidParams(`Prompt ${String(ref.name)} not found`)
        upstreamRef = { ...ref, name: entry.upstreamName }
      } else if (ref?.type === "ref/resource") {
        entry = findAllowed(snapshot, identity, snapshot.index.templatesByUri, ref.uri) ??
          findAllowed(snapshot, identity, snapshot.index.resourcesByUri, ref.uri)
        if (entry === undefined) return yield* invalidParams(`Resource template ${String(ref.uri)} not found`)
        upstreamRef = { ...ref, uri: entry.upstreamName }
      } else {
        return yield* invalidParams("ref must be a ref/prompt or ref/resource")
      }
      const upstream = yield* live(entry)
      if (!upstream.client.getServerCapabilities()?.completions) return { completion: { values: [], hasMore: false } }
      return yield* forward(upstream, "completion/complete", upstreamParams(params, { ref: upstreamRef }), context)
    })

    /** `logging/setLevel` goes to every connected upstream the caller can reach that supports logging. */
    const setLogLevel = Effect.fn("McpRouter.setLogLevel")(function*(identity: Identity, params: Params) {
      const policy = policyOf(identity)
      const targets = upstreams.all().filter((u) =>
        u.client.getServerCapabilities()?.logging !== undefined && policy.touches(u.connector.id, u.connector.labels)
      )
      yield* Effect.forEach(
        targets,
        (u) => forward(u, "logging/setLevel", upstreamParams(params, {})).pipe(Effect.ignore),
        { concurrency: "unbounded", discard: true }
      )
      return {}
    })

    return {
      listTools: listOf("tools", "tools"),
      listPrompts: listOf("prompts", "prompts"),
      listResources: listOf("resources", "resources"),
      listResourceTemplates: listOf("templates", "resourceTemplates"),
      callTool,
      getPrompt,
      readResource,
      complete,
      setLogLevel,
      policyOf
    } as const
  })
}) {}
