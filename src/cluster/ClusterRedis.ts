/**
 * The gateway's one Redis connection when `cluster: redis({ url })` is set; `None` without it
 * (one process, state in memory: nothing here runs per request).
 *
 * At start the connection must come up within {@link CONNECT_TIMEOUT_MS}, or the layer fails with
 * {@link ClusterUnavailable} (`aperture start` exits 1 with its message). Once started, the client
 * reconnects by itself with capped backoff, and {@link ClusterRedis.health} says whether Redis is
 * up, or since when and why it is down, for `/healthz` and `/api/connectors`.
 * @module
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import type { createClient } from "redis"
import { GatewayConfig } from "../config/GatewayConfig.js"
import type { ClusterSettings } from "../config/model.js"

/** How long start-up waits for Redis before giving up. */
export const CONNECT_TIMEOUT_MS = 3_000
/** Reconnect backoff after start: 100 ms doubling up to this, so a returning Redis is seen within seconds. */
const MAX_RECONNECT_DELAY_MS = 2_000
/** How long a clean `QUIT` may take on shutdown before the socket is destroyed. */
const QUIT_TIMEOUT = Duration.seconds(1)

/** Redis could not be reached (or refused the connection) when the gateway started. */
export class ClusterUnavailable extends Data.TaggedError("ClusterUnavailable")<{
  /** `host:port` of the configured Redis (never the password). */
  readonly address: string
  readonly reason: string
}> {
  override get message(): string {
    return `cannot reach Redis at ${this.address} (cluster.url): ${this.reason}`
  }
}

export type ClusterHealth =
  | { readonly redis: "up" }
  | { readonly redis: "down"; readonly since: string; readonly reason: string }

export type RedisClient = ReturnType<typeof createClient>

export interface ConnectedRedis {
  readonly client: RedisClient
  readonly settings: ClusterSettings
  /** `host:port`, for messages. */
  readonly address: string
  /** Up, or down since when and why; kept from the client's events. */
  readonly health: () => ClusterHealth
  /** How many times the client has become ready: changes on every reconnection. */
  readonly connections: () => number
}

/** What a Node or Redis error says, without anything from the URL beyond host and port. */
const reasonOf = (error: unknown): string => {
  if (error instanceof AggregateError && error.errors.length > 0) return reasonOf(error.errors[0])
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    return error.message !== "" ? error.message : typeof code === "string" ? code : error.name
  }
  return String(error)
}

const addressOf = (settings: ClusterSettings) =>
  `${settings.host.includes(":") && !settings.host.startsWith("[") ? `[${settings.host}]` : settings.host}:${settings.port}`

const connect = (settings: ClusterSettings) =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const log = Runtime.runFork(runtime)
    const address = addressOf(settings)
    // Loaded only with `cluster`: importing node-redis is a noticeable part of start-up, which a
    // single process (no cluster) should not pay.
    const { createClient } = yield* Effect.promise(() => import("./redisModule.js"))
    // Until start-up has connected once, a failed attempt ends the attempt (start fails with it);
    // from then on the client retries for ever.
    let started = false
    let health: ClusterHealth = { redis: "up" }
    const client: RedisClient = createClient({
      url: Redacted.value(settings.url),
      // While Redis is away a command fails at once rather than waiting in a queue: callers
      // answer 503 instead of hanging.
      disableOfflineQueue: true,
      socket: {
        connectTimeout: CONNECT_TIMEOUT_MS,
        reconnectStrategy: (retries: number) =>
          started ? Math.min(100 * 2 ** retries, MAX_RECONNECT_DELAY_MS) + Math.floor(Math.random() * 100) : false
      }
    })
    // node-redis emits "error" on every failed attempt; without a listener Node would throw it.
    client.on("error", (error: unknown) => {
      if (!started) return
      const reason = reasonOf(error)
      if (health.redis === "up") {
        health = { redis: "down", since: new Date().toISOString(), reason }
        log(Effect.logWarning(`Redis at ${address} unreachable: ${reason}; reconnecting (2025-era sessions and shared tokens unavailable meanwhile)`))
      } else {
        health = { ...health, reason }
      }
    })
    let connections = 0
    client.on("ready", () => {
      connections++
      if (started && health.redis === "down") log(Effect.logInfo(`Redis at ${address} is back`))
      health = { redis: "up" }
    })
    yield* Effect.tryPromise({
      try: () => client.connect(),
      catch: (error) => new ClusterUnavailable({ address, reason: reasonOf(error) })
    }).pipe(
      // The connect timeout bounds the TCP connect; this bounds the handshake (AUTH, HELLO) too.
      Effect.timeoutFail({
        duration: Duration.millis(CONNECT_TIMEOUT_MS + 1_000),
        onTimeout: () => new ClusterUnavailable({ address, reason: `no answer within ${(CONNECT_TIMEOUT_MS + 1_000) / 1000} s` })
      }),
      Effect.tapError(() => Effect.sync(() => client.destroy()))
    )
    started = true
    return { client, settings, address, health: () => health, connections: () => connections } satisfies ConnectedRedis
  })

const disconnect = ({ client }: ConnectedRedis) =>
  client.isReady
    ? Effect.tryPromise(() => client.quit()).pipe(
      Effect.timeout(QUIT_TIMEOUT),
      Effect.ignore,
      Effect.andThen(Effect.sync(() => client.destroy()))
    )
    : Effect.sync(() => client.destroy())

export class ClusterRedis extends Effect.Service<ClusterRedis>()("aperture/ClusterRedis", {
  scoped: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const settings = config.cluster
    const connected: Option.Option<ConnectedRedis> = settings === undefined
      ? Option.none()
      : Option.some(yield* Effect.acquireRelease(connect(settings), disconnect))
    return {
      /** The connected client; `None` without `cluster` (one process, in-memory state). */
      redis: connected,
      /** `None` without `cluster`. */
      health: (): Option.Option<ClusterHealth> => Option.map(connected, (c) => c.health())
    }
  })
}) {}
