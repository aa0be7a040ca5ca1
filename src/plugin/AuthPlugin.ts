/**
 * The one interface every upstream credential uses, built-in or custom: a plugin on the kernel
 * (`definePlugin.ts`: a name, options checked by a Schema, `describe`) whose `make` yields a {@link Credential} that adds
 * headers or query parameters to each upstream request and may react to a 401.
 * @module
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { type Plugin, pluginKind, type PluginSpec, type ResolvedPlugin } from "./definePlugin.js"
import type { SharedTokens } from "./sharedTokens.js"

export const AuthPluginTypeId: unique symbol = Symbol.for("aperture/AuthPlugin") as never

/** A credential could not be obtained or was refused. The message never holds a secret. */
export class AuthError extends Data.TaggedError("AuthError")<{
  readonly plugin: string
  readonly message: string
}> {}

/** The upstream request a credential is asked to authorize. */
export interface UpstreamRequest {
  readonly url: URL
  readonly method: string
  readonly headers: Headers
  /**
   * The request body when it is in memory: a string (MCP JSON-RPC) or the bytes of a proxied
   * HTTP body the gateway read whole. `undefined` when there is no body, or when it streams to
   * the upstream: `bodyStreams` tells the two apart.
   */
  readonly body: string | Uint8Array | undefined
  /**
   * `true` when the request has a body that streams to the upstream and so is not in `body` (a
   * proxied body of unknown length or above the in-memory limit). A plugin that must read the
   * body (to sign it, say) fails here rather than treat it as empty. Absent means `false`.
   */
  readonly bodyStreams?: boolean
}

/** What a credential adds to one upstream request. */
export interface Authorization {
  readonly headers?: Readonly<Record<string, string>>
  readonly query?: Readonly<Record<string, string>>
}

/** A live credential for one connector, created once and kept in the connector's scope. */
export interface Credential {
  readonly authorize: (request: UpstreamRequest) => Effect.Effect<Authorization, AuthError>
  /**
   * Called when the upstream answered 401 to an authorized request. Refresh whatever is cached
   * and answer `true` to have the request sent once more (any request whose body is in memory:
   * a 401 means it was not applied).
   */
  readonly onUnauthorized?: (request: UpstreamRequest, response: Response) => Effect.Effect<boolean, AuthError>
}

/** What a plugin's `make` learns about where it is used. */
export interface AuthContext {
  readonly connectorId: string
  /** The upstream's URL (an MCP endpoint or an HTTP API base), when configured. */
  readonly upstreamUrl: URL | undefined
  /**
   * Present when the gateway runs as a cluster: a store, scoped to this connector, where a
   * credential may share a token with the other replicas (and refresh it once for all of them).
   */
  readonly sharedTokens?: SharedTokens
}

export interface AuthPluginSpec<A, I> extends PluginSpec<A, I> {
  /** The name shown as `auth_type` in `/api/connectors` (Aperture's wire names, e.g. `bearer_token`). */
  readonly type?: string
  /**
   * Runs once per connector, in its scope. Yields a {@link Credential}, or, for a credential that
   * never changes, just what to add to each request (`{ headers, query }`).
   */
  readonly make: (options: A, context: AuthContext) => Effect.Effect<Credential | Authorization, AuthError, Scope.Scope>
}

/** An auth plugin with its options, as written in `aperture.config.ts`. */
export type AuthPlugin<A = unknown, I = unknown> = Plugin<typeof AuthPluginTypeId, AuthPluginSpec<A, I>, I>

/** An auth plugin whose options passed their Schema. */
export type ResolvedAuth = ResolvedPlugin<AuthPluginSpec<any, any>>

const authPlugins = pluginKind<typeof AuthPluginTypeId, AuthPluginSpec<any, any>>({
  typeId: AuthPluginTypeId,
  identifier: "AuthPlugin",
  expected:
    "expected an auth plugin: bearer({ secret }), clientCredentials({ … }), apiKey({ … }), basic({ … }) or one made with defineAuthPlugin"
})

export const isAuthPlugin: (u: unknown) => u is AuthPlugin = authPlugins.is

/**
 * Defines an auth plugin. The result is a function from the plugin's options (as users write
 * them) to a value for a connector's `auth` field.
 *
 * @example
 * export const signed = defineAuthPlugin({
 *   name: "signed",
 *   options: Schema.Struct({ key: Secret }),
 *   make: ({ key }) => Effect.succeed({
 *     authorize: (req) => Effect.succeed({ headers: { "x-signature": sign(key, req) } })
 *   })
 * })
 */
export const defineAuthPlugin = <A, I>(spec: AuthPluginSpec<A, I>): (options: I) => AuthPlugin<A, I> =>
  authPlugins.define<A, I, AuthPluginSpec<A, I>>(spec)

/** Decodes a connector's `auth` value: checks it is a plugin, then checks its options with the plugin's Schema. */
export const AuthPluginSchema: Schema.Schema<ResolvedAuth, AuthPlugin> = authPlugins.schema

/**
 * A connector's credential from its plugin: what `make` yielded, a fixed `{ headers, query }`
 * made into a credential that always adds it. Anything else is the plugin's bug, said as such
 * (not a `TypeError` on the first request).
 */
export const makeCredential = (auth: ResolvedAuth, context: AuthContext): Effect.Effect<Credential, AuthError, Scope.Scope> =>
  Effect.flatMap((auth.spec as AuthPluginSpec<unknown, unknown>).make(auth.options, context), (made) => {
    if (Predicate.isFunction((made as Partial<Credential>)?.authorize)) return Effect.succeed(made as Credential)
    const fixed = made as Authorization | undefined
    const isStringRecord = (u: unknown): u is Readonly<Record<string, string>> | undefined =>
      u === undefined || (Predicate.isRecord(u) && Object.values(u).every(Predicate.isString))
    if (Predicate.isRecord(fixed) && (fixed.headers !== undefined || fixed.query !== undefined)) {
      const { headers, query } = fixed
      if (isStringRecord(headers) && isStringRecord(query)) {
        const authorization: Authorization = { ...(headers !== undefined && { headers }), ...(query !== undefined && { query }) }
        return Effect.succeed({ authorize: () => Effect.succeed(authorization) })
      }
    }
    return Effect.fail(
      new AuthError({
        plugin: auth.spec.name,
        message: `auth plugin ${auth.spec.name}: make yielded neither a credential ({ authorize, onUnauthorized? }) nor what to add to each request ({ headers?, query? } of strings)`
      })
    )
  })

/** The one-line description of a resolved auth for `aperture check`. */
export const describeAuth = (auth: ResolvedAuth | undefined): string =>
  auth === undefined ? "none" : authPlugins.describe(auth)

/** The `auth_type` shown in `/api/connectors`. */
export const authType = (auth: ResolvedAuth | undefined): string | undefined =>
  auth === undefined ? undefined : auth.spec.type ?? auth.spec.name
