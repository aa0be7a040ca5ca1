/**
 * The events of the calls a replica answers on 2025-era sessions, kept where any replica can read
 * them, so a client whose call stream broke resumes it (`GET` with `Last-Event-ID`) on whichever
 * replica the balancer picks: that replica replays what the client missed and follows the rest
 * as the running replica writes it, until the call's answer, or until that replica is gone (then
 * the caller is told the call's outcome is unknown: an error, never a hang).
 *
 * In a cluster each call's stream is a Redis stream (`<keyPrefix>events:<stream id>`, at most
 * ~{@link MAX_ENTRIES} entries, gone {@link EVENT_TTL_MS} after its last event): an opening entry
 * naming the call and the replica running it, one entry per event, and an end mark, none waited
 * on (a quick call writes none of it: see `callEventStream.ts`). The SDK path's request streams
 * (`prompts/get`, `resources/read`, batches, …) are kept the same way (`era2025/sharedSdkStreams.ts`). In one process the session's own
 * event store is enough: {@link SharedEventLogService.shared} is `false` and nothing is written.
 * @module
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { ClusterRedis, type ConnectedRedis } from "./ClusterRedis.js"
import { ReplicaBus } from "./replicaBus.js"
import { type CommandClient, sendQuietly, sharedCommand, SharedStateUnavailable } from "./sharedCommand.js"

/** As long as the session's own event store keeps events (`eventStore.ts`' MAX_AGE_MS). */
export const EVENT_TTL_MS = 2 * 60_000
export const MAX_ENTRIES = 1_000
/** How long one blocking read waits before checking the running replica still beats. */
const FOLLOW_POLL_MS = 2_000

export type RequestId = string | number

/** Who answers a stream: the JSON-RPC id of its call, the replica running it, and the session it belongs to. */
export interface StreamOwner {
  readonly callId: RequestId
  readonly replica: string
  /** Only this session may resume the stream: another one's `Last-Event-ID` finds nothing (docs/security.md). */
  readonly session: string
  /** Every request the stream answers, when it answers more than one (a 2025-03-26 batch). */
  readonly batch?: ReadonlyArray<RequestId>
}

/** How a follow ended: the call's stream ended, its replica is gone, or no such stream is known. */
export type FollowEnd =
  | { readonly _tag: "Ended" }
  | { readonly _tag: "OwnerGone"; readonly owner: StreamOwner; readonly unanswered: ReadonlyArray<RequestId> }
  | { readonly _tag: "Unknown" }

export interface SharedEventLogService {
  readonly shared: boolean
  /** A call's stream starts (fire and forget, as are the two below: written in order on one connection). */
  readonly open: (streamId: string, owner: StreamOwner) => void
  /**
   * One event of it: its id and its SSE data (the message's JSON), and the request it answers
   * when it is an answer (given by streams answering several: see `StreamOwner.batch`).
   */
  readonly append: (streamId: string, eventId: string, data: string, answers?: RequestId) => void
  /** The stream ended. */
  readonly end: (streamId: string) => void
  /**
   * Writes the events of `streamId` after `lastEventId` with `write`, then those still to come,
   * until the stream ends or its replica is gone. Interrupting it (the client left) stops it.
   * A stream of another session than `sessionId` is `Unknown`, and nothing of it is written.
   */
  readonly follow: (
    streamId: string,
    sessionId: string,
    lastEventId: string,
    write: (eventId: string, data: string) => void
  ) => Effect.Effect<FollowEnd, SharedStateUnavailable>
  /**
   * This replica holds session `sessionId`'s GET stream (its first opened here, or a touch while
   * open, for `ttlMs`): messages outside any request go to it. The messages kept while no replica
   * held one are handed over (and forgotten).
   */
  readonly holdGetStream: (sessionId: string, ttlMs: number) => Effect.Effect<ReadonlyArray<string>, SharedStateUnavailable>
  /** This replica's last GET stream of the session ended (fire and forget). */
  readonly releaseGetStream: (sessionId: string) => void
  /**
   * Where a message outside any request (its JSON) goes: the replica holding the session's GET
   * stream, if one does and is alive (not this one), else it is kept for the next holder
   * (`undefined`), at most {@link MAX_KEPT_OUTSIDE} for {@link KEPT_OUTSIDE_TTL_MS}.
   */
  readonly routeOutside: (sessionId: string, data: string) => Effect.Effect<string | undefined, SharedStateUnavailable>
  /**
   * A message outside any request reached this replica, which holds no GET stream of the session:
   * the replica holding one now (it delivers it), or else it is kept for the next holder, once
   * (the same message heard by several replicas is kept once).
   */
  readonly keepOutside: (sessionId: string, data: string) => Effect.Effect<string | undefined, SharedStateUnavailable>
}

export class SharedEventLog extends Context.Tag("aperture/SharedEventLog")<SharedEventLog, SharedEventLogService>() {}

export const localEventLog: SharedEventLogService = {
  shared: false,
  open: () => {},
  append: () => {},
  end: () => {},
  follow: () => Effect.succeed({ _tag: "Unknown" }),
  holdGetStream: () => Effect.succeed([]),
  releaseGetStream: () => {},
  routeOutside: () => Effect.succeed(undefined),
  keepOutside: () => Effect.succeed(undefined)
}

/** Messages outside any request kept for a session while no replica holds its GET stream, and for how long. */
export const MAX_KEPT_OUTSIDE = 100
export const KEPT_OUTSIDE_TTL_MS = 2 * 60_000

/** KEYS[1] the holder key, KEYS[2] the kept messages; ARGV this replica, ttl ms. Claims the stream, returns what was kept. */
const HOLD_GET_STREAM = `redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local kept = redis.call('LRANGE', KEYS[2], 0, -1)
if #kept > 0 then redis.call('DEL', KEYS[2]) end
return kept`

/** KEYS[1] the holder key; ARGV this replica. */
const RELEASE_GET_STREAM = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`

/**
 * KEYS[1] the holder key, KEYS[2] the kept messages; ARGV this replica, the heartbeat key prefix,
 * max, ttl ms, the message, "1" to keep it only if not kept already. The holder (alive, not this
 * replica), or the message is kept.
 */
const ROUTE_OUTSIDE = `local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. holder) == 1 then return holder end
if ARGV[6] == '1' and redis.call('LPOS', KEYS[2], ARGV[5]) then return false end
redis.call('RPUSH', KEYS[2], ARGV[5])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return false`

/** KEYS[1] the stream; ARGV ttl ms, max entries, then field/value pairs of the entry. */
const APPEND = `redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`

type Entry = readonly [id: string, fields: Record<string, string>]

/** `[[id, [field, value, …]], …]` (XRANGE, and each stream of an XREAD reply). */
const entriesOf = (reply: unknown): ReadonlyArray<Entry> =>
  Array.isArray(reply)
    ? reply.map(([id, flat]: [string, Array<string>]) => {
      const fields: Record<string, string> = {}
      for (let i = 0; i + 1 < flat.length; i += 2) fields[String(flat[i])] = String(flat[i + 1])
      return [String(id), fields] as const
    })
    : []

/** The entries of the one stream an XREAD reply holds: `[[key, entries]]` (RESP2) or `{ key: entries }` (node-redis maps it); `null` on timeout. */
const entriesOfOneStream = (reply: unknown): unknown =>
  Array.isArray(reply) ? (reply[0] as [string, unknown] | undefined)?.[1]
  : typeof reply === "object" && reply !== null ? Object.values(reply)[0]
  : undefined

/** The sequence number of an event id `<stream>.<sequence>`. */
const sequenceOf = (eventId: string) => Number(eventId.slice(eventId.lastIndexOf(".") + 1))

export const makeRedisEventLog = (
  redis: ConnectedRedis,
  isAlive: (replica: string) => Effect.Effect<boolean, SharedStateUnavailable>,
  replica: string
): SharedEventLogService => {
  const client: CommandClient = redis.client
  const keyOf = (streamId: string) => `${redis.settings.keyPrefix}events:${streamId}`
  /** Which replica holds a session's GET stream, and the messages kept for the next holder. */
  const holderKey = (sessionId: string) => `${redis.settings.keyPrefix}session:${sessionId}:getstream`
  const keptKey = (sessionId: string) => `${redis.settings.keyPrefix}session:${sessionId}:outside`
  const ttl = String(EVENT_TTL_MS)
  const max = String(MAX_ENTRIES)
  const add = (streamId: string, fields: ReadonlyArray<string>) =>
    sendQuietly(client, ["EVAL", APPEND, "1", keyOf(streamId), ttl, max, ...fields])

  const routeOutside = (sessionId: string, data: string, once: "0" | "1") =>
    Effect.map(
      sharedCommand(client, [
        "EVAL", ROUTE_OUTSIDE, "2", holderKey(sessionId), keptKey(sessionId),
        replica, `${redis.settings.keyPrefix}replica:`, String(MAX_KEPT_OUTSIDE), String(KEPT_OUTSIDE_TTL_MS), data, once
      ]),
      (reply) => typeof reply === "string" ? reply : undefined
    )

  const follow: SharedEventLogService["follow"] = (streamId, sessionId, lastEventId, write) =>
    Effect.gen(function*() {
      const key = keyOf(streamId)
      const after = sequenceOf(lastEventId)
      let owner: StreamOwner | undefined
      const answered = new Set<RequestId>()
      let last = "0"
      /** Writes the entries not seen yet; `true` at the end mark. */
      const take = (entries: ReadonlyArray<Entry>): boolean => {
        for (const [id, fields] of entries) {
          last = id
          if (fields["owner"] !== undefined) owner ??= JSON.parse(fields["owner"]) as StreamOwner
          else if (fields["end"] !== undefined) return true
          else if (fields["e"] !== undefined && fields["d"] !== undefined) {
            if (fields["a"] !== undefined) answered.add(JSON.parse(fields["a"]) as RequestId)
            if (sequenceOf(fields["e"]) > after) write(fields["e"], fields["d"])
          }
        }
        return false
      }
      const stored = entriesOf(yield* sharedCommand(client, ["XRANGE", key, "-", "+"]))
      // Another session's stream (a leaked event id) is answered as no stream: nothing replayed,
      // nothing followed. One whose opening entry is gone (trimmed) cannot be told apart: refused too.
      const opening = stored[0]?.[1]["owner"]
      if (opening === undefined || (JSON.parse(opening) as Partial<StreamOwner>).session !== sessionId) {
        return { _tag: "Unknown" } as const
      }
      if (take(stored)) return { _tag: "Ended" } as const
      // A blocking read holds its connection: one of its own, for as long as this follow lasts.
      const reader = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: async () => {
            const connection = redis.client.duplicate()
            connection.on("error", () => {})
            await connection.connect()
            return connection
          },
          catch: (error) => new SharedStateUnavailable({ reason: error instanceof Error ? error.message : String(error) })
        }),
        (connection) => Effect.sync(() => connection.destroy())
      )
      for (;;) {
        const reply = yield* Effect.tryPromise({
          try: () => reader.sendCommand(["XREAD", "BLOCK", String(FOLLOW_POLL_MS), "STREAMS", key, last]),
          catch: (error) => new SharedStateUnavailable({ reason: error instanceof Error ? error.message : String(error) })
        })
        const fresh = entriesOf(entriesOfOneStream(reply))
        if (fresh.length > 0) {
          if (take(fresh)) return { _tag: "Ended" } as const
        } else if (owner !== undefined && !(yield* isAlive(owner.replica))) {
          const unanswered = (owner.batch ?? [owner.callId]).filter((id) => !answered.has(id))
          return { _tag: "OwnerGone", owner, unanswered } as const
        }
      }
    }).pipe(Effect.scoped)

  return {
    shared: true,
    open: (streamId, owner) => add(streamId, ["owner", JSON.stringify(owner)]),
    append: (streamId, eventId, data, answers) =>
      add(streamId, answers === undefined ? ["e", eventId, "d", data] : ["e", eventId, "d", data, "a", JSON.stringify(answers)]),
    end: (streamId) => add(streamId, ["end", "1"]),
    follow,
    holdGetStream: (sessionId, ttlMs) =>
      Effect.map(
        sharedCommand(client, ["EVAL", HOLD_GET_STREAM, "2", holderKey(sessionId), keptKey(sessionId), replica, String(ttlMs)]),
        (reply) => Array.isArray(reply) ? reply.map(String) : []
      ),
    releaseGetStream: (sessionId) => sendQuietly(client, ["EVAL", RELEASE_GET_STREAM, "1", holderKey(sessionId), replica]),
    routeOutside: (sessionId, data) => routeOutside(sessionId, data, "0"),
    keepOutside: (sessionId, data) => routeOutside(sessionId, data, "1")
  }
}

/** Call streams in Redis with `cluster`; nothing to share otherwise. */
export const sharedEventLogFromCluster: Layer.Layer<SharedEventLog, never, ClusterRedis | ReplicaBus> = Layer.effect(
  SharedEventLog,
  Effect.gen(function*() {
    const { redis } = yield* ClusterRedis
    const bus = yield* ReplicaBus
    return Option.isSome(redis) ? makeRedisEventLog(redis.value, bus.isAlive, bus.replica) : localEventLog
  })
)
