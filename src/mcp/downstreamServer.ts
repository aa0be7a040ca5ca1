/**
 * The SDK `Server` a caller talks to: one per 2025-era session, one per 2026-era request. Its
 * handlers hand each method to {@link McpRouter} with the caller's identity bound; the SDK does
 * the protocol (handshake, ids, progress, cancellation) for both eras.
 * @module
 */
import { Server, type ServerCapabilities } from "@modelcontextprotocol/server"
import { Cause, Effect, Exit, Runtime } from "effect"
import type { Identity } from "../identity/IdentityPlugin.js"
import { version } from "../version.js"
import { type CallContext, McpFailure, McpRouter } from "./McpRouter.js"

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

/** Runs router effects from SDK callbacks: one runtime, captured once; failures become JSON-RPC errors. */
export type EffectRunner = <A>(effect: Effect.Effect<A, McpFailure>, signal: AbortSignal) => Promise<A>

export const makeRunner = (runtime: Runtime.Runtime<never>): EffectRunner => {
  const runExit = Runtime.runPromiseExit(runtime)
  return async (effect, signal) => {
    const exit = await runExit(effect, { signal })
    if (Exit.isSuccess(exit)) return exit.value
    const failure = Cause.failureOption(exit.cause)
    if (failure._tag === "Some" && failure.value instanceof McpFailure) throw failure.value.error
    if (Cause.isInterruptedOnly(exit.cause)) throw new Error("Request cancelled")
    throw new Error(`internal error: ${Cause.pretty(exit.cause).split("\n")[0]}`)
  }
}

type Ctx = {
  mcpReq: {
    signal: AbortSignal
    _meta?: { progressToken?: string | number; [k: string]: unknown } | undefined
    notify: (n: { method: string; params?: Record<string, unknown> }) => Promise<void>
  }
}

const callContext = (ctx: Ctx): CallContext => ({
  progressToken: ctx.mcpReq._meta?.progressToken,
  notify: (n) => ctx.mcpReq.notify(n as never)
})

/** A low-level server whose every handler forwards for `identity`. */
export const makeDownstreamServer = (router: McpRouter, identity: Identity, run: EffectRunner): Server => {
  const server = new Server({ name: "aperture", version }, {
    capabilities: GATEWAY_CAPABILITIES,
    instructions: GATEWAY_INSTRUCTIONS
  })
  type Handler = (request: { params?: Record<string, unknown> | undefined }, ctx: Ctx) => Promise<never>
  const on = (method: string, handler: Handler) =>
    server.setRequestHandler(method as "tools/list", handler as never)

  on("tools/list", (req, ctx) => run(router.listTools(identity, req.params), ctx.mcpReq.signal) as never)
  on("prompts/list", (req, ctx) => run(router.listPrompts(identity, req.params), ctx.mcpReq.signal) as never)
  on("resources/list", (req, ctx) => run(router.listResources(identity, req.params), ctx.mcpReq.signal) as never)
  on("resources/templates/list", (req, ctx) =>
    run(router.listResourceTemplates(identity, req.params), ctx.mcpReq.signal) as never)
  on("tools/call", (req, ctx) => run(router.callTool(identity, req.params, callContext(ctx)), ctx.mcpReq.signal) as never)
  on("prompts/get", (req, ctx) => run(router.getPrompt(identity, req.params, callContext(ctx)), ctx.mcpReq.signal) as never)
  on("resources/read", (req, ctx) =>
    run(router.readResource(identity, req.params, callContext(ctx)), ctx.mcpReq.signal) as never)
  on("completion/complete", (req, ctx) =>
    run(router.complete(identity, req.params, callContext(ctx)), ctx.mcpReq.signal) as never)
  on("logging/setLevel", (req, ctx) => run(router.setLogLevel(identity, req.params), ctx.mcpReq.signal) as never)
  return server
}
