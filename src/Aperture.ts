/**
 * The whole gateway as one scoped Layer, and a promise face for non-Effect programs.
 * `npx aperture start` is a thin wrapper over {@link layer}.
 * @module
 */
import { createServer } from "node:http"
import { HttpLayerRouter, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Exit, Layer, Runtime, Scope } from "effect"
import { Catalog } from "./catalog/Catalog.js"
import { decodeConfig } from "./config/decode.js"
import type { UserConfig } from "./config/dsl.js"
import { GatewayConfig } from "./config/GatewayConfig.js"
import { type ApertureConfig, isApertureConfig } from "./config/model.js"
import { Routes } from "./http/routes.js"
import { Identities } from "./identity/Identities.js"
import { LegacySessions } from "./mcp/LegacySessions.js"
import { McpEndpoint } from "./mcp/McpEndpoint.js"
import { McpRouter } from "./mcp/McpRouter.js"
import { Upstreams } from "./upstream/Upstreams.js"

/** How long shutdown waits for calls in flight before closing sessions anyway. */
export const DRAIN_TIMEOUT_MS = 30_000

const resolveConfig = (config: UserConfig | ApertureConfig) =>
  isApertureConfig(config) ? Effect.succeed(config) : decodeConfig(config)

/** The gateway's services, without an HTTP server. */
const services = (config: ApertureConfig) => {
  const base = Layer.provideMerge(Catalog.Default, Layer.succeed(GatewayConfig, config))
  const upstreams = Layer.provideMerge(Layer.merge(Upstreams.Default, Identities.Default), base)
  const router = Layer.provideMerge(McpRouter.Default, upstreams)
  return Layer.provideMerge(McpEndpoint.Default, Layer.provideMerge(LegacySessions.Default, router))
}

/** Registered last, so on shutdown it runs first: drain calls while the server still answers. */
const Drain = Layer.scopedDiscard(
  Effect.flatMap(McpEndpoint, (endpoint) => Effect.addFinalizer(() => endpoint.drain(DRAIN_TIMEOUT_MS)))
)

const listenLog = Effect.gen(function*() {
  const server = yield* HttpServer.HttpServer
  const config = yield* GatewayConfig
  const address = server.address
  if (address._tag === "TcpAddress") {
    const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname
    yield* Effect.logInfo(
      `Aperture listening on http://${host}:${address.port}/v1/mcp (${config.connectors.length} connectors)`
    )
  }
})

/**
 * The gateway served on the `HttpServer` the host provides: use this to mount Aperture in an
 * Effect program that already runs a server.
 */
export const layerWithoutServer = (config: ApertureConfig) =>
  Drain.pipe(
    Layer.provide(HttpLayerRouter.serve(Routes, { disableLogger: true, disableListenLog: true })),
    Layer.provide(Layer.effectDiscard(listenLog)),
    Layer.provideMerge(services(config))
  )

/**
 * The whole gateway as a scoped Layer, listening on `config.server.host`/`port` (or the
 * `HttpServer` the host provides, with {@link layerWithoutServer}).
 */
export const layer = (config: UserConfig | ApertureConfig) =>
  Layer.unwrapEffect(
    Effect.map(resolveConfig(config), (resolved) =>
      layerWithoutServer(resolved).pipe(
        Layer.provideMerge(NodeHttpServer.layer(createServer, { host: resolved.server.host, port: resolved.server.port }))
      ))
  )

export interface RunningGateway {
  /** The `/v1/mcp` endpoint URL. */
  readonly url: string
  /** The server root, e.g. `http://127.0.0.1:8080`. */
  readonly origin: string
  /** Drains calls in flight, closes sessions and upstreams, then stops listening. */
  readonly close: () => Promise<void>
}

/** Starts the gateway for promise users. */
export const start = async (config: UserConfig | ApertureConfig): Promise<RunningGateway> => {
  const scope = Effect.runSync(Scope.make())
  try {
    const runtime = await Effect.runPromise(Layer.toRuntime(layer(config)).pipe(Scope.extend(scope)))
    const server = Runtime.runSync(runtime)(HttpServer.HttpServer)
    const address = server.address
    const origin = address._tag === "TcpAddress"
      ? `http://${address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname === "0.0.0.0" ? "127.0.0.1" : address.hostname}:${address.port}`
      : `http://unix:${address.path}`
    return {
      url: `${origin}/v1/mcp`,
      origin,
      close: () => Effect.runPromise(Scope.close(scope, Exit.void))
    }
  } catch (error) {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    throw error
  }
}

export const Aperture = { layer, layerWithoutServer, start } as const
