/**
 * The SDK `Server` a caller talks to: one per 2025-era session, one per 2026-era request. Its
 * handlers hand each method to {@link McpRouter} with the caller's identity bound; the SDK does
 * the protocol (handshake, ids, progress, cancellation, the input_required shim) for both eras.
 * @module
 */
import { LOG_LEVEL_META_KEY, type LoggingLevel, Server, type ServerCapabilities } from "@modelcontextprotocol/server"
import type { Identity } from "../plugin/IdentityPlugin.js"
import { passthrough } from "../upstream/passthrough.js"
import { version } from "../version.js"
import type { CallContext } from "../relay/forwardCall.js"
import { answerOf, type McpRouter } from "../router/McpRouter.js"
import type { SessionSink } from "../router/resourceSubscriptions.js"

export const GATEWAY_CAPABILITIES: ServerCapabilities = {
  tools: { listChanged: true },
  prompts: { listChanged: true },
  resources: { listChanged: true, subscribe: true },
  completions: {},
  logging: {}
}

export const GATEWAY_INSTRUCTIONS =
  "Aperture gateway: tools, prompts and resources of several upstream MCP servers. " +
  "Names are prefixed with the connector ID (<connector>_<tool>, <connector>-<uri>)."

interface Ctx {
  readonly mcpReq: {
    readonly signal: AbortSignal
    readonly _meta?: { readonly progressToken?: string | number; readonly [k: string]: unknown } | undefined
    readonly envelope?: Readonly<Record<string, unknown>> | undefined
    readonly notify: (n: never) => Promise<void>
    readonly send: (request: never, schema: never, options: { signal: AbortSignal }) => Promise<unknown>
    readonly inputResponses?: Record<string, unknown> | undefined
    readonly requestState: () => unknown
  }
  readonly http?: { readonly closeSSE?: (() => void) | undefined; readonly req?: Request | undefined } | undefined
}

type Params = Record<string, unknown> | undefined

export interface DownstreamServer {
  readonly server: Server
  /** The level this session asked for with logging/setLevel (2025 era). */
  readonly logLevel: () => LoggingLevel | undefined
  /** Sets it as another replica heard it (a cluster's session asked there). */
  readonly setLogLevel: (level: LoggingLevel) => void
  /** Subscribes this session to a resource (its `resources/subscribe`, made on another replica of a cluster). */
  readonly subscribe: (uri: string) => Promise<unknown>
  readonly unsubscribe: (uri: string) => Promise<unknown>
}

/** What a cluster's 2025-era session tells the other replicas (see `Sessions2025.ts`). */
export interface SessionHooks {
  readonly onLogLevel?: (level: LoggingLevel) => void
  /** After a `resources/subscribe` (or unsubscribe) this server answered. */
  readonly onSubscribed?: (uri: string) => void
  readonly onUnsubscribed?: (uri: string) => void
}

/**
 * A low-level server whose every handler forwards for `identity`. `era` is `legacy` for a
 * 2025-era session (which can take server→client requests), `modern` for a 2026 request.
 */
export const makeDownstreamServer = (
  router: McpRouter,
  identity: Identity,
  era: "legacy" | "modern",
  /** Hears a 2025-era session's log level and subscriptions, to tell the other replicas of a cluster. */
  hooks: SessionHooks = {}
): DownstreamServer => {
  const server = new Server({ name: "aperture", version }, {
    capabilities: GATEWAY_CAPABILITIES,
    instructions: GATEWAY_INSTRUCTIONS,
    // A caller's echoed requestState is ours (sealed per caller and connector); see McpRouter.
    requestState: { verify: router.verifyRoundState }
  })
  // The level this session asked for with logging/setLevel (2025 era).
  let sessionLogLevel: LoggingLevel | undefined
  const sink: SessionSink = { sendResourceUpdated: (uri) => server.sendResourceUpdated({ uri }) }

  const callContext = (ctx: Ctx): CallContext => ({
    signal: ctx.mcpReq.signal,
    progressToken: ctx.mcpReq._meta?.progressToken,
    notify: (n) => ctx.mcpReq.notify(n as never),
    inputResponses: ctx.mcpReq.inputResponses,
    requestState: ctx.mcpReq.requestState(),
    capabilities: server.getClientCapabilities(),
    era,
    logLevel: era === "legacy" ? sessionLogLevel : ctx.mcpReq.envelope?.[LOG_LEVEL_META_KEY] as LoggingLevel | undefined,
    request: era === "legacy"
      ? (request, signal) => ctx.mcpReq.send(request as never, passthrough as never, { signal })
      : undefined,
    closeStream: ctx.http?.closeSSE,
    // The caller's trace context, for telemetry (this path is not the direct one: a header read is cheap here).
    traceparent: ctx.http?.req?.headers.get("traceparent") ?? undefined,
    tracestate: ctx.http?.req?.headers.get("tracestate") ?? undefined
  })

  // Upstream definitions and results pass through untyped; the SDK's handler types describe
  // what it builds itself, so register through one untyped seam.
  const on = (method: string, handler: (params: Params, ctx: Ctx) => unknown) =>
    server.setRequestHandler(
      method as "tools/list",
      (async (request: { params?: Params }, ctx: Ctx) => handler(request.params, ctx)) as never
    )

  // A list's span (telemetry on) continues the caller's trace; a header lookup, nothing more, when off.
  const traceparentOf = (ctx: Ctx) => ctx.http?.req?.headers.get("traceparent") ?? undefined
  on("tools/list", (params, ctx) => router.listTools(identity, params, traceparentOf(ctx)))
  on("prompts/list", (params, ctx) => router.listPrompts(identity, params, traceparentOf(ctx)))
  on("resources/list", (params, ctx) => router.listResources(identity, params, traceparentOf(ctx)))
  on("resources/templates/list", (params, ctx) => router.listResourceTemplates(identity, params, traceparentOf(ctx)))
  on("tools/call", (params, ctx) => router.callTool(identity, params, callContext(ctx)).then(answerOf))
  on("prompts/get", (params, ctx) => router.getPrompt(identity, params, callContext(ctx)))
  on("resources/read", (params, ctx) => router.readResource(identity, params, callContext(ctx)))
  on("completion/complete", (params, ctx) => router.complete(identity, params, callContext(ctx)))
  on("resources/subscribe", async (params, ctx) => {
    const answer = await router.subscribe(identity, params, sink, callContext(ctx))
    if (typeof params?.["uri"] === "string") hooks.onSubscribed?.(params["uri"])
    return answer
  })
  on("resources/unsubscribe", async (params, ctx) => {
    const answer = await router.unsubscribe(identity, params, sink, callContext(ctx))
    if (typeof params?.["uri"] === "string") hooks.onUnsubscribed?.(params["uri"])
    return answer
  })
  on("logging/setLevel", (params, ctx) => {
    sessionLogLevel = params?.["level"] as LoggingLevel | undefined
    if (sessionLogLevel !== undefined) hooks.onLogLevel?.(sessionLogLevel)
    return router.setLogLevel(identity, params, callContext(ctx))
  })
  let detach: (() => void) | undefined
  if (era === "legacy") {
    // A 2025-era session can be asked things outside a call (roots, after it says they
    // changed): the caller's own upstream sessions reach it through here.
    server.oninitialized = () => {
      detach = router.attachCaller(identity, {
        capabilities: () => server.getClientCapabilities(),
        logLevel: () => sessionLogLevel,
        request: (request, signal) => server.request(request as never, passthrough as never, { signal }),
        log: (params) => server.sendLoggingMessage(params as never)
      })
    }
    server.setNotificationHandler("notifications/roots/list_changed", () => router.rootsChanged(identity))
  }
  server.onclose = () => {
    detach?.()
    router.dropSubscriptions(sink)
  }
  return {
    server,
    logLevel: () => sessionLogLevel,
    setLogLevel: (level) => {
      sessionLogLevel = level
    },
    subscribe: (uri) => router.subscribe(identity, { uri }, sink),
    unsubscribe: (uri) => router.unsubscribe(identity, { uri }, sink)
  }
}
