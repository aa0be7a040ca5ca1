/**
 * What any replica needs to serve a 2025-era session it did not open: the caller bound to it and
 * the client's `initialize` (replayed to build the session there), and the log level it asked for.
 *
 * In one process there is nothing to share: the sessions in memory are the records, and
 * {@link SessionRecordsService.shared} is `false` (no lookup per request). In a cluster each
 * record is a hash in Redis (`<keyPrefix>session:<id>`) that lives for `server.sessionIdleTimeout`
 * unless touched: replicas using a session touch it on a timer, and a touch puts back a record
 * Redis lost (a restart without persistence), so sessions survive Redis coming back empty.
 * @module
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { GatewayConfig } from "../config/GatewayConfig.js"
import { ClusterRedis } from "./ClusterRedis.js"
import { type CommandClient, sendQuietly, sharedCommand, type SharedStateUnavailable } from "./sharedCommand.js"

/** A session's record, as stored (JSON); decoded with {@link SessionRecord} when read back. */
export const SessionRecord = Schema.Struct({
  /** The caller who opened it, in everything grants read: anyone else is told it does not exist. */
  caller: Schema.Struct({
    login: Schema.String,
    via: Schema.String,
    groups: Schema.Array(Schema.String),
    tags: Schema.Array(Schema.String)
  }),
  /** The client's `initialize` params, as it sent them. */
  initialize: Schema.Record({ key: Schema.String, value: Schema.Unknown })
})
export type SessionRecord = typeof SessionRecord.Type

/** A stored record and the level its session asked for with `logging/setLevel`, if any. */
export interface LoadedRecord {
  readonly record: SessionRecord
  readonly logLevel: string | undefined
}

export interface SessionRecordsService {
  /** Whether records are shared with other replicas; `false` in one process (nothing to look up). */
  readonly shared: boolean
  /** Stores a new session's record; the session is usable elsewhere once this succeeds. */
  readonly save: (id: string, record: string) => Effect.Effect<void, SharedStateUnavailable>
  /** The record of session `id`, or `undefined` when there is none (ended, lapsed, never was). */
  readonly load: (id: string) => Effect.Effect<LoadedRecord | undefined, SharedStateUnavailable>
  /** Keeps a session in use from lapsing, and restores its record if Redis lost it (fire and forget). */
  readonly touch: (id: string, record: string) => void
  /** Remembers the session's log level for the replicas that build it later (fire and forget). */
  readonly setLogLevel: (id: string, level: string) => void
  /** The session ended (DELETE): forget it (fire and forget; it lapses anyway). */
  readonly remove: (id: string) => void
  /** The resources the session subscribed to (exposed URIs), wherever it did. */
  readonly subscriptions: (id: string) => Effect.Effect<ReadonlyArray<string>, SharedStateUnavailable>
  /** Remembers (or forgets) a subscription of the session (fire and forget). */
  readonly subscribed: (id: string, uri: string, yes: boolean) => void
  /**
   * Which connection to Redis this is (counts reconnections): when it changes, Redis may have
   * come back empty, and every session held here should be touched, used lately or not.
   */
  readonly connection: () => number
}

export class SessionRecords extends Context.Tag("aperture/SessionRecords")<SessionRecords, SessionRecordsService>() {}

/** One process: the sessions in memory are all there is. */
export const localSessionRecords: SessionRecordsService = {
  shared: false,
  save: () => Effect.void,
  load: () => Effect.succeed(undefined),
  touch: () => {},
  setLogLevel: () => {},
  remove: () => {},
  subscriptions: () => Effect.succeed([]),
  subscribed: () => {},
  connection: () => 0
}

/** KEYS[1] the record; ARGV record JSON, ttl ms. */
const SAVE = `redis.call('HSET', KEYS[1], 'record', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`

/**
 * KEYS[1] the record, KEYS[2] its subscriptions, KEYS[3] its end mark; ARGV record JSON, ttl ms.
 * Extends them, or puts the record back when Redis lost it — never one a DELETE ended (a copy on
 * another replica may touch before it hears of the DELETE: it must not bring the session back).
 */
const TOUCH = `if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if redis.call('PEXPIRE', KEYS[1], ARGV[2]) == 0 then
  redis.call('HSET', KEYS[1], 'record', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1`

/** KEYS[1] the record, KEYS[2] its subscriptions, KEYS[3] its end mark; ARGV ttl ms. The mark outlives any copy's touch. */
const REMOVE = `redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[1])
return 1`

/** KEYS[1] the subscriptions; ARGV uri, ttl ms. */
const SUBSCRIBE = `redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`

/** KEYS[1] the record; ARGV level. Only on a record that exists: a lapsed session stays lapsed. */
const SET_LEVEL = `if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'logLevel', ARGV[1]) end
return 1`

const decodeRecord = Schema.decodeUnknownOption(Schema.parseJson(SessionRecord))

export interface RedisSessionRecordsOptions {
  readonly client: CommandClient
  /** See {@link SessionRecordsService.connection}. */
  readonly connection: () => number
  readonly keyPrefix: string
  /** `server.sessionIdleTimeout`: a record not touched for this long lapses. */
  readonly idleTimeout: Duration.Duration
}

/** A cluster: records in Redis, any replica serves any session. */
export const makeRedisSessionRecords = ({ client, connection, idleTimeout, keyPrefix }: RedisSessionRecordsOptions): SessionRecordsService => {
  const ttl = String(Math.max(1, Math.ceil(Duration.toMillis(idleTimeout))))
  const keyOf = (id: string) => `${keyPrefix}session:${id}`
  const subsOf = (id: string) => `${keyPrefix}session:${id}:subs`
  const endedOf = (id: string) => `${keyPrefix}session:${id}:ended`
  return {
    shared: true,
    save: (id, record) => Effect.asVoid(sharedCommand(client, ["EVAL", SAVE, "1", keyOf(id), record, ttl])),
    load: (id) =>
      Effect.map(sharedCommand(client, ["HGETALL", keyOf(id)]), (reply) => {
        // RESP2 answers a flat [field, value, …] list, RESP3 a map.
        const fields: Record<string, unknown> = Array.isArray(reply)
          ? Object.fromEntries(Array.from({ length: reply.length / 2 }, (_, i) => [String(reply[2 * i]), reply[2 * i + 1]]))
          : (reply ?? {}) as Record<string, unknown>
        const record = typeof fields["record"] === "string" ? decodeRecord(fields["record"]) : Option.none()
        if (Option.isNone(record)) return undefined
        const level = fields["logLevel"]
        return { record: record.value, logLevel: typeof level === "string" ? level : undefined }
      }),
    touch: (id, record) => sendQuietly(client, ["EVAL", TOUCH, "3", keyOf(id), subsOf(id), endedOf(id), record, ttl]),
    setLogLevel: (id, level) => sendQuietly(client, ["EVAL", SET_LEVEL, "1", keyOf(id), level]),
    remove: (id) => sendQuietly(client, ["EVAL", REMOVE, "3", keyOf(id), subsOf(id), endedOf(id), ttl]),
    subscriptions: (id) =>
      Effect.map(sharedCommand(client, ["SMEMBERS", subsOf(id)]), (reply) => (Array.isArray(reply) ? reply.map(String) : [])),
    subscribed: (id, uri, yes) =>
      sendQuietly(client, yes ? ["EVAL", SUBSCRIBE, "1", subsOf(id), uri, ttl] : ["SREM", subsOf(id), uri]),
    connection
  }
}

/** Records in the cluster's Redis with `cluster`, none to share otherwise. */
export const sessionRecordsFromCluster: Layer.Layer<SessionRecords, never, ClusterRedis | GatewayConfig> = Layer.effect(
  SessionRecords,
  Effect.gen(function*() {
    const { redis } = yield* ClusterRedis
    const { server } = yield* GatewayConfig
    return Option.isSome(redis)
      ? makeRedisSessionRecords({
        client: redis.value.client,
        connection: redis.value.connections,
        keyPrefix: redis.value.settings.keyPrefix,
        idleTimeout: server.sessionIdleTimeout
      })
      : localSessionRecords
  })
)
