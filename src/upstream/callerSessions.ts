/**
 * Upstream sessions per caller (a connector's `isolation: "caller"`): each caller login gets its
 * own upstream session, so nothing one caller sets upstream — the roots its client gave, its log
 * level, a stateful server's per-session memory — is seen by another. The connector's shared
 * connection still reads the lists, follows `list_changed` and is health-checked; a caller's
 * session only carries that caller's requests.
 *
 * - opened on the caller's first request that reaches the upstream (never for a list);
 * - its server→client requests go to that caller: a call in flight, or with none, the caller's
 *   own downstream session (the `owner` of its {@link CallRegistry});
 * - closed after the gateway's session idle timeout without a request (never with a call in
 *   flight), when its transport ends, and with the shared connection (a reconnected upstream
 *   may have forgotten it);
 * - at most {@link CallerSessionLimits.maxPerConnector} per connector: the least recently used
 *   idle one makes room; when all are busy the request is refused with a message saying so.
 *
 * In a cluster (`cluster/sharedUpstreamSessions.ts`) a caller's streamable-HTTP session is one for
 * every replica: the first replica to need it opens and records it, the others join it from the
 * record (no second `initialize`), and a replica dropping its copy ends it upstream only once no
 * replica has used it for the idle timeout. Stdio, WebSocket and legacy-SSE sessions stay per
 * replica: a process or a socket belongs to one.
 *
 * A 2026-era upstream is stateless (every request carries its caller's capabilities and level),
 * so it needs none: its callers share the connection, as do `isolation: "shared"` connectors.
 * @module
 */
import { type LoggingLevel, ProtocolError, ProtocolErrorCode } from "@modelcontextprotocol/client"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import type { Identity } from "../plugin/IdentityPlugin.js"
import { CallRegistry, type CallerChannel, logPasses } from "./callChannel.js"
import { type Connection, sessionRecordOf, type UpstreamEvents } from "./connection.js"
import { describeError, type UpstreamError } from "../catalog/UpstreamError.js"
import type { LiveUpstream } from "./liveUpstream.js"
import {
  localUpstreamSessions,
  type RecordedSession,
  type Release,
  type SharedUpstreamSessionsService,
  type UpstreamSessionRecord
} from "../cluster/sharedUpstreamSessions.js"
import { HEARTBEAT_TTL_MS } from "../cluster/replicaBus.js"

export interface CallerSessionLimits {
  /** A caller's session unused this long is closed. */
  readonly idleMillis: number
  /** Caller sessions one connector may hold. */
  readonly maxPerConnector: number
}

/**
 * Opens one more connection to the connector's upstream for caller `login`, routed through `calls`;
 * with `join`, one joining that session another replica opened.
 */
export type OpenConnection = (
  calls: CallRegistry,
  login: string,
  join?: UpstreamSessionRecord,
  /** Where its resource updates go, instead of the connector's (a shared session's go to every replica). */
  events?: UpstreamEvents
) => Effect.Effect<Connection, UpstreamError, Scope.Scope>

/** How to reach a caller outside its calls (its own downstream sessions), by login. */
export type ChannelOf = (identity: Identity) => CallerChannel

interface CallerSession {
  readonly connectorId: string
  readonly login: string
  readonly calls: CallRegistry
  readonly scope: Scope.CloseableScope
  upstream: LiveUpstream | undefined
  opening: Promise<LiveUpstream> | undefined
  lastUsed: number
  /** Set when a request failed at the transport level: the next request opens a new session. */
  stale: boolean
  connection: Connection | undefined
  /** In a cluster, the session as recorded for every replica; none for one of this replica's own. */
  shared: UpstreamSessionRecord | undefined
  /** When this replica last touched the shared record. */
  touched: number
  /** Whether this replica reads the shared session's GET stream (it opened it, or took it over). */
  holding: boolean
  /** The replica (bus id) that does, as last seen; `undefined`: none recorded. */
  holder: string | undefined
}

/** A connection opened for a caller, and its record when it is shared with the cluster. */
interface Opened {
  readonly connection: Connection
  readonly shared: UpstreamSessionRecord | undefined
  /** Who reads its GET stream (this replica's id when it opened it). */
  readonly holder?: string | undefined
}

interface ConnectorSessions {
  readonly shared: LiveUpstream
  readonly open: OpenConnection
  readonly byLogin: Map<string, CallerSession>
  /** Stale sessions still carrying calls, closed once idle. */
  readonly retired: Set<CallerSession>
}

export class CallerSessions {
  private readonly connectors = new Map<string, ConnectorSessions>()
  private channelOf: ChannelOf = () => NO_CHANNEL

  /** Set when the gateway stops: a shared session's copy closed now is left (see `leave`), not released. */
  private leaving = false

  constructor(
    private readonly runtime: Runtime.Runtime<never>,
    private readonly limits: CallerSessionLimits,
    private readonly sharing: SharedUpstreamSessionsService = localUpstreamSessions,
    /** The connector's events: resource updates other replicas read on shared sessions are delivered here. */
    private readonly events?: UpstreamEvents
  ) {}

  /** Sets how a caller is reached outside its calls (the MCP endpoint knows its sessions). */
  setChannels(channelOf: ChannelOf): void {
    this.channelOf = channelOf
  }

  /** The connector's shared connection is up: callers may open sessions beside it. */
  attach(shared: LiveUpstream, open: OpenConnection): void {
    this.detach(shared.connector.id)
    this.connectors.set(shared.connector.id, { shared, open, byLogin: new Map(), retired: new Set() })
  }

  /** The shared connection ended: every caller session of the connector ends with it. */
  detach(connectorId: string): void {
    const sessions = this.connectors.get(connectorId)
    if (sessions === undefined) return
    this.connectors.delete(connectorId)
    for (const session of sessions.byLogin.values()) this.close(session)
    for (const session of sessions.retired) this.close(session)
  }

  /**
   * The upstream to send `identity`'s request to: the shared connection, or the caller's own
   * session (a promise only while it opens).
   */
  route(shared: LiveUpstream, identity: Identity | undefined): LiveUpstream | Promise<LiveUpstream> {
    // A per-user connector's shared connection carries some user's token: a caller's request
    // always goes on their own session, whatever the era.
    const perUser = shared.connector.kind === "mcp" && shared.connector.userAuth !== undefined
    if (identity === undefined || (!perUser && (shared.connector.isolation === "shared" || shared.era === "modern"))) return shared
    const sessions = this.connectors.get(shared.connector.id)
    if (sessions === undefined || sessions.shared !== shared) return shared
    let session = sessions.byLogin.get(identity.login)
    let replaced: string | undefined
    if (session !== undefined && session.stale) {
      sessions.byLogin.delete(identity.login)
      replaced = session.shared?.sessionId
      this.retire(sessions, session)
      session = undefined
    }
    if (session === undefined) session = this.openSession(sessions, identity, replaced)
    const now = Date.now()
    session.lastUsed = now
    // Throttled: a shared session costs Redis one write per replica per idle timeout / 4, not one per request.
    if (session.shared !== undefined && now - session.touched >= this.sharing.touchEvery) {
      session.touched = now
      this.sharing.touch(session.connectorId, session.login, session.shared, session.holding)
    }
    return session.upstream ?? session.opening!
  }

  /** The caller's open sessions (to tell them its roots changed, say). */
  sessionsOf(login: string): ReadonlyArray<LiveUpstream> {
    const found: Array<LiveUpstream> = []
    for (const sessions of this.connectors.values()) {
      const upstream = sessions.byLogin.get(login)?.upstream
      if (upstream !== undefined) found.push(upstream)
    }
    return found
  }

  /** Caller sessions open (or opening) per connector. */
  counts(): ReadonlyMap<string, number> {
    const counts = new Map<string, number>()
    for (const [id, sessions] of this.connectors) counts.set(id, sessions.byLogin.size + sessions.retired.size)
    return counts
  }

  /** Closes the sessions idle since `now - idleMillis` (none with a call in flight). */
  reap(now = Date.now()): void {
    const before = now - this.limits.idleMillis
    // A shared session's copy is kept until every replica's touches have reached the record, so
    // the copy used last decides that the session ended, and ends it.
    const sharedBefore = now - Math.max(this.limits.idleMillis, this.sharing.keepIdleCopyFor)
    for (const [id, sessions] of this.connectors) {
      for (const [login, session] of sessions.byLogin) {
        if (session.lastUsed < (session.shared === undefined ? before : sharedBefore) && session.upstream !== undefined && !session.calls.busy(id)) {
          sessions.byLogin.delete(login)
          this.close(session)
        }
      }
      for (const session of sessions.retired) {
        if (!session.calls.busy(id)) {
          sessions.retired.delete(session)
          this.close(session)
        }
      }
    }
  }

  /** Closes every session (the gateway is stopping). */
  closeAll(): void {
    for (const id of [...this.connectors.keys()]) this.detach(id)
  }

  /**
   * The gateway is stopping: every session closes, and a shared one this replica alone used
   * lately is ended upstream (others keep theirs; a GET stream held here is handed over). Waits
   * for Redis' answers, so they are had before the connection to it closes.
   */
  readonly shutdown: Effect.Effect<void> = Effect.suspend(() => {
    // One process: nothing new, the sessions close as the connectors stop.
    if (!this.sharing.shared) return Effect.void
    this.leaving = true
    const closing: Array<Promise<unknown>> = []
    for (const [id, sessions] of this.connectors) {
      this.connectors.delete(id)
      for (const session of [...sessions.byLogin.values(), ...sessions.retired]) closing.push(this.close(session))
    }
    return Effect.promise(() => Promise.allSettled(closing))
  })

  /**
   * In a cluster, for the life of the scope: delivers the resource updates other replicas read on
   * shared sessions' GET streams, and takes a stream over when the replica holding it is gone (its
   * heartbeat lapsed: checked every half heartbeat TTL, one command per holder) or gave it up.
   */
  readonly followCluster: Effect.Effect<void, never, Scope.Scope> = Effect.suspend(() => {
    if (!this.sharing.shared) return Effect.void
    const sharing = this.sharing
    const listening = sharing.listen({
      resourceUpdated: (connectorId, uri) => this.events?.resourceUpdated(connectorId, uri),
      streamFree: (connectorId, login, sessionId, former) => {
        const session = this.connectors.get(connectorId)?.byLogin.get(login)
        if (session !== undefined && session.shared?.sessionId === sessionId && !session.holding) {
          Runtime.runFork(this.runtime)(this.takeOver(session, former))
        }
      }
    })
    const check = Effect.gen(this, function*() {
      const waiting: Array<CallerSession> = []
      for (const sessions of this.connectors.values()) {
        for (const session of sessions.byLogin.values()) {
          if (session.shared !== undefined && !session.holding && session.connection !== undefined) waiting.push(session)
        }
      }
      if (waiting.length === 0) return
      const alive = new Map<string, boolean>()
      for (const session of waiting) {
        const holder = session.holder
        if (holder !== undefined && !alive.has(holder)) alive.set(holder, yield* Effect.orElseSucceed(sharing.isAlive(holder), () => true))
        if (holder === undefined || alive.get(holder) === false) yield* this.takeOver(session, holder)
      }
    })
    return Effect.zipRight(
      listening,
      Effect.forkScoped(Effect.repeat(check, Schedule.spaced(Duration.millis(HEARTBEAT_TTL_MS / 2))))
    )
  })

  /** Takes the session's GET stream over from `former` (compare-and-set in its record), and opens it here. */
  private takeOver(session: CallerSession, former: string | undefined): Effect.Effect<void> {
    const sharing = this.sharing
    const shared = session.shared!
    return Effect.gen(function*() {
      const holder = yield* Effect.orElseSucceed(sharing.adopt(session.connectorId, session.login, shared.sessionId, former), () => former)
      session.holder = holder
      if (holder !== sharing.replica || session.holding || session.connection === undefined) return
      session.holding = true
      const opened = yield* Effect.either(Effect.tryPromise(() => session.connection!.openGetStream()))
      if (opened._tag === "Left") {
        // The former stream still open upstream (409), say: let go, and a later check tries again.
        session.holding = false
        session.holder = undefined
        sharing.giveUp(session.connectorId, session.login, shared.sessionId)
        return
      }
      yield* Effect.logInfo(`took over the GET stream of a shared upstream session (connector ${session.connectorId}) from ${former ?? "nobody"}`)
    })
  }

  private openSession(sessions: ConnectorSessions, identity: Identity, replaced: string | undefined): CallerSession {
    const connectorId = sessions.shared.connector.id
    if (sessions.byLogin.size >= this.limits.maxPerConnector) this.makeRoom(sessions)
    const login = identity.login
    const local = this.channelOf(identity)
    const sharing = this.sharing
    // A shared session's log messages outside a request reach the replica holding its GET stream,
    // not necessarily one holding the caller's sessions: they go to each of those whose level
    // lets them through (as recorded for the cluster), once.
    const channel: CallerChannel = !sharing.shared ? local : {
      ask: local.ask,
      log: (params) =>
        session.shared === undefined
          ? local.log(params)
          : Runtime.runFork(this.runtime)(Effect.ignore(
            sharing.toCallerSessions(login, { method: "notifications/message", params }, (level) => logPasses(params["level"], level as LoggingLevel | undefined))
          ))
    }
    // And its resource updates are for every replica's subscribers.
    const events: UpstreamEvents | undefined = !sharing.shared || this.events === undefined ? undefined : {
      resourceUpdated: (connectorId, uri) => {
        this.events!.resourceUpdated(connectorId, uri)
        if (session.shared !== undefined) sharing.resourceUpdated(connectorId, uri)
      }
    }
    const calls = new CallRegistry(channel)
    const scope = Runtime.runSync(this.runtime)(Scope.make())
    const session: CallerSession = {
      connectorId,
      login,
      calls,
      scope,
      upstream: undefined,
      opening: undefined,
      lastUsed: Date.now(),
      stale: false,
      connection: undefined,
      shared: undefined,
      touched: Date.now(),
      holding: false,
      holder: undefined
    }
    // Only streamable HTTP (the shared connection has a direct route): a process or a socket is this replica's own.
    const opening: Effect.Effect<Opened, UpstreamError, Scope.Scope> = this.sharing.shared && sessions.shared.direct !== undefined
      ? this.openShared(sessions.open, calls, connectorId, sessions.shared.direct.url.href, login, replaced, events)
      : Effect.map(sessions.open(calls, login), (connection) => ({ connection, shared: undefined }))
    const forget = () => {
      if (sessions.byLogin.get(login) === session) sessions.byLogin.delete(login)
      sessions.retired.delete(session)
      this.close(session)
    }
    session.opening = Runtime.runPromiseExit(this.runtime)(Scope.extend(opening, scope)).then((exit) => {
      session.opening = undefined
      if (Exit.isFailure(exit)) {
        forget()
        const failure = Option.match(Cause.failureOption(exit.cause), {
          onNone: () => Cause.isInterruptedOnly(exit.cause) ? "interrupted" : `internal error: ${describeError(Cause.squash(exit.cause))}`,
          onSome: (e) => e.message
        })
        throw new ProtocolError(
          ProtocolErrorCode.InternalError,
          `connector ${connectorId}: could not open an upstream session for this caller: ${failure}`
        )
      }
      const { connection, holder, shared } = exit.value
      session.connection = connection
      session.shared = shared
      session.holder = holder
      session.holding = shared !== undefined && holder === this.sharing.replica
      const upstream: LiveUpstream = {
        connector: sessions.shared.connector,
        client: connection.client,
        era: connection.client.getProtocolEra(),
        // The next request opens a fresh session; this one closes when its calls are done.
        suspect: () => void (session.stale = true),
        calls,
        direct: connection.direct,
        timeout: sessions.shared.timeout,
        sentCredentials: connection.sentCredentials
      }
      session.upstream = upstream
      // Its transport ending (a process exit, a closed stream) ends the session.
      Runtime.runFork(this.runtime)(Scope.extend(connection.closed, scope)).addObserver(forget)
      return upstream
    })
    sessions.byLogin.set(login, session)
    return session
  }

  /** Closes the least recently used idle session, or refuses when every session is busy. */
  private makeRoom(sessions: ConnectorSessions): void {
    const id = sessions.shared.connector.id
    let oldest: CallerSession | undefined
    for (const session of sessions.byLogin.values()) {
      if (session.upstream === undefined || session.calls.busy(id)) continue
      if (oldest === undefined || session.lastUsed < oldest.lastUsed) oldest = session
    }
    if (oldest === undefined) {
      throw new ProtocolError(
        ProtocolErrorCode.InternalError,
        `connector ${id}: all ${this.limits.maxPerConnector} caller sessions are busy; try again shortly`
      )
    }
    sessions.byLogin.delete(oldest.login)
    this.close(oldest)
  }

  private retire(sessions: ConnectorSessions, session: CallerSession): void {
    if (session.upstream !== undefined && session.calls.busy(sessions.shared.connector.id)) sessions.retired.add(session)
    else this.close(session)
  }

  /**
   * A shared session: the one recorded for the caller, joined; or, with none recorded, a new one
   * recorded (a replica that loses the race to record its own ends it and joins the winner's).
   * `replaced` is the session that failed here: its record goes, so it is not joined again; so does
 * one recorded for another upstream URL. While
   * Redis is away the caller gets a session of this replica's own, as without a cluster.
   */
  private openShared(
    open: OpenConnection,
    calls: CallRegistry,
    connectorId: string,
    url: string,
    login: string,
    replaced: string | undefined,
    events: UpstreamEvents | undefined
  ) {
    const sharing = this.sharing
    // A join is recorded as a use at once: a replica releasing its copy meanwhile must not end it.
    const join = ({ holder, record }: RecordedSession) =>
      Effect.map(open(calls, login, record, events), (connection): Opened => {
        sharing.touch(connectorId, login, record, false)
        // Named as its holder, this replica's dropped copy left it unannounced (Redis was away): none reads it now.
        return { connection, shared: record, holder: holder === sharing.replica ? undefined : holder }
      })
    return Effect.gen(function*() {
      if (replaced !== undefined) yield* Effect.ignore(sharing.forget(connectorId, login, replaced))
      let found = yield* Effect.orElseSucceed(sharing.find(connectorId, login), () => undefined)
      // A session with another upstream (this replica's config differs, or changed): replaced by this one's.
      if (found !== undefined && found.record.url !== url) {
        yield* Effect.ignore(sharing.forget(connectorId, login, found.record.sessionId))
        found = undefined
      }
      if (found !== undefined) return yield* join(found)
      // Its own scope inside the session's: closed at once (ending it upstream) if another replica's wins.
      const own = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
      const connection = yield* Scope.extend(open(calls, login, undefined, events), own)
      const record = sessionRecordOf(connection)
      if (record === undefined) return { connection, shared: undefined } satisfies Opened
      const claimed = yield* Effect.either(sharing.claim(connectorId, login, record))
      if (claimed._tag === "Left") return { connection, shared: undefined } satisfies Opened
      if (claimed.right === undefined) return { connection, shared: record, holder: sharing.replica } satisfies Opened
      // Recorded meanwhile for another upstream URL: this replica keeps its own.
      if (claimed.right.record.url !== url) return { connection, shared: undefined } satisfies Opened
      yield* Scope.close(own, Exit.void)
      return yield* join(claimed.right)
    })
  }

  /** Closes the session's copy here (ending it upstream or not); the promise settles once a shared one is closed. */
  private close(session: CallerSession): Promise<unknown> {
    const closing = Scope.close(session.scope, Exit.void)
    const shared = session.shared
    if (shared === undefined) {
      Runtime.runFork(this.runtime)(closing)
      return Promise.resolve()
    }
    const { connectorId, login } = session
    const sharing = this.sharing
    // A failed session is no one's any more; a dropped copy ends the session only if no replica
    // uses it (a replica stopping: no other). With Redis away it is left open: it lapses at the
    // upstream's own idle timeout.
    const ends: Effect.Effect<Release, unknown> = session.stale
      ? Effect.as(sharing.forget(connectorId, login, shared.sessionId), "end" as const)
      : this.leaving
      ? sharing.leave(connectorId, login, shared.sessionId)
      : sharing.release(connectorId, login, shared.sessionId, Date.now() - session.lastUsed)
    return Runtime.runPromiseExit(this.runtime)(
      Effect.orElseSucceed(ends, (): Release => "keep").pipe(
        Effect.tap((release) => {
          if (release !== "end") session.connection?.leaveSessionOpen()
        }),
        // Announced once this copy's GET stream is closed, so the next holder's is not refused as a second one.
        Effect.tap((release) => Effect.andThen(closing, () => release === "free" && sharing.streamFreed(connectorId, login, shared.sessionId)))
      )
    )
  }
}

const NO_CHANNEL: CallerChannel = {
  ask: (method) =>
    Promise.reject(new ProtocolError(ProtocolErrorCode.InternalError, `Aperture has no open session of this caller to send ${method} to`)),
  log: () => {}
}
