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
import { ClusterRedis } from "./ClusterRedis.js"
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
  /** The replica (host/pid) that opened it, which holds its GET stream: for people reading Redis. */
  openedBy: Schema.String
})
export type UpstreamSessionRecord = typeof UpstreamSessionRecord.Type

export interface SharedUpstreamSessionsService {
  /** Whether sessions are shared with other replicas; `false` in one process (nothing is looked up). */
  readonly shared: boolean
  /** How often a replica using a session touches it. */
  readonly touchEvery: number
  /** How long a replica keeps an unused copy: the idle timeout plus {@link touchEvery}, the most a touch can lag. */
  readonly keepIdleCopyFor: number
  /** The caller's recorded session with the connector, if any. */
  readonly find: (connectorId: string, login: string) => Effect.Effect<UpstreamSessionRecord | undefined, SharedStateUnavailable>
  /** Records a session just opened unless another replica recorded one first: then that one (join it, end ours). */
  readonly claim: (connectorId: string, login: string, record: UpstreamSessionRecord) => Effect.Effect<UpstreamSessionRecord | undefined, SharedStateUnavailable>
  /** The session is in use now (fire and forget); puts its record back if Redis lost it. */
  readonly touch: (connectorId: string, login: string, record: UpstreamSessionRecord) => void
  /**
   * This replica drops its copy, unused for `idleMillis`: whether to end the session upstream. Yes
   * when no replica has used it for {@link keepIdleCopyFor} (the record is removed) or it is no
   * longer the recorded one; no while another replica may still use it.
   */
  readonly release: (connectorId: string, login: string, sessionId: string, idleMillis: number) => Effect.Effect<boolean, SharedStateUnavailable>
  /** The session failed (the upstream forgot it, say): remove the record if it is still this session. */
  readonly forget: (connectorId: string, login: string, sessionId: string) => Effect.Effect<void, SharedStateUnavailable>
}

/** One process: every caller session is this replica's own. */
export const localUpstreamSessions: SharedUpstreamSessionsService = {
  shared: false,
  touchEvery: Infinity,
  keepIdleCopyFor: 0,
  find: () => Effect.succeed(undefined),
  claim: () => Effect.succeed(undefined),
  touch: () => {},
  release: () => Effect.succeed(true),
  forget: () => Effect.void
}

/** Redis' clock in milliseconds, inside a script (replicas' clocks never compared with each other). */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

/** KEYS[1] the record; ARGV session id, record JSON, ttl ms. Returns the existing record, or nil once ours is stored. */
const CLAIM = `${NOW}if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HGET', KEYS[1], 'record') end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'record', ARGV[2], 'lastUsed', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return false`

/** KEYS[1] the record; ARGV session id, record JSON, ttl ms. Only the recorded session; puts a lost record back. */
const TOUCH = `${NOW}local id = redis.call('HGET', KEYS[1], 'id')
if id == false then redis.call('HSET', KEYS[1], 'id', ARGV[1], 'record', ARGV[2])
elseif id ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'lastUsed', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`

/**
 * KEYS[1] the record; ARGV session id, ms since this replica last used it, ms unused that ends it.
 * 1: end it (removed, or not the recorded session); 0: keep it (used lately somewhere).
 */
const RELEASE = `${NOW}if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return 1 end
local last = math.max(tonumber(redis.call('HGET', KEYS[1], 'lastUsed') or '0'), now - tonumber(ARGV[2]))
if last < now - tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('HSET', KEYS[1], 'lastUsed', tostring(last))
return 0`

/** KEYS[1] the record; ARGV session id. A compare-and-delete: a newer session recorded meanwhile stays. */
const FORGET = `if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`

const decodeRecord = Schema.decodeUnknownOption(Schema.parseJson(UpstreamSessionRecord))
const encodeRecord = Schema.encodeSync(Schema.parseJson(UpstreamSessionRecord))
const parsed = (reply: unknown) => (typeof reply === "string" ? Option.getOrUndefined(decodeRecord(reply)) : undefined)

export interface RedisUpstreamSessionsOptions {
  readonly client: CommandClient
  readonly keyPrefix: string
  /** `server.sessionIdleTimeout`: a session no replica used for this long is ended. */
  readonly idleTimeout: Duration.Duration
}

/** A cluster: records in Redis, one upstream session per caller and connector for every replica. */
export const makeRedisUpstreamSessions = ({ client, idleTimeout, keyPrefix }: RedisUpstreamSessionsOptions): SharedUpstreamSessionsService => {
  const idle = Math.max(1, Math.ceil(Duration.toMillis(idleTimeout)))
  const touchEvery = Math.ceil(idle / 4)
  const keepIdleCopyFor = idle + touchEvery
  // Outlives the replicas' reaping (every idle / 2 at most), so one of them ends the session
  // upstream; lapses by itself when every replica using it is gone.
  const ttl = String(2 * idle)
  const keyOf = (connectorId: string, login: string) => `${keyPrefix}upstream:${connectorId}:${login}`
  return {
    shared: true,
    touchEvery,
    keepIdleCopyFor,
    find: (connectorId, login) => Effect.map(sharedCommand(client, ["HGET", keyOf(connectorId, login), "record"]), parsed),
    claim: (connectorId, login, record) =>
      Effect.map(sharedCommand(client, ["EVAL", CLAIM, "1", keyOf(connectorId, login), record.sessionId, encodeRecord(record), ttl]), parsed),
    touch: (connectorId, login, record) =>
      sendQuietly(client, ["EVAL", TOUCH, "1", keyOf(connectorId, login), record.sessionId, encodeRecord(record), ttl]),
    release: (connectorId, login, sessionId, idleMillis) =>
      Effect.map(
        sharedCommand(client, ["EVAL", RELEASE, "1", keyOf(connectorId, login), sessionId, String(Math.max(0, Math.floor(idleMillis))), String(keepIdleCopyFor)]),
        (reply) => Number(reply) === 1
      ),
    forget: (connectorId, login, sessionId) => Effect.asVoid(sharedCommand(client, ["EVAL", FORGET, "1", keyOf(connectorId, login), sessionId]))
  }
}

/** Who opened a session, as its record says. */
export const thisReplica = `${hostname()}/${process.pid}`

/** Records in the cluster's Redis with `cluster`, nothing shared otherwise. */
export const sharedUpstreamSessionsFromCluster: Effect.Effect<SharedUpstreamSessionsService, never, ClusterRedis | GatewayConfig> = Effect.gen(
  function*() {
    const { redis } = yield* ClusterRedis
    const { server } = yield* GatewayConfig
    return Option.isSome(redis)
      ? makeRedisUpstreamSessions({ client: redis.value.client, keyPrefix: redis.value.settings.keyPrefix, idleTimeout: server.sessionIdleTimeout })
      : localUpstreamSessions
  }
)
