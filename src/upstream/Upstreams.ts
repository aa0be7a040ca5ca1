/**
 * One supervised fiber per MCP connector (a `FiberMap` keyed by connector ID): connect, read the
 * lists, follow `list_changed`, watch the connection, and on any failure report why and
 * reconnect with jittered exponential backoff (capped at 30 s). A connector that is down never
 * blocks start-up or the other connectors.
 * @module
 */
import type { Client, ProtocolEra } from "@modelcontextprotocol/client"
import type { Identity } from "../plugin/IdentityPlugin.js"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberMap from "effect/FiberMap"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { AuthError, type Credential, makeCredential } from "../plugin/AuthPlugin.js"
import { UserAuth } from "../auth/UserAuth.js"
import { SharedTokensStore, withSharedTokens } from "../plugin/sharedTokens.js"
import { Catalog } from "../catalog/Catalog.js"
import { emptyLists, type UpstreamLists } from "../catalog/index.js"
import { GatewayConfig } from "../config/GatewayConfig.js"
import { liveConfigOrStatic } from "../config/LiveConfig.js"
import { type McpSpeakingConnector, speaksMcp } from "../config/model.js"

import { countRefreshes } from "../metrics/credentialRefreshes.js"
import { Metrics } from "../metrics/Metrics.js"
import { CallRegistry } from "./callChannel.js"
import { CallerSessions, type ChannelOf } from "./callerSessions.js"
import {
  classify,
  type Connection,
  connect,
  type ConnectionMemory,
  readinessWithin,
  readLists,
  type UpstreamEvents
} from "./connection.js"
import type { ListKind } from "./listChanges.js"
import { connectorTimeout, type LiveUpstream } from "./liveUpstream.js"
import type { SentCredentials } from "../auth/scrubSecrets.js"
import { FifoPermits } from "./fifoPermits.js"
import { sharedUpstreamSessionsFromCluster } from "../cluster/sharedUpstreamSessions.js"
import { replicaBusFromCluster } from "../cluster/replicaBus.js"

export type { LiveUpstream }
import { describeError, isCredentialProblem, UpstreamError } from "../catalog/UpstreamError.js"

/** Whether each user authorizes the connector themselves (`userOAuth`). */
const isPerUser = (connector: McpSpeakingConnector) => connector.kind === "mcp" && connector.userAuth !== undefined

/** How often a per-user connector nobody has connected asks again whether someone has. */
const USER_WAIT_RECHECK = Duration.seconds(5)

/** Whether two reads of a list hold the same items (as the upstream sent them). */
const sameItems = (a: ReadonlyArray<unknown>, b: ReadonlyArray<unknown>) =>
  a.length === b.length && JSON.stringify(a) === JSON.stringify(b)


/**
 * Connections being opened and listed at once (at start-up, and in a reconnect storm): enough to
 * keep the gateway's core busy while answers travel (S7 in bench/README.md: 32 is as fast as
 * unbounded), few enough that upstreams sharing a host are
 * spared a thundering herd. A silent upstream holds its permit only until its timeout.
 */
const DISCOVERY_CONCURRENCY = 32

/** Reconnect delays: 200 ms doubling, ±20 % jitter, at most 30 s; back to 200 ms after a minute of health. */
export const reconnectSchedule = Schedule.exponential(Duration.millis(200)).pipe(
  Schedule.jittered,
  Schedule.union(Schedule.spaced(Duration.seconds(30))),
  Schedule.resetAfter(Duration.minutes(1))
)

/**
 * Caller sessions one connector may hold (`isolation: "caller"`): past it, the least recently
 * used idle one is closed to make room. An idle caller session costs ~72 KiB of the gateway's heap (bench S8; the upstream holds its own).
 */
export const MAX_CALLER_SESSIONS = 1000

/** How often idle caller sessions are looked for: every 30 s, or twice per idle timeout if shorter. */
const callerSessionSweep = (idle: Duration.Duration) => Duration.min(Duration.seconds(30), Duration.times(idle, 0.5))

/** How often an idle connection is checked (ping, or `server/discover` on the 2026 era). */
export const HEALTH_CHECK_INTERVAL = Duration.seconds(10)

/**
 * The wait before a connection's next check: the interval ±25 %. Connectors started together
 * would otherwise check together for ever: 100 of them put a burst of 100 pings on the gateway's
 * core (and on upstreams sharing a host) every interval, which callers saw as stalls.
 */
const nextHealthCheck = Effect.map(Random.nextRange(0.75, 1.25), (factor) => Duration.times(HEALTH_CHECK_INTERVAL, factor))

/** Adds `listener` to `listeners` for the life of the current scope. */
const listenWhileScoped = <L>(listeners: Set<L>, listener: L): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.sync(() => void listeners.add(listener)), () => Effect.sync(() => void listeners.delete(listener)))

export class Upstreams extends Effect.Service<Upstreams>()("aperture/Upstreams", {
  scoped: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const liveConfig = yield* liveConfigOrStatic
    const catalog = yield* Catalog
    const metrics = yield* Metrics
    // In a cluster, credentials share their tokens across replicas (else forConnector is undefined).
    const sharedTokens = yield* SharedTokensStore
    const userAuth = yield* UserAuth
    const live = new Map<string, LiveUpstream>()
    const calls = new CallRegistry()
    const resourceListeners = new Set<(connectorId: string, uri: string) => void>()
    const connectedListeners = new Set<(connectorId: string) => void>()
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        resourceListeners.clear()
        connectedListeners.clear()
      })
    )
    const events: UpstreamEvents = {
      resourceUpdated: (connectorId, uri) => {
        for (const listener of resourceListeners) listener(connectorId, uri)
      }
    }
    const callerSessions = new CallerSessions(yield* Effect.runtime<never>(), {
      idleMillis: Duration.toMillis(config.server.sessionIdleTimeout),
      maxPerConnector: MAX_CALLER_SESSIONS
    }, yield* sharedUpstreamSessionsFromCluster, events) // with cluster, one upstream session per caller for every replica
    yield* Effect.addFinalizer(() => Effect.sync(() => callerSessions.closeAll()))
    yield* Effect.sync(() => callerSessions.reap()).pipe(
      Effect.repeat(Schedule.spaced(callerSessionSweep(config.server.sessionIdleTimeout))),
      Effect.forkScoped
    )
    const fibers = yield* FiberMap.make<string>()
    // Before the connectors stop (finalizers run last first): a shared caller session is left, not released.
    yield* Effect.addFinalizer(() => callerSessions.shutdown)
    yield* callerSessions.followCluster
    const discovery = new FifoPermits(DISCOVERY_CONCURRENCY)

    const markFailed = (connector: McpSpeakingConnector, error: UpstreamError) => {
      // A 401 to a connector with no credential: the upstream wants one (MCP authorization),
      // nothing is broken but the config — the original's "Needs auth".
      const needsAuth = error.kind === "unauthorized" && (connector.kind !== "mcp" || connector.auth === undefined)
      return catalog.update(connector.id, (s) => ({
        ...s,
        status: needsAuth ? "needs_auth" : isCredentialProblem(error) ? "misconfigured" : "down",
        error: needsAuth
          ? "the upstream requires authorization (HTTP 401) and this connector has no auth: configure one (bearer, clientCredentials, apiKey, basic or a plugin)"
          : error.message,
        attempted: true,
        lists: emptyLists,
        upstream: undefined
      }))
    }

    /** Re-reads the lists the upstream said changed, until the connection ends. */
    const followChanges = (connector: McpSpeakingConnector, connection: Connection) =>
      Effect.gen(function*() {
        let lists: UpstreamLists = (yield* catalog.get).byId.get(connector.id)?.lists ?? emptyLists
        while (true) {
          const first = yield* Queue.take(connection.changes)
          const rest = yield* Queue.takeAll(connection.changes)
          const which = [...new Set<ListKind>([first, ...rest])]
          const read = yield* readLists(connection, connector.id, connector.timeout, which, lists)
          // A re-read that found nothing new (lists polled on a timer, a spurious list_changed)
          // keeps the catalog as it is: callers hear of a change only when there is one.
          if (which.every((list) => sameItems(read[list], lists[list]) && (list !== "resources" || sameItems(read.templates, lists.templates)))) continue
          lists = read
          yield* catalog.update(connector.id, (s) => ({ ...s, lists: read }))
          yield* Effect.logDebug(`connector ${connector.id}: ${which.join(", ")} list changed`)
        }
      })

    /** Pings every interval, or at once when a call failed; fails when the upstream stops answering. */
    const watch = (connector: McpSpeakingConnector, connection: Connection, suspicion: Queue.Queue<void>) =>
      Effect.gen(function*() {
        const modern = connection.client.getProtocolEra() === "modern"
        const timeout = Math.min(Duration.toMillis(connector.timeout), 10_000)
        while (true) {
          yield* Effect.race(Effect.flatMap(nextHealthCheck, Effect.sleep), Queue.take(suspicion))
          yield* Effect.tryPromise({
            try: (signal) =>
              modern
                ? connection.client.discover({ timeout, signal })
                : connection.client.ping({ timeout, signal }),
            catch: (error) => {
              // A credential that can no longer be obtained or is refused makes the connector
              // misconfigured, not down.
              const classified = classify(connector.id, error)
              return isCredentialProblem(classified) ? classified : new UpstreamError({
                connectorId: connector.id,
                kind: "unreachable",
                message: `stopped answering: ${describeError(error)}`
              })
            }
          })
        }
      })

    /** One connection's life: connect, publish, serve until it fails. Never succeeds. */
    const session = (connector: McpSpeakingConnector, credential: Credential | undefined, memory: ConnectionMemory) =>
      Effect.scoped(Effect.gen(function*() {
        // A connector is ready within its timeout or down, saying what it waited for: each
        // request has that timeout, but a connection makes several (a probe, the handshake,
        // every page of every list), and a silent upstream would hold its permit for all of them.
        const readiness = readinessWithin(connector.timeout)
        const { connection, lists } = yield* discovery.withPermit(Effect.gen(function*() {
          const connection = yield* connect(connector, credential, memory, calls, events, readiness)
          return { connection, lists: yield* readLists(connection, connector.id, connector.timeout, undefined, undefined, readiness) }
        })).pipe(
          // A bug of ours (or an SDK throw) while connecting must leave the connector down and
          // retrying, saying so, not `connecting` for ever with a dead fiber.
          Effect.catchAllDefect((defect) =>
            Effect.fail(new UpstreamError({ connectorId: connector.id, kind: "protocol", message: `internal error while connecting: ${describeError(defect)}` }))
          )
        )
        connection.ready()
        const suspicion = connection.suspicion
        const shared: LiveUpstream = {
          connector,
          client: connection.client,
          era: connection.client.getProtocolEra(),
          suspect: () => Queue.unsafeOffer(suspicion, undefined),
          calls,
          direct: connection.direct,
          timeout: connectorTimeout(connector),
          sentCredentials: connection.sentCredentials
        }
        live.set(connector.id, shared)
        // Callers' own sessions open beside this connection and end with it.
        // A per-user connector's caller session carries that user's own token.
        callerSessions.attach(shared, (callerCalls, login, join, callerEvents) =>
          connect(connector, isPerUser(connector) ? userCredential(connector.id, login) : credential, memory, callerCalls, callerEvents ?? events, undefined, join))
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            live.delete(connector.id)
            callerSessions.detach(connector.id)
          })
        )
        for (const listener of connectedListeners) listener(connector.id)
        yield* catalog.update(connector.id, (s) => ({
          ...s,
          status: "ready",
          error: undefined,
          attempted: true,
          lists,
          upstream: connection.info
        }))
        // raceFirst, not race: the first of these to fail ends the session.
        return yield* connection.closed.pipe(
          Effect.raceFirst(followChanges(connector, connection)),
          Effect.raceFirst(watch(connector, connection, suspicion))
        )
      }).pipe(
        // Said before the scope closes: closing may wait seconds for a process to exit.
        Effect.tapError((error) => markFailed(connector, error))
      ))

    /** A user's own token, for their session with a per-user connector (`auth/UserAuth.ts`). */
    const userCredential = (connectorId: string, login: string): Credential => ({
      authorize: () =>
        Effect.map(userAuth.accessToken(login, connectorId), (token) => ({ headers: { authorization: `Bearer ${Redacted.value(token)}` } })).pipe(
          Effect.mapError((e) => new AuthError({ plugin: "userOAuth", message: e.message }))
        ),
      onUnauthorized: () => userAuth.refreshNow(login, connectorId)
    })

    /**
     * A per-user connector's own connection (lists, health checks) authorizes as one of the users
     * who connected it: it carries no call, and what it reads (the tools) each connected user sees.
     */
    const listingCredential = (connectorId: string): Credential => ({
      authorize: (request) =>
        Effect.flatMap(userAuth.anyUser(connectorId), (login) =>
          login === undefined
            ? Effect.fail(new AuthError({ plugin: "userOAuth", message: "no user has connected it (yet)" }))
            : userCredential(connectorId, login).authorize(request)),
      onUnauthorized: (request, response) =>
        Effect.flatMap(userAuth.anyUser(connectorId), (login) =>
          login === undefined ? Effect.succeed(false) : userCredential(connectorId, login).onUnauthorized!(request, response))
    })

    /** Until some user connects a per-user connector it is `needs_auth`, and nothing is tried. */
    const untilSomeUserConnected = (connector: McpSpeakingConnector) =>
      Effect.gen(function*() {
        while ((yield* userAuth.anyUser(connector.id)) === undefined) {
          yield* catalog.update(connector.id, (s) => ({
            ...s,
            status: "needs_auth",
            error: `each user connects it once (POST /api/connectors/${connector.id}/connect, or Connect on the status page)`,
            attempted: true,
            lists: emptyLists,
            upstream: undefined
          }))
          // Told when someone connects here (or a cluster's reload finds it); asked again now and then anyway.
          yield* Effect.race(Stream.runHead(Stream.filter(userAuth.changes, (id) => id === connector.id)), Effect.sleep(USER_WAIT_RECHECK))
        }
      })

    const credentialOf = (connector: McpSpeakingConnector): Effect.Effect<Credential | undefined, UpstreamError, Scope.Scope> =>
      isPerUser(connector)
        ? Effect.succeed(listingCredential(connector.id))
        : connector.kind === "mcp" && connector.auth !== undefined
        ? makeCredential(connector.auth, {
          connectorId: connector.id,
          upstreamUrl: connector.url,
          ...withSharedTokens(sharedTokens.forConnector(connector.id))
        }).pipe(
          Effect.map((credential) => countRefreshes(credential, () => metrics.tokenRefreshed(connector.id))),
          Effect.mapError((e) => new UpstreamError({ connectorId: connector.id, kind: "auth", message: e.message }))
        )
        : Effect.succeed(undefined)

    const run = (connector: McpSpeakingConnector) =>
      Effect.gen(function*() {
        if (connector.kind === "mcp" && connector.url === undefined) {
          yield* catalog.update(connector.id, (s) => ({
            ...s,
            // As the config's warning says: it stays down (there is nothing to fix but the config).
            status: "down",
            error: "no url configured",
            attempted: true
          }))
          return yield* Effect.never
        }
        const memory: ConnectionMemory = { transport: undefined, prior: undefined }
        if (isPerUser(connector)) yield* untilSomeUserConnected(connector)
        // The credential lives in the connector's scope, so its token cache survives reconnects.
        return yield* Effect.scoped(Effect.gen(function*() {
          const credential = yield* credentialOf(connector)
          return yield* session(connector, credential, memory).pipe(
            Effect.tapError((error) => markFailed(connector, error)),
            Effect.retry(reconnectSchedule)
          )
        })).pipe(
          Effect.tapError((error) => markFailed(connector, error)),
          Effect.retry(reconnectSchedule)
        )
      }).pipe(Effect.annotateLogs("connector", connector.id), Effect.withSpan("Upstreams.connector", { attributes: { connector: connector.id } }))

    for (const connector of liveConfig.current().connectors) {
      if (speaksMcp(connector)) yield* FiberMap.run(fibers, connector.id, run(connector))
    }

    // A reload stops removed and changed connectors (their connections and caller sessions close,
    // awaited so the old connection's finalizer runs before the new one registers) and starts
    // added and changed ones; the others keep their connections and caller sessions.
    yield* liveConfig.onChange("connections", (change) =>
      Effect.gen(function*() {
        const { added, changed, removed } = change.connectors
        yield* Effect.forEach([...removed, ...changed], (c) => FiberMap.remove(fibers, c.id), { concurrency: "unbounded", discard: true })
        for (const connector of [...added, ...changed]) {
          if (speaksMcp(connector)) yield* FiberMap.run(fibers, connector.id, run(connector))
        }
      }))

    return {
      /** The live upstream for a connector, if it is connected. */
      get: (connectorId: string): LiveUpstream | undefined => live.get(connectorId),
      /**
       * Where `identity`'s request to `upstream` goes: the shared connection, or with
       * `isolation: "caller"` the caller's own upstream session (a promise while it opens).
       */
      route: (upstream: LiveUpstream, identity: Identity | undefined): LiveUpstream | Promise<LiveUpstream> =>
        callerSessions.route(upstream, identity),
      /** A caller's own upstream sessions that are open. */
      sessionsOf: (login: string): ReadonlyArray<LiveUpstream> => callerSessions.sessionsOf(login),
      /** Caller sessions open per connector. */
      callerSessionCounts: (): ReadonlyMap<string, number> => callerSessions.counts(),
      /** How a caller's own sessions reach it outside its calls (set by the MCP endpoint). */
      setCallerChannels: (channelOf: ChannelOf): void => callerSessions.setChannels(channelOf),
      /** All live upstreams. */
      all: (): ReadonlyArray<LiveUpstream> => [...live.values()],
      /** Listens to `notifications/resources/updated` from every upstream, until the listener's scope closes. */
      onResourceUpdated: (listener: (connectorId: string, uri: string) => void): Effect.Effect<void, never, Scope.Scope> =>
        listenWhileScoped(resourceListeners, listener),
      /** Listens to (re)connections (e.g. to renew upstream subscriptions), until the listener's scope closes. */
      onConnected: (listener: (connectorId: string) => void): Effect.Effect<void, never, Scope.Scope> =>
        listenWhileScoped(connectedListeners, listener),
      /** Listeners registered (for tests: none outlives its scope). */
      listenerCount: (): number => resourceListeners.size + connectedListeners.size
    } as const
  }),
  // The replica bus Sessions2025 uses too (one per process: layers are built once): a cluster's
  // shared caller sessions send what their GET streams read on it.
  dependencies: [replicaBusFromCluster]
}) {}
