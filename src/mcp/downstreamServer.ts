/**
 * The SDK `Server` a caller talks to: one per 2025-era session, one per 2026-era request. Its
 * handlers hand each method to {@link McpRouter} with the caller's identity bound; the SDK does
 * the protocol (handshake, ids, progress, cancellation) for both eras.
 * @module
 */
import { Server, type ServerCapabilities } from "@modelcontextprotocol/server"
import type { Identity } from "../identity/IdentityPlugin.js"
import { version } from "../version.js"
import type { CallContext, McpRouter } from "./McpRouter.js"

export const GATEWAY_CAPABILITIES: ServerCapabilities = {
  tools: { listChanged: true },
  prompts: { listChanged: true },
  resources: { listChanged: true },
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
    readonly notify: (n: never) => Promise<void>
  }
}

const callContext = (ctx: Ctx): CallContext => ({
  signal: ctx.mcpReq.signal,
  progressToken: ctx.mcpReq._meta?.progressToken,
  notify: (n) => ctx.mcpReq.notify(n as never)
})

type Params = Record<string, unknown> | undefined

/** A low-level server whose every handler forwards for `identity`. */
export const makeDownstreamServer = (router: McpRouter, identity: Identity): Server => {
  const server = new Server({ name: "aperture", version }, {
    capabilities: GATEWAY_CAPABILITIES,
    instructions: GATEWAY_INSTRUCTIONS
  })
  // Upstream definitions and results pass through untyped; the SDK's handler types describe
  // what it builds itself, so register through one untyped seam.
  const on = (method: string, handler: (params: Params, ctx: Ctx) => unknown) =>
    server.setRequestHandler(
      method as "tools/list",
      (async (request: { params?: Params }, ctx: Ctx) => handler(request.params, ctx)) as never
    )

  on("tools/list", (params) => router.listTools(identity, params))
  on("prompts/list", (params) => router.listPrompts(identity, params))
  on("resources/list", (params) => router.listResources(identity, params))
  on("resources/templates/list", (params) => router.listResourceTemplates(identity, params))
  on("tools/call", (params, ctx) => router.callTool(identity, params, callContext(ctx)))
  on("prompts/get", (params, ctx) => router.getPrompt(identity, params, callContext(ctx)))
  on("resources/read", (params, ctx) => router.readResource(identity, params, callContext(ctx)))
  on("completion/complete", (params, ctx) => router.complete(identity, params, callContext(ctx)))
  on("logging/setLevel", (params, ctx) => router.setLogLevel(identity, params, callContext(ctx)))
  return server
}
