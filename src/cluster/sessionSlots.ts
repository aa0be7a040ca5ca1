/**
 * How many 2025-era sessions each caller (login) holds, against `server.sessionsPerCaller`.
 *
 * In one process the count is a `Map` of numbers, as it always was. In a cluster it is a sorted
 * set per login in Redis (`<keyPrefix>slots:<login>`: member = session id, score = when the slot
 * expires unless touched, in Redis' own clock), so the cap counts every replica's sessions and a
 * dead replica's slots lapse after the idle timeout. Taking a slot is one script (drop lapsed
 * members, count, add if under the cap), so initializes racing on several replicas cannot
 * overshoot the cap.
 * @module
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { GatewayConfig } from "../config/GatewayConfig.js"
import { ClusterRedis } from "./ClusterRedis.js"
import { type CommandClient, sendQuietly, sharedCommand, SharedStateUnavailable } from "./sharedCommand.js"

/** `"taken"`, or the caller is at its cap and holds `full` sessions. */
export type SlotTaken = "taken" | { readonly full: number }

export interface SessionSlotsService {
  /** Takes a slot for `sessionId` unless `login` already holds `server.sessionsPerCaller`. */
  readonly take: (login: string, sessionId: string) => Effect.Effect<SlotTaken, SharedStateUnavailable>
  /** Gives the slot back (fire and forget: called where sessions end, in the SDK's callbacks too). */
  readonly release: (login: string, sessionId: string) => void
  /** Keeps the slot of a session still in use from lapsing (fire and forget). */
  readonly touch: (login: string, sessionId: string) => void
  /**
   * How often a session in use must be touched so its slot does not lapse; `undefined` when
   * slots never lapse (one process: nothing to touch, no timer).
   */
  readonly touchEvery: Duration.Duration | undefined
}

export class SessionSlots extends Context.Tag("aperture/SessionSlots")<SessionSlots, SessionSlotsService>() {}

/** One process: a count per login, kept as sessions come and go (no scan per initialize). */
export const makeLocalSessionSlots = (perCaller: number): SessionSlotsService => {
  const held = new Map<string, number>()
  return {
    take: (login) =>
      Effect.sync(() => {
        const count = held.get(login) ?? 0
        if (count >= perCaller) return { full: count }
        held.set(login, count + 1)
        return "taken"
      }),
    release: (login) => {
      const left = (held.get(login) ?? 1) - 1
      if (left > 0) held.set(login, left)
      else held.delete(login)
    },
    touch: () => {},
    touchEvery: undefined
  }
}

/** A login's key outlives its last slot by this much, so a quiet login leaves nothing behind. */
const KEY_TTL_MARGIN_MS = 60_000

/** Redis' clock in ms, so replicas' clocks never disagree about a slot. */
const NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)"

/**
 * KEYS[1] the login's set; ARGV idle ms, cap, session id, key TTL ms.
 * Returns -1 when taken (or already held), else how many slots the login holds.
 */
const TAKE = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return -1 end
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[2]) then return held end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return -1`

/** KEYS[1] the login's set; ARGV idle ms, session id, key TTL ms. Re-adds a slot Redis lost (a restart). */
const TOUCH = `${NOW}
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`

export interface RedisSessionSlotsOptions {
  readonly client: CommandClient
  readonly keyPrefix: string
  readonly perCaller: number
  /** `server.sessionIdleTimeout`: a slot not touched for this long lapses. */
  readonly idleTimeout: Duration.Duration
}

/** A cluster: slots in Redis, counted across replicas. */
export const makeRedisSessionSlots = (options: RedisSessionSlotsOptions): SessionSlotsService => {
  const { client, keyPrefix, perCaller } = options
  const idleMs = Math.max(1, Math.ceil(Duration.toMillis(options.idleTimeout)))
  const idle = String(idleMs)
  const keyTtl = String(idleMs + KEY_TTL_MARGIN_MS)
  const cap = String(perCaller)
  const keyOf = (login: string) => `${keyPrefix}slots:${login}`
  /** Fire and forget: a slot not released lapses at its expiry, one not touched is re-added at the next touch. */
  const send = (args: ReadonlyArray<string>) => sendQuietly(client, args)
  return {
    take: (login, sessionId) =>
      sharedCommand(client, ["EVAL", TAKE, "1", keyOf(login), idle, cap, sessionId, keyTtl]).pipe(
        Effect.flatMap((reply) =>
          typeof reply === "number"
            ? Effect.succeed<SlotTaken>(reply < 0 ? "taken" : { full: reply })
            : Effect.fail(new SharedStateUnavailable({ reason: `unexpected reply ${JSON.stringify(reply)}` }))
        )
      ),
    release: (login, sessionId) => send(["ZREM", keyOf(login), sessionId]),
    touch: (login, sessionId) => send(["EVAL", TOUCH, "1", keyOf(login), idle, sessionId, keyTtl]),
    // Well inside the idle timeout, and no busier than every 5 s per session.
    touchEvery: Duration.millis(Math.max(250, Math.min(5_000, Math.floor(idleMs / 3))))
  }
}

/**
 * The wiring for the composition root: slots in the cluster's Redis when `cluster` is configured,
 * a count in this process otherwise.
 */
export const sessionSlotsFromCluster: Layer.Layer<SessionSlots, never, ClusterRedis | GatewayConfig> = Layer.effect(
  SessionSlots,
  Effect.gen(function*() {
    const { redis } = yield* ClusterRedis
    const { server } = yield* GatewayConfig
    return Option.isSome(redis)
      ? makeRedisSessionSlots({
        client: redis.value.client,
        keyPrefix: redis.value.settings.keyPrefix,
        perCaller: server.sessionsPerCaller,
        idleTimeout: server.sessionIdleTimeout
      })
      : makeLocalSessionSlots(server.sessionsPerCaller)
  })
)
