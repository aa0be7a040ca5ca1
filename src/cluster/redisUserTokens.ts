/**
 * {@link UserTokens} in the cluster's Redis, so every replica sees every user's grants: one hash
 * per connector, `<keyPrefix>usertokens:<connector>`, field = the user's login, value = `v1.` +
 * base64(IV ‖ ciphertext ‖ tag); a connector's registered client at
 * `<keyPrefix>registration:<connector>`. No TTL: a refresh token outlives any session, so Redis
 * must persist (RDB or AOF) or its users connect again after it restarts empty.
 *
 * While Redis is away every operation fails with {@link UserTokensUnavailable} (after one second
 * at most, see ./sharedCommand.ts): a read does not pretend the user has no grant, which would
 * send them through the provider again only for the new tokens to fail to store too.
 *
 * {@link userTokensLayer} picks this store with `cluster`, else the embedded SQLite file.
 * @module
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import { makeSqliteUserTokens } from "../auth/sqliteUserTokens.js"
import { makeTokenSeal, type Sealed, UserTokens, type UserTokensService, UserTokensUnavailable } from "../auth/userTokens.js"
import { GatewayConfig } from "../config/GatewayConfig.js"
import { ClusterRedis } from "./ClusterRedis.js"
import { type CommandClient, sharedCommand } from "./sharedCommand.js"

const FORMAT = "v1."
const IV_BYTES = 12

export const toStored = ({ body, iv }: Sealed) => FORMAT + Buffer.concat([iv, body]).toString("base64")
export const fromStored = (stored: unknown): Sealed | undefined => {
  if (typeof stored !== "string" || !stored.startsWith(FORMAT)) return undefined
  const raw = Buffer.from(stored.slice(FORMAT.length), "base64")
  return { iv: raw.subarray(0, IV_BYTES), body: raw.subarray(IV_BYTES) }
}

export interface RedisUserTokensOptions {
  readonly client: CommandClient
  readonly keyPrefix: string
  readonly secretKey: Redacted.Redacted<string>
}

export const makeRedisUserTokens = ({ client, keyPrefix, secretKey }: RedisUserTokensOptions): UserTokensService => {
  const tokenSeal = makeTokenSeal(secretKey)
  const grantsKey = (connectorId: string) => `${keyPrefix}usertokens:${connectorId}`
  const registrationKey = (connectorId: string) => `${keyPrefix}registration:${connectorId}`
  const command = (args: ReadonlyArray<string>) =>
    Effect.mapError(sharedCommand(client, args), (error) => new UserTokensUnavailable({ reason: `Redis ${error.reason}` }))
  /** The opened value, or `undefined` with the connector's one warning when a stored value does not open. */
  const opened = <A>(connectorId: string, stored: unknown, openValue: (sealed: Sealed) => A | undefined) => {
    if (stored === null || stored === undefined) return Effect.succeed(undefined)
    const sealed = fromStored(stored)
    const value = sealed === undefined ? undefined : openValue(sealed)
    return value === undefined ? Effect.as(tokenSeal.warnUndecryptable(connectorId), undefined) : Effect.succeed(value)
  }
  const get = (login: string, connectorId: string) =>
    Effect.flatMap(
      command(["HGET", grantsKey(connectorId), login]),
      (stored) => opened(connectorId, stored, (sealed) => tokenSeal.openGrant(login, connectorId, sealed))
    )
  return {
    kind: "redis",
    get,
    put: (login, connectorId, grant) =>
      Effect.asVoid(
        Effect.suspend(() => command(["HSET", grantsKey(connectorId), login, toStored(tokenSeal.sealGrant(login, connectorId, grant))]))
      ),
    delete: (login, connectorId) => Effect.asVoid(command(["HDEL", grantsKey(connectorId), login])),
    // One HGET per connector, sent together (node-redis pipelines them in one round trip).
    connectorsOf: (login, connectorIds) =>
      Effect.map(
        Effect.forEach(connectorIds, (connectorId) => Effect.map(get(login, connectorId), (grant) => grant !== undefined), {
          concurrency: "unbounded"
        }),
        (held) => connectorIds.filter((_, i) => held[i])
      ),
    // A hash keeps no order: any user will do for the callers of this (one to list the tools as).
    usersOf: (connectorId) =>
      Effect.map(command(["HKEYS", grantsKey(connectorId)]), (reply) => (Array.isArray(reply) ? reply.map(String) : [])),
    getRegistration: (connectorId) =>
      Effect.flatMap(
        command(["GET", registrationKey(connectorId)]),
        (stored) => opened(connectorId, stored, (sealed) => tokenSeal.openRegistration(connectorId, sealed))
      ),
    putRegistration: (connectorId, registration) =>
      Effect.asVoid(
        Effect.suspend(() => command(["SET", registrationKey(connectorId), toStored(tokenSeal.sealRegistration(connectorId, registration))]))
      )
  }
}

/**
 * Provides {@link UserTokens}: the cluster's Redis with `cluster`, else `user-tokens.sqlite` in
 * `stateDir` (the caller computes it; see the report of issue 21 for the setting). Fails when
 * the config has no `secretKey` (grants are never stored unencrypted) or the file cannot be opened.
 */
export const userTokensLayer = (
  stateDir: string
): Layer.Layer<UserTokens, UserTokensUnavailable, ClusterRedis | GatewayConfig> =>
  Layer.scoped(
    UserTokens,
    Effect.gen(function*() {
      const { redis } = yield* ClusterRedis
      const { secretKey } = yield* GatewayConfig
      if (secretKey === undefined) {
        return yield* new UserTokensUnavailable({
          reason: "no secretKey in the config: per-user connectors keep users' tokens encrypted under it (secretKey: env(\"APERTURE_SECRET_KEY\"))"
        })
      }
      return Option.isSome(redis)
        ? makeRedisUserTokens({ client: redis.value.client, keyPrefix: redis.value.settings.keyPrefix, secretKey })
        : yield* makeSqliteUserTokens({ stateDir, secretKey })
    })
  )
