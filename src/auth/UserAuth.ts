/**
 * Per-user OAuth connectors (`userOAuth(…)`, `userOAuth.dynamic(…)`): each user authorizes the
 * connector once in a browser, the gateway keeps their tokens (encrypted, `userTokens.ts`) and
 * sends each user's calls with their own token, refreshed ahead of expiry.
 *
 * - {@link UserAuthService.connect} starts the flow for the calling user (PKCE S256, a state bound
 *   to the user and the connector, 15 minutes: `userOAuthFlow.ts`); for a dynamic connector the
 *   authorization server is discovered from the upstream and a client registered there first
 *   (kept for every user).
 * - {@link UserAuthService.callback} finishes it at `/aperture/auth/<id>/callback`.
 * - {@link UserAuthService.accessToken} is what a user's upstream session authorizes with; a
 *   refresh the provider refuses (`invalid_grant`) forgets the tokens and leaves the user
 *   `expired` until they connect again.
 *
 * Per user and connector the state is `needs_auth`, `ready`, `expired` or `misconfigured` (with
 * the reason). Without any per-user connector nothing here is built (the token store, and with it
 * better-sqlite3, is never loaded).
 * @module
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Duration from "effect/Duration"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as PubSub from "effect/PubSub"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { ClusterRedis } from "../cluster/ClusterRedis.js"
import { makeRedisPendingAuthorizations } from "../cluster/redisPendingAuthorizations.js"
import { userTokensLayer } from "../cluster/redisUserTokens.js"
import { GatewayConfig } from "../config/GatewayConfig.js"
import { CALLBACK_PREFIX } from "../http/paths.js"
import type { McpConnector, UserOAuthSettings } from "../config/model.js"
import { discover, register, serverMetadata } from "./dynamicClient.js"
import { inMemoryPendingAuthorizations } from "./pendingAuthorizations.js"
import {
  begin,
  complete,
  type GrantedTokens,
  makeSingleFlight,
  PendingAuthorizationStore,
  refresh,
  refuse,
  revoke,
  userConnectorKey
} from "./userOAuthFlow.js"
import { makeTokenSeal, type UserGrant, UserTokens, type UserTokensService } from "./userTokens.js"

/** A user's standing with one per-user connector. */
export type UserConnectorState =
  | { readonly status: "needs_auth" }
  | { readonly status: "ready" }
  | { readonly status: "expired"; readonly reason: string }
  | { readonly status: "misconfigured"; readonly reason: string }

/** The user cannot be served by the connector now: why, and what to do (connect at `connectPath`). */
export class UserAuthRequired extends Data.TaggedError("UserAuthRequired")<{
  readonly connectorId: string
  readonly state: Exclude<UserConnectorState, { readonly status: "ready" }>
}> {
  override get message(): string {
    const what = this.state.status === "needs_auth"
      ? "is not connected for this user"
      : this.state.status === "expired"
      ? `needs to be connected again (${this.state.reason})`
      : `is misconfigured (${this.state.reason})`
    return `connector ${this.connectorId} ${what}`
  }
}

/** Something between the gateway and the provider or the token store failed: try again. */
export class UserAuthUnavailable extends Data.TaggedError("UserAuthUnavailable")<{
  readonly connectorId: string
  readonly reason: string
}> {
  override get message(): string {
    return `connector ${this.connectorId}: ${this.reason}`
  }
}

/** Not a per-user connector (or none by that id). */
export class NotPerUser extends Data.TaggedError("NotPerUser")<{ readonly connectorId: string }> {
  override get message(): string {
    return `connector ${this.connectorId} does not use per-user OAuth`
  }
}

/** How often a replica of a cluster re-reads who has connected what (others connect elsewhere). */
const CLUSTER_RELOAD = Duration.seconds(5)

/** Refresh this long before the provider said the token expires. */
const REFRESH_AHEAD_MS = 60_000

const defaultScopes = (supported: ReadonlyArray<string>): ReadonlyArray<string> =>
  !supported.includes("offline_access") ? [] : supported.includes("openid") ? ["openid", "offline_access"] : ["offline_access"]

/** The callback path of a connector; the redirect URI to register is the public origin + this. */
export const callbackPath = (connectorId: string) => `${CALLBACK_PREFIX}${encodeURIComponent(connectorId)}/callback`

/** What the flow needs of a connector's authorization server, configured or discovered. */
interface ProviderClient {
  readonly authorizationUrl: string
  readonly tokenUrl: string
  readonly revocationEndpoint: string | undefined
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string> | undefined
  readonly scopes: ReadonlyArray<string>
  readonly resource: string | undefined
  readonly audience: string | undefined
}

export interface UserAuthService {
  /** The per-user connectors, by id. */
  readonly connectors: ReadonlyMap<string, McpConnector & { readonly userAuth: UserOAuthSettings }>
  /** Starts the flow for `login`: the link to open in their browser. `origin`: the request's, unless `server.publicUrl`. */
  readonly connect: (
    login: string,
    connectorId: string,
    origin: string
  ) => Effect.Effect<{ readonly authUrl: string }, NotPerUser | UserAuthUnavailable | UserAuthRequired>
  /**
   * Finishes the flow at the callback (its query: `code` and `state`, or `error`); `login` is the
   * signed-in user at the callback when known. Stores the tokens; the answer says for whom.
   */
  readonly callback: (
    connectorId: string,
    query: URLSearchParams,
    login: string | undefined
  ) => Effect.Effect<{ readonly login: string }, NotPerUser | UserAuthUnavailable | UserAuthRequired | CallbackRefused>
  /** Forgets the user's tokens (revoked at the provider when it offers RFC 7009). */
  readonly disconnect: (login: string, connectorId: string) => Effect.Effect<void, NotPerUser | UserAuthUnavailable>
  readonly stateOf: (login: string, connectorId: string) => Effect.Effect<UserConnectorState>
  /** The user's access token, refreshed ahead of expiry (once at a time per user). */
  readonly accessToken: (login: string, connectorId: string) => Effect.Effect<Redacted.Redacted<string>, UserAuthRequired | UserAuthUnavailable>
  /** The upstream refused the token: refresh it now; `true` when a new one is there to retry with. */
  readonly refreshNow: (login: string, connectorId: string) => Effect.Effect<boolean>
  /** Any user who holds tokens for the connector (to read its lists as). */
  readonly anyUser: (connectorId: string) => Effect.Effect<string | undefined>
  /**
   * The per-user connectors `login` has not connected, as this replica knows (loaded from the
   * store at start, kept as users connect and disconnect here): what their lists hide. The same
   * array while nothing changes, sorted.
   */
  readonly notConnected: (login: string) => ReadonlyArray<string>
  /** Whether `login` has tokens for the connector, as the store says now. */
  readonly isConnected: (login: string, connectorId: string) => Effect.Effect<boolean>
  /** Tells when some user connected or disconnected a connector (its id). */
  readonly changes: Stream.Stream<string>
}

/** The callback was refused: why, in words for the page the browser lands on. */
export class CallbackRefused extends Data.TaggedError("CallbackRefused")<{
  readonly connectorId: string
  readonly reason: string
}> {
  override get message(): string {
    return this.reason
  }
}

export class UserAuth extends Context.Tag("aperture/UserAuth")<UserAuth, UserAuthService>() {}

const toGrant = (tokens: GrantedTokens): UserGrant => ({
  accessToken: tokens.accessToken,
  ...(tokens.refreshToken !== undefined && { refreshToken: tokens.refreshToken }),
  ...(tokens.expiresAt !== undefined && { expiresAt: tokens.expiresAt }),
  ...(tokens.scope !== undefined && { scope: tokens.scope })
})

const make = Effect.gen(function*() {
  const config = yield* GatewayConfig
  const connectors = new Map<string, McpConnector & { readonly userAuth: UserOAuthSettings }>()
  for (const connector of config.connectors) {
    if (connector.kind === "mcp" && connector.userAuth !== undefined) {
      connectors.set(connector.id, connector as McpConnector & { readonly userAuth: UserOAuthSettings })
    }
  }
  const changed = yield* PubSub.unbounded<string>()
  yield* Effect.addFinalizer(() => PubSub.shutdown(changed))
  // No per-user connector: nothing to keep, no store opened.
  if (connectors.size === 0) return disabled(connectors, changed)

  // A store that cannot be opened (a state directory not writable) leaves every per-user
  // connector misconfigured, saying why, rather than stopping the gateway.
  const opened = yield* Effect.either(Layer.build(userTokensLayer(config.server.stateDir)))
  const storeProblem = opened._tag === "Left" ? opened.left.message : undefined
  if (storeProblem !== undefined) yield* Effect.logError(`per-user connectors unavailable: ${storeProblem}`)
  const tokens: UserTokensService | undefined = opened._tag === "Right" ? Context.get(opened.right, UserTokens) : undefined
  const { redis } = yield* ClusterRedis
  // In a cluster the provider's callback may reach any replica: started flows are kept in Redis.
  const pending = Option.isSome(redis) && config.secretKey !== undefined
    ? makeRedisPendingAuthorizations({ client: redis.value.client, keyPrefix: redis.value.settings.keyPrefix, seal: makeTokenSeal(config.secretKey) })
    : inMemoryPendingAuthorizations()
  const withPending = Effect.provideService(PendingAuthorizationStore, pending)
  /** Misconfigured and expired users, per connector and login: the reason they are told. */
  const troubles = new Map<string, UserConnectorState>()
  const providers = new Map<string, ProviderClient>()
  const singleFlight = makeSingleFlight<Redacted.Redacted<string>, UserAuthRequired | UserAuthUnavailable>()

  /** Per login, the per-user connectors they hold tokens for (see {@link UserAuthService.notConnected}). */
  const connected = new Map<string, Set<string>>()
  const missingCache = new Map<string, ReadonlyArray<string>>()
  const allIds = [...connectors.keys()].sort()
  const markConnected = (login: string, connectorId: string, yes: boolean) => {
    let held = connected.get(login)
    if (yes === (held?.has(connectorId) ?? false)) return
    if (held === undefined) connected.set(login, held = new Set())
    if (yes) held.add(connectorId)
    else held.delete(connectorId)
    missingCache.delete(login)
  }
  /** Reads who holds usable tokens from the store (at start; in a cluster also every few seconds: others connect elsewhere). */
  const loadConnected = Effect.gen(function*() {
    if (tokens === undefined) return
    const found = new Map<string, Set<string>>()
    for (const connectorId of allIds) {
      for (const login of yield* Effect.orElseSucceed(tokens.usersOf(connectorId), () => [])) {
        const grant = yield* Effect.orElseSucceed(tokens.get(login, connectorId), () => undefined)
        if (grant !== undefined) {
          if (!found.has(login)) found.set(login, new Set())
          found.get(login)!.add(connectorId)
        }
      }
    }
    for (const login of new Set([...connected.keys(), ...found.keys()])) {
      for (const connectorId of allIds) {
        const yes = found.get(login)?.has(connectorId) ?? false
        if (yes !== (connected.get(login)?.has(connectorId) ?? false)) {
          markConnected(login, connectorId, yes)
          yield* PubSub.publish(changed, connectorId)
        }
      }
    }
  })
  yield* loadConnected
  if (Option.isSome(redis)) yield* loadConnected.pipe(Effect.repeat(Schedule.spaced(CLUSTER_RELOAD)), Effect.forkScoped)

  const perUser = (connectorId: string) =>
    Effect.suspend(() => {
      const connector = connectors.get(connectorId)
      return connector === undefined ? Effect.fail(new NotPerUser({ connectorId })) : Effect.succeed(connector)
    })
  const store = (connectorId: string) =>
    tokens === undefined
      ? Effect.fail(new UserAuthUnavailable({ connectorId, reason: `token store unavailable: ${storeProblem}` }))
      : Effect.succeed(tokens)
  const unavailable = (connectorId: string) => (error: { readonly message: string }) =>
    new UserAuthUnavailable({ connectorId, reason: error.message })

  const providerFlight = makeSingleFlight<ProviderClient, UserAuthRequired | UserAuthUnavailable>()
  /**
   * The connector's provider as configured, or discovered and registered: once per connector,
   * however many users connect at the same time (two registrations would leave one user's flow
   * with the other's client).
   */
  const providerOf = (connector: McpConnector & { readonly userAuth: UserOAuthSettings }, redirectUri: string) =>
    Effect.suspend(() => {
      const known = providers.get(connector.id)
      return known !== undefined ? Effect.succeed(known) : providerFlight(connector.id, findProvider(connector, redirectUri))
    })

  const findProvider = (connector: McpConnector & { readonly userAuth: UserOAuthSettings }, redirectUri: string) =>
    Effect.gen(function*() {
      const auth = connector.userAuth
      if (auth.kind === "authorization_code") {
        const client: ProviderClient = {
          authorizationUrl: auth.authorizationUrl.href,
          tokenUrl: auth.tokenUrl.href,
          revocationEndpoint: undefined,
          clientId: auth.clientId,
          clientSecret: auth.clientSecret,
          scopes: auth.scopes,
          resource: auth.resource,
          audience: auth.audience
        }
        providers.set(connector.id, client)
        return client
      }
      const upstreamUrl = connector.url?.href
      if (upstreamUrl === undefined) {
        return yield* new UserAuthRequired({ connectorId: connector.id, state: { status: "misconfigured", reason: "no url to discover the authorization server from" } })
      }
      const server = yield* discover(upstreamUrl).pipe(Effect.mapError((e) =>
        new UserAuthRequired({ connectorId: connector.id, state: { status: "misconfigured", reason: e.message } })
      ))
      const kept = yield* Effect.flatMap(store(connector.id), (s) => s.getRegistration(connector.id)).pipe(Effect.mapError(unavailable(connector.id)))
      let registration = kept
      if (registration === undefined) {
        if (server.registrationEndpoint === undefined) {
          return yield* new UserAuthRequired({
            connectorId: connector.id,
            state: { status: "misconfigured", reason: `the authorization server ${server.issuer} offers no dynamic client registration (RFC 7591); configure userOAuth({ clientId, … }) instead` }
          })
        }
        const registered = yield* register({
          registrationEndpoint: server.registrationEndpoint,
          redirectUri,
          clientName: `Aperture (${connector.id})`,
          scopes: auth.scopes
        }).pipe(Effect.mapError((e) => new UserAuthRequired({ connectorId: connector.id, state: { status: "misconfigured", reason: e.message } })))
        registration = {
          clientId: registered.clientId,
          ...(registered.clientSecret !== undefined && { clientSecret: registered.clientSecret }),
          registeredAt: yield* Clock.currentTimeMillis
        }
        yield* Effect.flatMap(store(connector.id), (s) => s.putRegistration(connector.id, registration!)).pipe(Effect.mapError(unavailable(connector.id)))
        yield* Effect.logInfo(`connector ${connector.id}: registered client ${registered.clientId} at ${server.issuer}`)
      }
      const client: ProviderClient = {
        authorizationUrl: server.authorizationEndpoint,
        tokenUrl: server.tokenEndpoint,
        revocationEndpoint: server.revocationEndpoint,
        clientId: registration.clientId,
        clientSecret: registration.clientSecret,
        // None configured: a refresh token if the server offers one (with `openid`, which OpenID
        // providers need before they honour offline_access).
        scopes: auth.scopes.length > 0 ? auth.scopes : defaultScopes(server.scopesSupported ?? []),
        resource: server.resource,
        audience: undefined
      }
      providers.set(connector.id, client)
      return client
    })

  /**
   * Where the provider revokes tokens (RFC 7009): discovered with the client (dynamic), or looked
   * up once in the metadata of a configured client's provider (its authorization URL's origin as
   * the issuer); none when it publishes none (GitHub, say).
   */
  const revocationEndpoints = new Map<string, string | undefined>()
  const revocationEndpointOf = (connectorId: string, client: ProviderClient) =>
    Effect.gen(function*() {
      if (client.revocationEndpoint !== undefined) return client.revocationEndpoint
      if (revocationEndpoints.has(connectorId)) return revocationEndpoints.get(connectorId)
      const found = yield* Effect.either(serverMetadata(new URL(client.authorizationUrl).origin))
      const endpoint = found._tag === "Right" ? found.right.revocationEndpoint : undefined
      revocationEndpoints.set(connectorId, endpoint)
      return endpoint
    })

  const redirectUriOf = (connectorId: string, origin: string) => `${(config.server.publicUrl?.origin ?? origin)}${callbackPath(connectorId)}`

  const connect: UserAuthService["connect"] = (login, connectorId, origin) =>
    Effect.gen(function*() {
      const connector = yield* perUser(connectorId)
      const redirectUri = redirectUriOf(connectorId, origin)
      const client = yield* providerOf(connector, redirectUri)
      const started = yield* begin({
        login,
        connectorId,
        authorizationUrl: client.authorizationUrl,
        tokenUrl: client.tokenUrl,
        clientId: client.clientId,
        redirectUri,
        scopes: client.scopes,
        resource: client.resource,
        audience: client.audience
      }).pipe(withPending, Effect.mapError((e) => new UserAuthRequired({ connectorId, state: { status: "misconfigured", reason: e.message } })))
      return { authUrl: started.authUrl }
    }).pipe(
      // A provider that cannot be found or registered with is the config's to fix: the user's state says so.
      Effect.tapError((e) =>
        Effect.sync(() => {
          if (e._tag === "UserAuthRequired" && e.state.status === "misconfigured") troubles.set(userConnectorKey(login, connectorId), e.state)
        })
      )
    )

  const callback: UserAuthService["callback"] = (connectorId, query, login) =>
    Effect.gen(function*() {
      const connector = yield* perUser(connectorId)
      const state = query.get("state") ?? ""
      const error = query.get("error")
      if (error !== null) {
        const refused = yield* Effect.flip(refuse({ state, error, errorDescription: query.get("error_description") ?? undefined, connectorId, login }).pipe(withPending))
        // Declined at the provider: the user may connect again; a refused request is the config's.
        if (refused._tag === "AuthorizationDenied" && error !== "access_denied" && login !== undefined) {
          troubles.set(userConnectorKey(login, connectorId), { status: "misconfigured", reason: refused.message })
        }
        return yield* new CallbackRefused({ connectorId, reason: refused.message })
      }
      const code = query.get("code")
      if (code === null || state === "") return yield* new CallbackRefused({ connectorId, reason: "the provider sent no code (or no state) back" })
      const providerSecret = providers.get(connectorId)?.clientSecret ??
        (connector.userAuth.kind === "authorization_code" ? connector.userAuth.clientSecret : undefined)
      const granted = yield* complete({ state, code, connectorId, login, clientSecret: providerSecret }).pipe(
        withPending,
        Effect.catchTag("NoRefreshToken", (e) => {
          // Without a refresh token the connection would end at the first expiry: the config's to fix.
          const whose = e.login ?? login
          if (whose !== undefined) troubles.set(userConnectorKey(whose, connectorId), { status: "misconfigured", reason: e.message })
          return Effect.fail(new CallbackRefused({ connectorId, reason: e.message }))
        }),
        Effect.catchTag("CodeExchangeRejected", (e) => {
          // A wrong client or redirect URI is the config's; an expired or reused code is the user's to retry.
          const whose = e.login ?? login
          if (whose !== undefined && e.oauthError !== "invalid_grant") {
            troubles.set(userConnectorKey(whose, connectorId), { status: "misconfigured", reason: e.message })
          }
          return Effect.fail(new CallbackRefused({ connectorId, reason: e.message }))
        }),
        Effect.mapError((e) => e._tag === "CallbackRefused" ? e : new CallbackRefused({ connectorId, reason: e.message }))
      )
      const tokenStore = yield* store(connectorId)
      yield* tokenStore.put(granted.login, connectorId, toGrant(granted)).pipe(Effect.mapError(unavailable(connectorId)))
      troubles.delete(userConnectorKey(granted.login, connectorId))
      markConnected(granted.login, connectorId, true)
      yield* PubSub.publish(changed, connectorId)
      yield* Effect.logInfo(`connector ${connectorId}: connected for ${granted.login}`)
      return { login: granted.login }
    })

  const disconnect: UserAuthService["disconnect"] = (login, connectorId) =>
    Effect.gen(function*() {
      yield* perUser(connectorId)
      const tokenStore = yield* store(connectorId)
      const grant = yield* tokenStore.get(login, connectorId).pipe(Effect.mapError(unavailable(connectorId)))
      yield* tokenStore.delete(login, connectorId).pipe(Effect.mapError(unavailable(connectorId)))
      troubles.delete(userConnectorKey(login, connectorId))
      markConnected(login, connectorId, false)
      const client = providers.get(connectorId)
      const revocationEndpoint = grant === undefined || client === undefined ? undefined : yield* revocationEndpointOf(connectorId, client)
      if (grant !== undefined && client !== undefined && revocationEndpoint !== undefined) {
        yield* revoke({
          revocationEndpoint,
          token: grant.refreshToken ?? grant.accessToken,
          tokenTypeHint: grant.refreshToken !== undefined ? "refresh_token" : "access_token",
          clientId: client.clientId,
          clientSecret: client.clientSecret
        })
      }
      yield* PubSub.publish(changed, connectorId)
      yield* Effect.logInfo(`connector ${connectorId}: disconnected for ${login}`)
    })

  const stateOf: UserAuthService["stateOf"] = (login, connectorId) =>
    Effect.gen(function*() {
      if (storeProblem !== undefined) return { status: "misconfigured", reason: `token store unavailable: ${storeProblem}` } as const
      const trouble = troubles.get(userConnectorKey(login, connectorId))
      if (trouble !== undefined) return trouble
      const grant = yield* Effect.either(tokens!.get(login, connectorId))
      // The store away (Redis down) is not the user's doing: they are not asked to connect again.
      if (grant._tag === "Left") return { status: "misconfigured", reason: grant.left.message } as const
      return grant.right === undefined ? { status: "needs_auth" } as const : { status: "ready" } as const
    })

  /** Renews the user's tokens; a refusal forgets them and leaves the user `expired`. */
  const renew = (login: string, connectorId: string, grant: UserGrant) =>
    Effect.gen(function*() {
      const connector = yield* Effect.orDie(perUser(connectorId))
      const client = providers.get(connectorId) ?? (yield* providerOf(connector, redirectUriOf(connectorId, "http://localhost")).pipe(
        Effect.mapError((e) => e._tag === "UserAuthRequired" ? e : new UserAuthUnavailable({ connectorId, reason: e.message }))
      ))
      if (grant.refreshToken === undefined) {
        const state = { status: "expired", reason: "the access token expired and there is no refresh token" } as const
        troubles.set(userConnectorKey(login, connectorId), state)
        return yield* new UserAuthRequired({ connectorId, state })
      }
      const renewed = yield* refresh({
        tokenUrl: client.tokenUrl,
        clientId: client.clientId,
        clientSecret: client.clientSecret,
        refreshToken: grant.refreshToken,
        resource: client.resource
      }).pipe(
        Effect.catchTag("RefreshRejected", (e) =>
          Effect.gen(function*() {
            const state = { status: "expired", reason: `the provider refused the refresh token${e.description === undefined ? "" : ` (${e.description})`}; connect again` } as const
            troubles.set(userConnectorKey(login, connectorId), state)
            markConnected(login, connectorId, false)
            yield* Effect.ignore(Effect.flatMap(store(connectorId), (s) => s.delete(login, connectorId)))
            yield* PubSub.publish(changed, connectorId)
            return yield* new UserAuthRequired({ connectorId, state })
          })),
        Effect.mapError((e) => e._tag === "UserAuthRequired" ? e : new UserAuthUnavailable({ connectorId, reason: e.message }))
      )
      const next = toGrant(renewed)
      yield* Effect.flatMap(store(connectorId), (s) => s.put(login, connectorId, next)).pipe(Effect.mapError(unavailable(connectorId)))
      return next.accessToken
    })

  const accessToken: UserAuthService["accessToken"] = (login, connectorId) =>
    Effect.gen(function*() {
      const trouble = troubles.get(userConnectorKey(login, connectorId))
      if (trouble !== undefined && trouble.status !== "ready" && trouble.status !== "needs_auth") {
        return yield* new UserAuthRequired({ connectorId, state: trouble })
      }
      const tokenStore = yield* store(connectorId)
      const grant = yield* tokenStore.get(login, connectorId).pipe(Effect.mapError(unavailable(connectorId)))
      if (grant === undefined) return yield* new UserAuthRequired({ connectorId, state: { status: "needs_auth" } })
      const now = yield* Clock.currentTimeMillis
      if (grant.expiresAt === undefined || grant.expiresAt - now > REFRESH_AHEAD_MS) return grant.accessToken
      return yield* singleFlight(userConnectorKey(login, connectorId), renew(login, connectorId, grant))
    })

  const refreshNow: UserAuthService["refreshNow"] = (login, connectorId) =>
    Effect.gen(function*() {
      const tokenStore = yield* store(connectorId)
      const grant = yield* tokenStore.get(login, connectorId)
      if (grant === undefined) return false
      yield* singleFlight(userConnectorKey(login, connectorId), renew(login, connectorId, grant))
      return true
    }).pipe(Effect.orElseSucceed(() => false))

  const notConnected: UserAuthService["notConnected"] = (login) => {
    let missing = missingCache.get(login)
    if (missing === undefined) {
      const held = connected.get(login)
      missing = held === undefined ? allIds : allIds.filter((id) => !held.has(id))
      missingCache.set(login, missing)
    }
    return missing
  }

  const isConnected: UserAuthService["isConnected"] = (login, connectorId) =>
    tokens === undefined ? Effect.succeed(false) : Effect.map(Effect.orElseSucceed(tokens.get(login, connectorId), () => undefined), (grant) => {
      // What another replica did (a cluster) is learnt here.
      markConnected(login, connectorId, grant !== undefined)
      return grant !== undefined
    })

  /**
   * A user who holds usable tokens for the connector, from what this replica knows (kept as users
   * connect, disconnect and expire; loaded at start, reloaded in a cluster): asked on every request
   * of the connector's own connection, so it reads no store.
   */
  const anyUser: UserAuthService["anyUser"] = (connectorId) =>
    Effect.sync(() => {
      for (const [login, held] of connected) if (held.has(connectorId)) return login
      return undefined
    })

  return {
    connectors,
    connect,
    callback,
    disconnect,
    stateOf,
    accessToken,
    refreshNow,
    anyUser,
    notConnected,
    isConnected,
    changes: Stream.fromPubSub(changed)
  } satisfies UserAuthService
})

const disabled = (
  connectors: UserAuthService["connectors"],
  changed: PubSub.PubSub<string>
): UserAuthService => {
  const notPerUser = (connectorId: string) => Effect.fail(new NotPerUser({ connectorId }))
  return {
    connectors,
    connect: (_login, connectorId) => notPerUser(connectorId),
    callback: (connectorId) => notPerUser(connectorId),
    disconnect: (_login, connectorId) => notPerUser(connectorId),
    stateOf: () => Effect.succeed({ status: "needs_auth" }),
    accessToken: (_login, connectorId) => Effect.fail(new UserAuthRequired({ connectorId, state: { status: "needs_auth" } })),
    refreshNow: () => Effect.succeed(false),
    anyUser: () => Effect.succeed(undefined),
    notConnected: () => [],
    isConnected: () => Effect.succeed(false),
    changes: Stream.fromPubSub(changed)
  }
}

/** The per-user connectors' service; their token store is opened only when there is one. */
export const UserAuthLive: Layer.Layer<UserAuth, never, GatewayConfig | ClusterRedis> = Layer.scoped(UserAuth, make)
