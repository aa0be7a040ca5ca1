/**
 * Shared OAuth tokens in Redis: one token per credential for the whole cluster, refreshed by the
 * replica holding a lock. Values are encrypted (AES-256-GCM, a key derived once from the
 * config's `secretKey` with HKDF-SHA256, a random 96-bit IV per value, the Redis key as
 * associated data), so Redis never holds a usable token. A value that does not decrypt (another
 * key, tampered, moved to another key) reads as absent: the replica fetches its own token.
 * @module
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, randomUUID } from "node:crypto"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { type SharedToken, type SharedTokens, SharedTokensStore, SharedTokensUnavailable } from "../plugin/sharedTokens.js"

/** What this store needs of a node-redis client (any of its configurations). */
export interface TokenRedisClient {
  readonly isReady: boolean
  readonly sendCommand: (args: ReadonlyArray<string>) => Promise<unknown>
}

export interface SharedTokensOptions {
  readonly client: TokenRedisClient
  /** The cluster's key prefix. Default `aperture:`. */
  readonly keyPrefix?: string | undefined
  /** The config's `secretKey`: tokens are encrypted under a key derived from it. */
  readonly secretKey: Redacted.Redacted<string>
}

/** A Redis command that takes longer is treated as Redis being away (a call never waits on it). */
const COMMAND_TIMEOUT = Duration.seconds(1)
const IV_BYTES = 12
const TAG_BYTES = 16
const FORMAT = "v1."

/** Deletes the key only if it still holds the given value (a lock this replica holds, a refused token). */
const DELETE_IF_EQUAL = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end"

export const deriveTokenKey = (secretKey: Redacted.Redacted<string>): Buffer =>
  Buffer.from(hkdfSync("sha256", Redacted.value(secretKey), "aperture", "aperture shared tokens v1", 32))

const encrypt = (key: Buffer, redisKey: string, token: SharedToken): string => {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv("aes-256-gcm", key, iv)
  cipher.setAAD(Buffer.from(redisKey, "utf8"))
  const body = Buffer.concat([cipher.update(JSON.stringify({ v: token.value, r: token.refreshAt }), "utf8"), cipher.final()])
  return FORMAT + Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64")
}

/** The token, or `undefined` when the value is not one this key sealed for this Redis key. */
const decrypt = (key: Buffer, redisKey: string, stored: string): SharedToken | undefined => {
  if (!stored.startsWith(FORMAT)) return undefined
  const raw = Buffer.from(stored.slice(FORMAT.length), "base64")
  if (raw.length < IV_BYTES + TAG_BYTES) return undefined
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, IV_BYTES))
    decipher.setAAD(Buffer.from(redisKey, "utf8"))
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES))
    const text = Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString("utf8")
    const parsed = JSON.parse(text) as { v?: unknown; r?: unknown }
    return typeof parsed.v === "string" && typeof parsed.r === "number" ? { value: parsed.v, refreshAt: parsed.r } : undefined
  } catch {
    return undefined
  }
}

/** The shared-token store over a connected node-redis client. */
export const makeSharedTokensStore = (options: SharedTokensOptions): SharedTokensStore["Type"] => {
  const { client } = options
  const prefix = options.keyPrefix ?? "aperture:"
  const key = deriveTokenKey(options.secretKey)
  /** The random id of each lock this replica holds, so it releases only its own. */
  const held = new Map<string, string>()
  let undecryptableLogged = false

  const command = (args: ReadonlyArray<string>): Effect.Effect<unknown, SharedTokensUnavailable> =>
    Effect.suspend(() =>
      // A disconnected client queues commands until it reconnects: answer "away" at once instead.
      client.isReady
        ? Effect.tryPromise({
          try: () => client.sendCommand(args),
          catch: (e) => new SharedTokensUnavailable({ message: `redis ${args[0]}: ${e instanceof Error ? e.message : String(e)}` })
        }).pipe(
          Effect.timeoutFail({
            duration: COMMAND_TIMEOUT,
            onTimeout: () => new SharedTokensUnavailable({ message: `redis ${args[0]}: no answer within ${Duration.format(COMMAND_TIMEOUT)}` })
          })
        )
        : Effect.fail(new SharedTokensUnavailable({ message: "redis is not connected" }))
    )

  const forConnector = (connectorId: string): SharedTokens => {
    const tokenKey = (k: string) => `${prefix}token:${connectorId}:${k}`
    const lockKey = (k: string) => `${prefix}token-lock:${connectorId}:${k}`
    const readToken = (k: string) =>
      Effect.flatMap(command(["GET", tokenKey(k)]), (stored) => {
        if (typeof stored !== "string") return Effect.succeed(undefined)
        const token = decrypt(key, tokenKey(k), stored)
        if (token !== undefined || undecryptableLogged) return Effect.succeed(token)
        undecryptableLogged = true
        return Effect.as(
          Effect.logWarning(
            `connector ${connectorId}: a shared token in Redis does not decrypt with this replica's secretKey (another key, or altered); fetching tokens here instead`
          ),
          undefined
        )
      })
    return {
      read: readToken,
      write: (k, value, refreshAt, ttlMs) =>
        Effect.asVoid(command(["SET", tokenKey(k), encrypt(key, tokenKey(k), { value, refreshAt }), "PX", String(Math.max(1, Math.ceil(ttlMs)))])),
      lock: (k, ttlMs) =>
        Effect.suspend(() => {
          const id = randomUUID()
          return Effect.map(command(["SET", lockKey(k), id, "NX", "PX", String(Math.max(1, Math.ceil(ttlMs)))]), (reply) => {
            if (reply !== "OK") return false
            held.set(lockKey(k), id)
            return true
          })
        }),
      unlock: (k) =>
        Effect.suspend(() => {
          const id = held.get(lockKey(k))
          if (id === undefined) return Effect.void
          held.delete(lockKey(k))
          return Effect.asVoid(command(["EVAL", DELETE_IF_EQUAL, "1", lockKey(k), id]))
        }),
      drop: (k, value) =>
        Effect.flatMap(command(["GET", tokenKey(k)]), (stored) =>
          typeof stored === "string" && decrypt(key, tokenKey(k), stored)?.value === value
            ? Effect.asVoid(command(["EVAL", DELETE_IF_EQUAL, "1", tokenKey(k), stored]))
            : Effect.void)
    }
  }
  return { forConnector }
}

/** Provides {@link SharedTokensStore}: credentials share their tokens through this Redis. */
export const layer = (options: SharedTokensOptions): Layer.Layer<SharedTokensStore> =>
  Layer.sync(SharedTokensStore, () => makeSharedTokensStore(options))

/** The wiring for the composition root: `sharedTokensLayer(client, keyPrefix, secretKey)`. */
export const sharedTokensLayer = (
  client: TokenRedisClient,
  keyPrefix: string | undefined,
  secretKey: Redacted.Redacted<string>
): Layer.Layer<SharedTokensStore> => layer({ client, keyPrefix, secretKey })
