/**
 * Identity plugins decide who is calling. They are tried in order; the first that recognises a
 * request decides. Built-ins use this same interface, on the plugin kernel (`definePlugin.ts`).
 * @module
 */
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { type Plugin, pluginKind, type PluginSpec, type ResolvedPlugin } from "./definePlugin.js"

export const IdentityPluginTypeId: unique symbol = Symbol.for("aperture/IdentityPlugin") as never

/**
 * Marks the built-in `loopback` plugin's spec: the callers it recognises are this machine's own
 * operator, the admins while no grant names one. A mark on the plugin value, not its name, so a
 * custom plugin called "loopback" is not taken for it.
 */
export const LocalOperatorPlugin: unique symbol = Symbol("aperture/LocalOperatorPlugin") as never

/** Set by `Identities` (only) on an identity a {@link LocalOperatorPlugin} recognised. */
export const LocalOperator: unique symbol = Symbol("aperture/LocalOperator") as never

/** Who is calling, as grants see it. */
export interface Identity {
  readonly login: string
  readonly groups: ReadonlyArray<string>
  readonly tags: ReadonlyArray<string>
  /** The plugin that recognised the caller: `Identities` sets it to the plugin's name, whatever the plugin said. */
  readonly via: string
  /** See {@link LocalOperatorPlugin}. */
  readonly [LocalOperator]?: true
  /** A human-readable name when the credential carries one (Tailscale-User-Name); for the audit log only. */
  readonly displayName?: string
}

/** What an identity plugin sees of an incoming request. */
export interface CallerRequest {
  readonly remoteAddress: string | undefined
  /** Lower-case header names. */
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly url: URL
}

/** The plugin recognised the request's credential and refused it (e.g. an expired token). */
export class IdentityRejected extends Data.TaggedError("IdentityRejected")<{
  readonly plugin: string
  readonly message: string
}> {}

/**
 * An OAuth authorization server whose access tokens a plugin accepts. When any plugin names
 * one, the gateway serves RFC 9728 protected-resource metadata pointing at it and its 401s say
 * where that metadata is, so spec-following MCP clients can obtain a token by themselves.
 */
export interface AuthorizationServer {
  /** The authorization server's issuer identifier. */
  readonly issuer: string
  /** The resource clients should ask tokens for; default `<origin of the request>/v1/mcp`. */
  readonly resource: string | undefined
}

export interface Identifier {
  /**
   * `undefined`: not recognised, try the next plugin. Fails with {@link IdentityRejected} when
   * the request carries this plugin's kind of credential and it is refused (the caller gets 401).
   * Called on every request: keep it cheap (derive and compile in `make`, cache verifications).
   */
  readonly identify: (request: CallerRequest) => Effect.Effect<Identity | undefined, IdentityRejected>
  readonly authorizationServer?: AuthorizationServer
}

export interface IdentityPluginSpec<A, I> extends PluginSpec<A, I> {
  readonly make: (options: A) => Effect.Effect<Identifier, never, Scope.Scope>
  /**
   * The request headers this plugin reads a credential or identity from (`["x-api-key"]`). The
   * HTTP connector proxy never forwards them upstream: a caller's gateway credential is not the
   * upstream's business. `Authorization` is never forwarded anyway. A function when the names
   * depend on the options.
   */
  readonly consumes?: ReadonlyArray<string> | ((options: A) => ReadonlyArray<string>)
  /** The built-in `loopback` plugin only: see {@link LocalOperatorPlugin}. */
  readonly [LocalOperatorPlugin]?: true
}

export type IdentityPlugin<A = unknown, I = unknown> = Plugin<typeof IdentityPluginTypeId, IdentityPluginSpec<A, I>, I>

export type ResolvedIdentityPlugin = ResolvedPlugin<IdentityPluginSpec<any, any>>

const identityPlugins = pluginKind<typeof IdentityPluginTypeId, IdentityPluginSpec<any, any>>({
  typeId: IdentityPluginTypeId,
  identifier: "IdentityPlugin",
  expected: "expected an identity plugin such as loopback({ login }) or one made with defineIdentityPlugin"
})

export const isIdentityPlugin: (u: unknown) => u is IdentityPlugin = identityPlugins.is

/** Defines an identity plugin; the result maps options (as users write them) to a value for `identity: [...]`. */
export const defineIdentityPlugin = <A, I>(spec: IdentityPluginSpec<A, I>): (options: I) => IdentityPlugin<A, I> =>
  identityPlugins.define<A, I, IdentityPluginSpec<A, I>>(spec)

export const IdentityPluginSchema: Schema.Schema<ResolvedIdentityPlugin, IdentityPlugin> = identityPlugins.schema

/** The lower-case names of the request headers a configured plugin declares it reads. */
export const consumedHeaders = (plugin: ResolvedIdentityPlugin): ReadonlyArray<string> => {
  const consumes = plugin.spec.consumes
  const names = typeof consumes === "function" ? consumes(plugin.options) : consumes ?? []
  return names.map((name) => name.toLowerCase())
}

export const describeIdentityPlugin: (plugin: ResolvedIdentityPlugin) => string = identityPlugins.describe

/** Logins, groups and tags share one grammar: no spaces, no ":" (it separates `group:`/`tag:` in grants). */
export const Principal = Schema.String.pipe(
  Schema.pattern(/^[^\s:]+$/, { message: () => "must be non-empty, without spaces or \":\"" })
)
