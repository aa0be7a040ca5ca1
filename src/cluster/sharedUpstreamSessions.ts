/**
 * One upstream session per caller per connector for the whole cluster (`isolation: "caller"`,
 * streamable-HTTP upstreams): a stateful upstream keeps a caller's per-session memory whichever
 * replica the caller's request lands on.
 *
 * A record per (connector, caller login), a hash `<keyPrefix>upstream:<connector>:<login>`, holds
 * the upstream's `Mcp-Session-Id`, its `initialize` answer (so another replica joins the session
 * without a handshake) and when the session was last used (Redis' clock). Replicas using the
 * session touch it (at most once per idle timeout / 4 each); it lives twice the idle timeout
 * untouched, so the replica that drops the last copy, not Redis, decides that the session has
 * ended and ends it upstream (DELETE).
 *
 * In one process there is nothing to share: {@link localUpstreamSessions} answers nothing and
 * stores nothing, and caller sessions work as before.
 * @module
 */
import { hostname } from "node:os"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { GatewayConfig } from "../config/GatewayConfig.js"
import type * as Scope from "effect/Scope"
import { ClusterRedis } from "./ClusterRedis.js"
import { ReplicaBus, type ReplicaBusService } from "./replicaBus.js"
import { type CommandClient, sendQuietly, sharedCommand, type SharedStateUnavailable } from "./sharedCommand.js"

/** What an upstream answered to `initialize`: what a client joining its session must know. */
export const UpstreamHandshake = Schema.Struct({
  protocolVersion: Schema.String,
  capabilities: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  serverInfo: Schema.Struct({ name: Schema.String, version: Schema.String }, { key: Schema.String, value: Schema.Unknown }),
  instructions: Schema.optional(Schema.String)
})

/** A caller's upstream session as recorded for the cluster. */
export const UpstreamSessionRecord = Schema.Struct({
  /** The upstream's `Mcp-Session-Id`. */
  sessionId: Schema.String,
  /** The upstream's URL: a replica configured with another (a rolling deploy, a reload) does not join it. */
  url: Schema.String,
  handshake: UpstreamHandshake,
  /** The replica (host/pid) that opened it: for people reading Redis (the hash's `holder` names who reads its GET stream now). */
  openedBy: Schema.String
})
export type UpstreamSessionRecord = typeof UpstreamSessionRecord.Type

/** What dropping a copy of a shared session means for it (see {@link SharedUpstreamSessionsService.release}). */
export type Release = "end" | "keep" | "free"

/** A recorded session, and the replica (its bus id) holding its GET stream now: none while nobody does. */
export interface RecordedSession {
  readonly record: UpstreamSessionRecord
  readonly holder: string | undefined
}

/** What a replica holding a shared session's GET stream hears there, for the others. */
export interface OutsideMessageHandlers {
  /** `notifications/resources/updated` read on another replica's GET stream: for this replica's subscribers. */
  readonly resourceUpdated: (connectorId: string, uri: string) => void
  /** The replica holding a session's GET stream dropped its copy: a replica using it takes the stream over. */
  readonly streamFree: (connectorId: string, login: string, sessionId: string, formerHolder: string) => void
}

export interface SharedUpstreamSessionsService {
  /** Whether sessions are shared with other replicas; `false` in one process (nothing is looked up). */
  readonly shared: boolean
  /** This replica's id on the replica bus: what a record names as the holder of the GET stream. */
  readonly replica: string
  /** How often a replica using a session touches it. */
  readonly touchEvery: number
  /** How long a replica keeps an unused copy: the idle timeout plus {@link touchEvery}, the most a touch can lag. */
  readonly keepIdleCopyFor: number
  /** The caller's recorded session with the connector, if any. */
  readonly find: (connectorId: string, login: string) => Effect.Effect<RecordedSession | undefined, SharedStateUnavailable>
  /**
   * Records a session just opened, with this replica holding its GET stream, unless another replica
   * recorded one first: then that one (join it, end ours).
   */
  readonly claim: (connectorId: string, login: string, record: UpstreamSessionRecord) => Effect.Effect<RecordedSession | undefined, SharedStateUnavailable>
  /** The session is in use here now (fire and forget); puts its record (and, `holding`, its holder) back if Redis lost it. */
  readonly touch: (connectorId: string, login: string, record: UpstreamSessionRecord, holding: boolean) => void
  /**
   * This replica drops its copy, unused for `idleMillis`: whether to end the session upstream.
   * `end` when no replica has used it for {@link keepIdleCopyFor} (the record is removed) or it is
   * no longer the recorded one; `keep` while another replica may still use it, `free` when it is
   * kept and its GET stream was held here (announce it with {@link streamFreed} once closed here).
   */
  readonly release: (connectorId: string, login: string, sessionId: string, idleMillis: number) => Effect.Effect<Release, SharedStateUnavailable>
  /**
   * This replica is shutting down: as {@link release}, except that it ends the session when no
   * other replica has used it for {@link keepIdleCopyFor}, however lately this one did.
   */
  readonly leave: (connectorId: string, login: string, sessionId: string) => Effect.Effect<Release, SharedStateUnavailable>
  /** Tells the replicas using the session that its GET stream, held here until now, is free to take over. */
  readonly streamFreed: (connectorId: string, login: string, sessionId: string) => void
  /** The session failed (the upstream forgot it, say): remove the record if it is still this session. */
  readonly forget: (connectorId: string, login: string, sessionId: string) => Effect.Effect<void, SharedStateUnavailable>
  /** Whether the replica holding a GET stream still beats. */
  readonly isAlive: (holder: string) => Effect.Effect<boolean, SharedStateUnavailable>
  /**
   * Takes the session's GET stream over from `formerHolder` (gone, or gave it up; `undefined`: none
   * recorded), a compare-and-set: the holder now (this replica when taken), `undefined` when the
   * session is no longer the recorded one.
   */
  readonly adopt: (connectorId: string, login: string, sessionId: string, formerHolder: string | undefined) => Effect.Effect<string | undefined, SharedStateUnavailable>
  /** Opening the GET stream failed here: the record no longer names this replica, so another (or a later try) takes it. */
  readonly giveUp: (connectorId: string, login: string, sessionId: string) => void
  /** A resource update read on a GET stream held here, for the other replicas' subscribers. */
  readonly resourceUpdated: (connectorId: string, uri: string) => void
  /**
   * A message outside any request read on a GET stream held here (a log message): to every
   * 2025-era session of `login` in the cluster whose log level `accepts` it, each sent once, by the
   * replica holding its GET stream.
   */
  readonly toCallerSessions: (
    login: string,
    message: Record<string, unknown>,
    accepts: (logLevel: string | undefined) => boolean
  ) => Effect.Effect<void, SharedStateUnavailable>
  /** Hears what other replicas' GET streams read, and streams given up, for the life of the scope. */
  readonly listen: (handlers: OutsideMessageHandlers) => Effect.Effect<void, never, Scope.Scope>
}

/** One process: every caller session is this replica's own. */
export const localUpstreamSessions: SharedUpstreamSessionsService = {
  shared: false,
  replica: "",
  touchEvery: Infinity,
  keepIdleCopyFor: 0,
  find: () => Effect.succeed(undefined),
  claim: () => Effect.succeed(undefined),
  touch: () => {},
  release: () => Effect.succeed("end"),
  leave: () => Effect.succeed("end"),
  streamFreed: () => {},
  forget: () => Effect.void,
  isAlive: () => Effect.succeed(true),
  adopt: () => Effect.succeed(undefined),
  giveUp: () => {},
  resourceUpdated: () => {},
  toCallerSessions: () => Effect.void,
  listen: () => Effect.void
}

/** Redis' clock in milliseconds, inside a script (replicas' clocks never compared with each other). */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

/**
 * Besides `id`, `record` and `lastUsed` (the latest use anywhere), a record's hash holds `holder`
 * (the bus id of the replica reading the session's GET stream) and `used:<replica>`, each
 * replica's latest use (so a replica shutting down can tell whether another still uses it).
 */

/** KEYS[1] the record; ARGV session id, record JSON, ttl ms, this replica. Returns the existing record and holder, or nil once ours is stored. */
const CLAIM = `${NOW}if redis.call('EXISTS', KEYS[1]) == 1 then
  return {redis.call('HGET', KEYS[1], 'record'), redis.call('HGET', KEYS[1], 'holder') or ''}
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'record', ARGV[2], 'lastUsed', tostring(now), 'used:' .. ARGV[4], tostring(now), 'holder', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return false`

/**
 * KEYS[1] the record; ARGV session id, record JSON, ttl ms, this replica, '1' if it holds the GET
 * stream, ms after which a replica's use is forgotten. Only the recorded session; puts a lost record back.
 */
const TOUCH = `${NOW}local id = redis.call('HGET', KEYS[1], 'id')
if id == false then redis.call('HSET', KEYS[1], 'id', ARGV[1], 'record', ARGV[2])
elseif id ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'lastUsed', tostring(now), 'used:' .. ARGV[4], tostring(now))
if ARGV[5] == '1' and redis.call('HEXISTS', KEYS[1], 'holder') == 0 then redis.call('HSET', KEYS[1], 'holder', ARGV[4]) end
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 5) == 'used:' and tonumber(fields[i + 1]) < now - tonumber(ARGV[6]) then redis.call('HDEL', KEYS[1], fields[i]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`

/** This replica no longer uses a session kept for others: its use and its hold on the GET stream go. 2 when it held the stream, else 0. */
const LET_GO = `redis.call('HDEL', KEYS[1], 'used:' .. ARGV[4])
if redis.call('HGET', KEYS[1], 'holder') == ARGV[4] then
  redis.call('HDEL', KEYS[1], 'holder')
  return 2
end
return 0`

/**
 * KEYS[1] the record; ARGV session id, ms since this replica last used it, ms unused that ends it, this replica.
 * 1: end it (removed, or not the recorded session); 0 or 2: keep it (used lately somewhere; 2: its GET stream is free).
 */
const RELEASE = `${NOW}if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return 1 end
local last = math.max(tonumber(redis.call('HGET', KEYS[1], 'lastUsed') or '0'), now - tonumber(ARGV[2]))
if last < now - tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('HSET', KEYS[1], 'lastUsed', tostring(last))
${LET_GO}`

/** KEYS[1] the record; ARGV session id, (unused), ms unused that ends it, this replica. As RELEASE, counting other replicas' uses only. */
const LEAVE = `${NOW}if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return 1 end
local others = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 5) == 'used:' and fields[i] ~= 'used:' .. ARGV[4] then others = math.max(others, tonumber(fields[i + 1])) end
end
if others < now - tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[1])
  return 1
end
${LET_GO}`

/** KEYS[1] the record; ARGV session id, this replica, the former holder ('' for none). The holder now; nil when not the recorded session. */
const ADOPT = `if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return false end
local holder = redis.call('HGET', KEYS[1], 'holder')
if holder == false or holder == '' or holder == ARGV[3] then
  redis.call('HSET', KEYS[1], 'holder', ARGV[2])
  return ARGV[2]
end
return holder`

/** KEYS[1] the record; ARGV session id, this replica. */
const GIVE_UP = `if redis.call('HGET', KEYS[1], 'id') == ARGV[1] and redis.call('HGET', KEYS[1], 'holder') == ARGV[2] then
  redis.call('HDEL', KEYS[1], 'holder')
end
return 1`

/**
 * KEYS[1] a caller's session slots (`sessionSlots.ts`); ARGV the key prefix. Each of the caller's
 * sessions whose record (`sessionRecords.ts`) is there, and its log level ('' for none): id, level, …
 */
const CALLER_SESSIONS = `local found = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. 'session:' .. id
  if redis.call('EXISTS', key) == 1 then
    table.insert(found, id)
    table.insert(found, redis.call('HGET', key, 'logLevel') or '')
  end
end
return found`

/** KEYS[1] the record; ARGV session id. A compare-and-delete: a newer session recorded meanwhile stays. */
const FORGET = `if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`

const decodeRecord = Schema.decodeUnknownOption(Schema.parseJson(UpstreamSessionRecord))
const encodeRecord = Schema.encodeSync(Schema.parseJson(UpstreamSessionRecord))
const parsed = (reply: unknown) => (typeof reply === "string" ? Option.getOrUndefined(decodeRecord(reply)) : undefined)
/** A `[record, holder]` reply (HMGET, or CLAIM's). */
const recorded = (reply: unknown): RecordedSession | undefined => {
  if (!Array.isArray(reply)) return undefined
  const record = parsed(reply[0])
  return record === undefined ? undefined : { record, holder: typeof reply[1] === "string" && reply[1] !== "" ? reply[1] : undefined }
}

/**
 * What a shared session's GET stream holder tells the others (on the replica bus). A log message
 * for the caller goes as the 2025-era endpoint's own `outside` message, to each of the caller's
 * sessions (`endpoint/era2025/Sessions2025.ts`: sent by the copy holding that session's GET stream).
 */
const UpstreamBusMessage = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("upstreamResourceUpdated"), connector: Schema.String, uri: Schema.String }),
  Schema.Struct({ kind: Schema.Literal("upstreamStreamFree"), connector: Schema.String, login: Schema.String, session: Schema.String, holder: Schema.String })
)
const decodeBusMessage = Schema.decodeUnknownOption(UpstreamBusMessage)

export interface RedisUpstreamSessionsOptions {
  readonly client: CommandClient
  readonly keyPrefix: string
  /** `server.sessionIdleTimeout`: a session no replica used for this long is ended. */
  readonly idleTimeout: Duration.Duration
  /** Messages to and liveness of the other replicas. */
  readonly bus: ReplicaBusService
}

/** A cluster: records in Redis, one upstream session per caller and connector for every replica. */
export const makeRedisUpstreamSessions = ({ bus, client, idleTimeout, keyPrefix }: RedisUpstreamSessionsOptions): SharedUpstreamSessionsService => {
  const idle = Math.max(1, Math.ceil(Duration.toMillis(idleTimeout)))
  const touchEvery = Math.ceil(idle / 4)
  const keepIdleCopyFor = idle + touchEvery
  // Outlives the replicas' reaping (every idle / 2 at most), so one of them ends the session
  // upstream; lapses by itself when every replica using it is gone.
  const ttl = String(2 * idle)
  const me = bus.replica
  const keyOf = (connectorId: string, login: string) => `${keyPrefix}upstream:${connectorId}:${login}`
  const ending = (script: string) => (connectorId: string, login: string, sessionId: string, idleMillis: number) =>
    Effect.map(
      sharedCommand(client, ["EVAL", script, "1", keyOf(connectorId, login), sessionId, String(Math.max(0, Math.floor(idleMillis))), String(keepIdleCopyFor), me]),
      (reply): Release => (Number(reply) === 1 ? "end" : Number(reply) === 2 ? "free" : "keep")
    )
  const release = ending(RELEASE)
  const leave = ending(LEAVE)
  return {
    shared: true,
    replica: me,
    touchEvery,
    keepIdleCopyFor,
    find: (connectorId, login) => Effect.map(sharedCommand(client, ["HMGET", keyOf(connectorId, login), "record", "holder"]), recorded),
    claim: (connectorId, login, record) =>
      Effect.map(sharedCommand(client, ["EVAL", CLAIM, "1", keyOf(connectorId, login), record.sessionId, encodeRecord(record), ttl, me]), recorded),
    touch: (connectorId, login, record, holding) =>
      sendQuietly(client, [
        "EVAL", TOUCH, "1", keyOf(connectorId, login), record.sessionId, encodeRecord(record), ttl, me, holding ? "1" : "0", String(keepIdleCopyFor)
      ]),
    release,
    leave: (connectorId, login, sessionId) => leave(connectorId, login, sessionId, 0),
    streamFreed: (connectorId, login, sessionId) =>
      bus.toOthers({ kind: "upstreamStreamFree", connector: connectorId, login, session: sessionId, holder: me }),
    forget: (connectorId, login, sessionId) => Effect.asVoid(sharedCommand(client, ["EVAL", FORGET, "1", keyOf(connectorId, login), sessionId])),
    isAlive: bus.isAlive,
    adopt: (connectorId, login, sessionId, formerHolder) =>
      Effect.map(
        sharedCommand(client, ["EVAL", ADOPT, "1", keyOf(connectorId, login), sessionId, me, formerHolder ?? ""]),
        (reply) => (typeof reply === "string" ? reply : undefined)
      ),
    giveUp: (connectorId, login, sessionId) => sendQuietly(client, ["EVAL", GIVE_UP, "1", keyOf(connectorId, login), sessionId, me]),
    resourceUpdated: (connectorId, uri) => bus.toOthers({ kind: "upstreamResourceUpdated", connector: connectorId, uri }),
    // The caller's 2025-era sessions are its slots (`sessionSlots.ts`); each is sent the message
    // by whichever replica holds its GET stream, so it arrives once per session.
    toCallerSessions: (login, message, accepts) =>
      Effect.map(sharedCommand(client, ["EVAL", CALLER_SESSIONS, "1", `${keyPrefix}slots:${login}`, keyPrefix]), (found) => {
        if (!Array.isArray(found)) return
        for (let i = 0; i + 1 < found.length; i += 2) {
          const [session, level] = [found[i], found[i + 1]]
          if (typeof session === "string" && accepts(typeof level === "string" && level !== "" ? level : undefined)) {
            bus.toAll({ kind: "outside", session, message: { jsonrpc: "2.0", ...message } })
          }
        }
      }),
    listen: (handlers) =>
      bus.listen((raw) => {
        const heard = decodeBusMessage(raw)
        if (Option.isNone(heard)) return
        const message = heard.value
        if (message.kind === "upstreamResourceUpdated") handlers.resourceUpdated(message.connector, message.uri)
        else handlers.streamFree(message.connector, message.login, message.session, message.holder)
      })
  }
}

/** Who opened a session, as its record says. */
export const thisReplica = `${hostname()}/${process.pid}`

/** Records in the cluster's Redis with `cluster`, nothing shared otherwise. */
export const sharedUpstreamSessionsFromCluster: Effect.Effect<SharedUpstreamSessionsService, never, ClusterRedis | GatewayConfig | ReplicaBus> = Effect.gen(
  function*() {
    const { redis } = yield* ClusterRedis
    const { server } = yield* GatewayConfig
    return Option.isSome(redis)
      ? makeRedisUpstreamSessions({
        client: redis.value.client,
        keyPrefix: redis.value.settings.keyPrefix,
        idleTimeout: server.sessionIdleTimeout,
        bus: yield* ReplicaBus
      })
      : localUpstreamSessions
  }
)
