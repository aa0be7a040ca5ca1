/**
 * Messages between replicas, and which replicas are alive.
 *
 * A 2025-era session's requests may each land on a different replica: the caller's answer to a
 * sampling request reaches a replica other than the one whose call asked, a DELETE ends a session
 * others hold too. Each replica has a random id ({@link ReplicaBusService.replica}); a message goes
 * to one replica by id or to all. In a cluster that is Redis pub/sub (one subscriber connection per
 * replica, channels `<keyPrefix>bus:<replica>` and `<keyPrefix>bus:all`), and each replica keeps a
 * heartbeat key (`<keyPrefix>replica:<id>`, a few seconds' TTL) so others can tell it is gone.
 *
 * In one process the bus delivers to this process' own listeners and the only replica is alive.
 * Delivery is at most once either way: a message lost with Redis is a call that ends with an error,
 * never a hang (every wait it would end has its own timeout).
 * @module
 */
import { randomBytes } from "node:crypto"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { ConnectedRedis } from "./ClusterRedis.js"
import { ClusterRedis } from "./ClusterRedis.js"
import { sendQuietly, sharedCommand, type SharedStateUnavailable } from "./sharedCommand.js"

export type BusListener = (message: unknown) => void

export interface ReplicaBusService {
  /** This replica's id: short, random per process. */
  readonly replica: string
  /** Sends `message` (JSON) to one replica's listeners (fire and forget). */
  readonly toReplica: (replica: string, message: unknown) => void
  /** Sends `message` (JSON) to every other replica's listeners (fire and forget). */
  readonly toOthers: (message: unknown) => void
  /** Sends `message` (JSON) to every replica's listeners, this one's too (after this call returns). */
  readonly toAll: (message: unknown) => void
  /** Hears what other replicas send here, for the life of the scope. */
  readonly listen: (listener: BusListener) => Effect.Effect<void, never, Scope.Scope>
  /** Whether `replica` still beats. */
  readonly isAlive: (replica: string) => Effect.Effect<boolean, SharedStateUnavailable>
}

export class ReplicaBus extends Context.Tag("aperture/ReplicaBus")<ReplicaBus, ReplicaBusService>() {}

/** How often a replica renews its heartbeat, and how long the heartbeat outlives the last renewal. */
const HEARTBEAT_EVERY = Duration.seconds(1)
export const HEARTBEAT_TTL_MS = 4_000

const newReplicaId = () => randomBytes(6).toString("base64url")

/** One process: it is the only replica, and nobody else sends it anything. */
export const makeLocalReplicaBus = (): ReplicaBusService => {
  const replica = newReplicaId()
  return {
    replica,
    toReplica: () => {},
    toOthers: () => {},
    // Nothing listens in one process (`listen` registers nobody).
    toAll: () => {},
    listen: () => Effect.void,
    isAlive: (other) => Effect.succeed(other === replica)
  }
}

/** A cluster: pub/sub and heartbeats in Redis. */
export const makeRedisReplicaBus = (redis: ConnectedRedis): Effect.Effect<ReplicaBusService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { client, settings } = redis
    const prefix = settings.keyPrefix
    const replica = newReplicaId()
    const channelOf = (id: string) => `${prefix}bus:${id}`
    const allChannel = `${prefix}bus:all`
    const beatKey = (id: string) => `${prefix}replica:${id}`
    const listeners = new Set<BusListener>()
    const deliver = (text: string) => {
      let parsed: { readonly from?: unknown; readonly body?: unknown }
      try {
        parsed = JSON.parse(text)
      } catch {
        return
      }
      // A message to all comes back to its sender too: it is for the others.
      if (parsed.from === replica) return
      for (const listener of listeners) listener(parsed.body)
    }
    // Subscribing takes a connection of its own (RESP2 allows nothing else on it); it reconnects
    // and resubscribes by itself, as the main client does.
    const subscriber = client.duplicate()
    subscriber.on("error", () => {}) // the main client's health already says Redis is down
    yield* Effect.acquireRelease(
      Effect.promise(async () => {
        await subscriber.connect().catch(() => {})
        await subscriber.subscribe([channelOf(replica), allChannel], (message) => deliver(message)).catch(() => {})
      }),
      () => Effect.sync(() => subscriber.destroy())
    )
    const beat = Effect.sync(() => sendQuietly(client, ["SET", beatKey(replica), "1", "PX", String(HEARTBEAT_TTL_MS)]))
    yield* beat.pipe(Effect.repeat(Schedule.spaced(HEARTBEAT_EVERY)), Effect.forkScoped)
    // A replica shutting down says so at once; one killed is gone when its heartbeat lapses.
    yield* Effect.addFinalizer(() => Effect.sync(() => sendQuietly(client, ["DEL", beatKey(replica)])))
    const publish = (channel: string, body: unknown) =>
      sendQuietly(client, ["PUBLISH", channel, JSON.stringify({ from: replica, body })])
    return {
      replica,
      toReplica: (to, body) => publish(channelOf(to), body),
      toOthers: (body) => publish(allChannel, body),
      toAll: (body) => {
        publish(allChannel, body)
        // Not through Redis and back: its echo is dropped as this replica's own.
        queueMicrotask(() => {
          for (const listener of listeners) listener(body)
        })
      },
      listen: (listener) =>
        Effect.acquireRelease(Effect.sync(() => listeners.add(listener)), () => Effect.sync(() => listeners.delete(listener))),
      isAlive: (other) =>
        other === replica
          ? Effect.succeed(true)
          : Effect.map(sharedCommand(client, ["EXISTS", beatKey(other)]), (reply) => Number(reply) === 1)
    } satisfies ReplicaBusService
  })

/** Redis pub/sub with `cluster`, this process alone otherwise. */
export const replicaBusFromCluster: Layer.Layer<ReplicaBus, never, ClusterRedis> = Layer.scoped(
  ReplicaBus,
  Effect.gen(function*() {
    const { redis } = yield* ClusterRedis
    return Option.isSome(redis) ? yield* makeRedisReplicaBus(redis.value) : makeLocalReplicaBus()
  })
)
