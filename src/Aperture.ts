/**
 * The whole gateway as one scoped Layer, and a promise face for non-Effect programs.
 * `npx aperture start` is a thin wrapper over {@link layer}.
 *
 * Where it serves is decided when the layer is built: on the host's `HttpLayerRouter` when the
 * host provides one (the host's own routes and Aperture's share one server), else on the host's
 * `HttpServer` when it provides one, else on a Node HTTP server of its own.
 * @module
 */
import { createServer } from "node:http"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import { AuditLog } from "./audit/AuditLog.js"
import { Catalog } from "./catalog/Catalog.js"
import { StatusHistory } from "./catalog/StatusHistory.js"
import { ClusterRedis, type ClusterUnavailable } from "./cluster/ClusterRedis.js"
import { sharedTokensLayer } from "./cluster/sharedTokens.js"
import { UserAuthLive } from "./auth/UserAuth.js"
import { replicaBusFromCluster } from "./cluster/replicaBus.js"
import { sessionRecordsFromCluster } from "./cluster/sessionRecords.js"
import { sessionSlotsFromCluster } from "./cluster/sessionSlots.js"
import { sharedEventLogFromCluster } from "./cluster/sharedEventLog.js"
import { SharedTokensStore } from "./plugin/sharedTokens.js"
import { builtInPlugins } from "../plugins/builtIns.js"
import * as ConfigDecode from "./config/decode.js"
import * as ConfigJson from "./config/json.js"
import * as ConfigLoad from "./config/load.js"
import type { UserConfig } from "./config/dsl.js"
import { makeConfigFile } from "./config/ConfigFile.js"
import { GatewayConfig } from "./config/GatewayConfig.js"
import { type AppliedConfig, LiveConfig, liveConfigLayer } from "./config/LiveConfig.js"
import { type ApertureConfig, isApertureConfig } from "./config/model.js"
import { GrantPolicy } from "./grants/GrantPolicy.js"
import { CALLBACK_PREFIX } from "./http/paths.js"
import { type ListenFailed, listenFailed } from "./edge/ListenFailed.js"
import { MCP_PATH } from "./http/paths.js"
import { NotFoundBody, Routes } from "./edge/routes.js"
import { withoutTracing } from "./http/tracing.js"
import { Identities } from "./identity/Identities.js"
import { Sessions2025 } from "./endpoint/era2025/Sessions2025.js"
import { McpEndpoint } from "./endpoint/McpEndpoint.js"
import { McpRouter } from "./router/McpRouter.js"
import { Metrics } from "./metrics/Metrics.js"
import { HttpProxy } from "./proxy/HttpProxy.js"
import { telemetryLayer } from "./telemetry/telemetryLayer.js"
import { Upstreams } from "./upstream/Upstreams.js"

/** How long shutdown waits for calls in flight before closing sessions anyway. */
export const DRAIN_TIMEOUT_MS = 30_000

// The built-in plugins are registered here, at the composition root: config decoding takes them
// as an argument (src/config/ imports nothing from plugins/), and these are the bound forms the
// package exports and the CLI uses.

/** Decodes a user config (the TS DSL shape) or fails with every issue. */
export const decodeConfig = (
  input: unknown,
  options: { readonly source?: string | undefined } = {}
): Effect.Effect<ApertureConfig, ConfigDecode.ConfigInvalid> =>
  ConfigDecode.decodeConfig(input, { source: options.source, plugins: builtInPlugins })

/** Converts the original Aperture's JSON shape and decodes it. */
export const decodeApertureJson = (value: unknown, source: string | undefined) =>
  ConfigJson.decodeApertureJson(value, source, builtInPlugins)

/** Loads and decodes a config file (`aperture.config.ts`, or `.json`/`.jsonc` in the Aperture JSON shape). */
export const loadConfigFile = (file: string) => ConfigLoad.loadConfigFile(file, builtInPlugins)

/** The config file `aperture start` watches and `/api/config` edits (see config/ConfigFile.ts). */
export const configFileOf = (options: Omit<Parameters<typeof makeConfigFile>[0], "plugins">) =>
  makeConfigFile({ ...options, plugins: builtInPlugins })

/** Finds, loads and decodes the config. */
export const loadConfig = (options: { readonly cwd: string; readonly file?: string | undefined }) =>
  ConfigLoad.loadConfig({ ...options, plugins: builtInPlugins })

const resolveConfig = (config: UserConfig | ApertureConfig) =>
  isApertureConfig(config) ? Effect.succeed(config) : decodeConfig(config)

/**
 * Where credentials share tokens: through Redis in a cluster (encrypted under `secretKey`, which
 * decoding requires with `cluster`), nowhere in one process.
 */
const SharedTokensFromCluster = Layer.unwrapEffect(Effect.gen(function*() {
  const { redis } = yield* ClusterRedis
  const config = yield* GatewayConfig
  return Option.isSome(redis) && config.secretKey !== undefined
    ? sharedTokensLayer(redis.value.client, redis.value.settings.keyPrefix, config.secretKey)
    : SharedTokensStore.none
}))

/** The gateway's services, without an HTTP server. */
const services = (config: ApertureConfig) => {
  const base = Layer.provideMerge(
    // ClusterRedis is `None` without `cluster`; with it, start fails here when Redis is unreachable.
    Layer.mergeAll(Catalog.Default, GrantPolicy.Default, ClusterRedis.Default),
    Layer.merge(Layer.provideMerge(liveConfigLayer, Layer.succeed(GatewayConfig, config)), Metrics.Default)
  )
  const upstreams = Layer.provideMerge(
    Layer.mergeAll(Upstreams.Default, Identities.Default, AuditLog.Default, StatusHistory.Default),
    // Per-user OAuth connectors' tokens (nothing is opened without such a connector).
    Layer.provideMerge(Layer.merge(SharedTokensFromCluster, UserAuthLive), base)
  )
  const router = Layer.provideMerge(McpRouter.Default, upstreams)
  const endpoints = Layer.merge(McpEndpoint.Default, HttpProxy.Default)
  // Per-caller session caps count in Redis with cluster (across replicas), in this process otherwise.
  // With cluster, 2025-era sessions (records, call streams, messages between replicas) are shared too.
  const sharedSessionState = Layer.mergeAll(
    sessionSlotsFromCluster,
    sessionRecordsFromCluster,
    Layer.provideMerge(sharedEventLogFromCluster, replicaBusFromCluster)
  )
  const sessions = Sessions2025.Default.pipe(Layer.provide(sharedSessionState))
  // OpenTelemetry export first, so its tracer is the one every service and the server's fibers
  // see; without `telemetry` it adds nothing (see telemetry/telemetryLayer.ts).
  return Layer.provideMerge(endpoints, Layer.provideMerge(sessions, router)).pipe(Layer.provide(telemetryLayer(config.telemetry)))
}

/** The services the gateway's layers provide (the catalog, metrics, the endpoints, …). */
export type ApertureServices = Layer.Layer.Success<ReturnType<typeof services>>

/** Registered last, so on shutdown it runs first: drain calls while the server still answers. */
const Drain = Layer.scopedDiscard(
  Effect.gen(function*() {
    const endpoint = yield* McpEndpoint
    const proxy = yield* HttpProxy
    yield* Effect.addFinalizer(() =>
      Effect.all([endpoint.drain(DRAIN_TIMEOUT_MS), proxy.drain(DRAIN_TIMEOUT_MS)], { concurrency: "unbounded", discard: true })
    )
  })
)

const listenLog = Effect.gen(function*() {
  const server = yield* HttpServer.HttpServer
  const config = yield* GatewayConfig
  const address = server.address
  if (address._tag === "TcpAddress") {
    const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname
    yield* Effect.logInfo(
      `Aperture listening on http://${host}:${address.port}${MCP_PATH} (${config.connectors.length} ${config.connectors.length === 1 ? "connector" : "connectors"})`
    )
  }
})

/**
 * The gateway served on the `HttpServer` the host provides: use this to mount Aperture in an
 * Effect program that already runs a server.
 */
export const layerWithoutServer = (config: ApertureConfig) =>
  Drain.pipe(
    Layer.provide(
      HttpLayerRouter.serve(Layer.merge(Routes, NotFoundBody), { disableLogger: true, disableListenLog: true }).pipe(
        // An OAuth callback's query holds the authorization code: it gets no span (whose
        // url.full and url.query would carry it to wherever traces go).
        Layer.locallyWith(HttpMiddleware.currentTracerDisabledWhen, (disabled) => (request) =>
          request.url.startsWith(CALLBACK_PREFIX) || disabled(request))
      )
    ),
    Layer.provide(Layer.effectDiscard(listenLog)),
    Layer.provideMerge(services(config))
  )

/**
 * The gateway's routes added to the host's `HttpLayerRouter`: the host serves them next to its
 * own (`HttpLayerRouter.serve(Layer.mergeAll(HostRoutes, Aperture.layer(config)))`).
 */
export const layerOnRouter = (config: ApertureConfig): Layer.Layer<ApertureServices, ClusterUnavailable, HttpLayerRouter.HttpRouter> =>
  // The routes take the services they use when they are built (see edge/routes.ts), so their
  // only need left is the host's router.
  Drain.pipe(
    Layer.provide(Routes),
    Layer.provideMerge(services(config))
  )

/**
 * How long a client may take to send one whole request. Node's default, 5 minutes, cut proxied
 * uploads of large files; an hour lets them through while a client trickling a body still cannot
 * hold a socket for ever. Stalled bodies end sooner: a proxied one at the connector's idle
 * timeout, a `/v1/mcp` one at McpEndpoint's BODY_TIMEOUT; headers still within Node's 60 s.
 */
const REQUEST_TIMEOUT_MS = 60 * 60_000

/**
 * The gateway on a Node HTTP server of its own, at `config.server.host`/`port`, providing that
 * `HttpServer`: its `address` is where it listens (the port chosen for `port: 0`).
 *
 * On shutdown the gateway drains first (calls finish, sessions close), then every connection
 * still open is closed before the server stops listening. Without that, `server.close()` waits
 * for ever on keep-alive sockets a client reuses after the drain (a 2025-era client reopens its
 * GET stream the moment its session ends), and a request arriving after the routes are gone is
 * never answered.
 */
export const layerOwnServer = (
  config: UserConfig | ApertureConfig
): Layer.Layer<ApertureServices | HttpServer.HttpServer, ConfigDecode.ConfigInvalid | ListenFailed | ClusterUnavailable> =>
  Layer.unwrapEffect(Effect.map(resolveConfig(config), ownServer))

const ownServer = (config: ApertureConfig) =>
  Layer.unwrapEffect(Effect.sync(() => {
    const server = createServer({ requestTimeout: REQUEST_TIMEOUT_MS })
    const { host, port } = config.server
    const listening = NodeHttpServer.layer(() => server, { host, port }).pipe(
      Layer.mapError((error) => listenFailed(error, host, port))
    )
    // Built after the server and before the gateway, so released after the drain and before `close`.
    const closeConnections = Layer.scopedDiscard(Effect.addFinalizer(() => Effect.sync(() => server.closeAllConnections())))
    return layerWithoutServer(config).pipe(Layer.provideMerge(Layer.provideMerge(closeConnections, listening)))
  }))

/**
 * The whole gateway as a scoped Layer. Served on the host's `HttpLayerRouter` or `HttpServer`
 * when the host provides one, else on its own server at `config.server.host`/`port`.
 *
 * It provides the gateway's services and not an `HttpServer`: where it serves is decided when it
 * is built, and on a router alone (e.g. behind `HttpLayerRouter.toWebHandler`) there is no server
 * to provide. A host that provides a server already holds it; a program that wants the address
 * of the gateway's own server (e.g. the port chosen for `port: 0`) builds {@link layerOwnServer}.
 */
export const layer = (
  config: UserConfig | ApertureConfig
): Layer.Layer<ApertureServices, ConfigDecode.ConfigInvalid | ListenFailed | ClusterUnavailable> =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const resolved = yield* resolveConfig(config)
    const hostRouter = yield* Effect.serviceOption(HttpLayerRouter.HttpRouter)
    if (Option.isSome(hostRouter)) {
      return layerOnRouter(resolved).pipe(Layer.provide(Layer.succeed(HttpLayerRouter.HttpRouter, hostRouter.value)))
    }
    const hostServer = yield* Effect.serviceOption(HttpServer.HttpServer)
    if (Option.isSome(hostServer)) {
      return layerWithoutServer(resolved).pipe(Layer.provide(Layer.succeed(HttpServer.HttpServer, hostServer.value)))
    }
    return ownServer(resolved)
  }))

export interface RunningGateway {
  /** The `/v1/mcp` endpoint URL. */
  readonly url: string
  /** The server root, e.g. `http://127.0.0.1:8080`. */
  readonly origin: string
  /** Drains calls in flight, closes sessions and upstreams, then stops listening. */
  readonly close: () => Promise<void>
  /**
   * Applies a new config without a restart, as `aperture start` does when its file changes:
   * connectors added, removed or changed are started, stopped or restarted (the others and every
   * session stay), grants and identity plugins apply to the next request, and settings that need
   * a restart (`server.*`, `cluster`, `secretKey`, `audit`) are logged and kept. Rejects with
   * `ConfigInvalid` (nothing applied) when `config` does not decode.
   */
  readonly reload: (config: UserConfig | ApertureConfig) => Promise<AppliedConfig>
}

/** Runs `effect`, rejecting with its own error (`ConfigInvalid`, `ListenFailed`, `ClusterUnavailable`) rather than a FiberFailure. */
const runOrThrow = async <A, E>(effect: Effect.Effect<A, E>): Promise<A> => {
  const exit = await Effect.runPromiseExit(effect)
  if (Exit.isSuccess(exit)) return exit.value
  throw Cause.squash(exit.cause)
}

/**
 * Starts the gateway for promise users. Rejects with the tagged error that says why:
 * `ConfigInvalid`, `ListenFailed` (e.g. `reason: "in_use"` when the port is taken), or
 * `ClusterUnavailable` (Redis unreachable at start).
 */
export const start = async (config: UserConfig | ApertureConfig): Promise<RunningGateway> => {
  const scope = Effect.runSync(Scope.make())
  try {
    const resolved = await runOrThrow(resolveConfig(config))
    // Tracing off, as in `aperture start`: no tracer is installed, so spans would only cost CPU.
    const runtime = await runOrThrow(
      Layer.toRuntime(ownServer(resolved)).pipe(Scope.extend(scope), withoutTracing)
    )
    const server = Runtime.runSync(runtime)(HttpServer.HttpServer)
    const address = server.address
    const origin = address._tag === "TcpAddress"
      ? `http://${address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname === "0.0.0.0" ? "127.0.0.1" : address.hostname}:${address.port}`
      : `http://unix:${address.path}`
    return {
      url: `${origin}${MCP_PATH}`,
      origin,
      close: () => Effect.runPromise(Scope.close(scope, Exit.void)),
      reload: (next) => runOrThrow(Effect.flatMap(resolveConfig(next), (decoded) => reload(decoded)).pipe(Effect.provide(runtime)))
    }
  } catch (error) {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    throw error
  }
}

/**
 * Applies a decoded config to the running gateway (see {@link RunningGateway.reload}): the one way
 * a config changes, used by the file watcher, SIGHUP and `PUT /api/config` too.
 */
export const reload = (config: ApertureConfig, options?: { readonly hash?: string | undefined }) =>
  Effect.flatMap(LiveConfig, (live) => live.apply(config, options))

export const Aperture = { layer, layerOwnServer, layerWithoutServer, layerOnRouter, start, reload } as const
