/**
 * Resolves who is calling: the configured identity plugins in order, the first that recognises
 * the request decides. Nobody recognised → 401 with a `WWW-Authenticate` challenge; when a
 * plugin accepts tokens from an OAuth authorization server (`jwt`), the challenge points at the
 * gateway's RFC 9728 protected-resource metadata, so MCP clients can go and get a token.
 * @module
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { GatewayConfig } from "../config/GatewayConfig.js"
import { liveConfigOrStatic } from "../config/LiveConfig.js"
import { makeHostGuard } from "../http/hostGuard.js"
import { MCP_PATH, PROTECTED_RESOURCE_PATH } from "../http/paths.js"
import { bearerToken } from "./bearerToken.js"
import {
  type AuthorizationServer,
  type CallerRequest,
  type Identifier,
  type Identity,
  type IdentityPluginSpec,
  type ResolvedIdentityPlugin,
  LocalOperator,
  LocalOperatorPlugin
} from "../plugin/IdentityPlugin.js"

/** No plugin recognised the caller, or one refused its credential. */
export class Unauthenticated extends Data.TaggedError("Unauthenticated")<{
  readonly reason: string
  /** A credential was presented and refused (RFC 6750 `error="invalid_token"`). */
  readonly refused: boolean
}> {}

/**
 * A request refused before it reaches a surface: a foreign `Host`/`Origin` (403, DNS-rebinding
 * protection) or no caller recognised (401, with the challenge to send and the identity plugins'
 * rejection as the cause). Every surface (`/v1/mcp`, the HTTP proxy, the admin API) asks the same
 * {@link Identities} `admit` and only words the answer in its own format.
 */
export class CallerRefused extends Data.TaggedError("CallerRefused")<{
  readonly status: 401 | 403
  readonly reason: string
  /** The `WWW-Authenticate` value of a 401. */
  readonly challenge?: string
  readonly cause?: Unauthenticated
}> {
  /** The response headers the refusal needs (the challenge of a 401). */
  get headers(): Record<string, string> | undefined {
    return this.challenge === undefined ? undefined : { "www-authenticate": this.challenge }
  }
}

/** RFC 9728 protected-resource metadata. */
export interface ProtectedResourceMetadata {
  readonly resource: string
  readonly authorization_servers: ReadonlyArray<string>
  readonly bearer_methods_supported: ReadonlyArray<string>
  readonly resource_name: string
}

/**
 * Sets `via` to the plugin's name (and the local-operator mark for the built-in loopback plugin
 * only), whatever the plugin put there: a plugin cannot pass its callers off as another's. An
 * identity already right is returned as is; a plugin's one shared identity (loopback's) is
 * stamped once and remembered, so no request allocates.
 */
const stamper = (spec: IdentityPluginSpec<any, any>): (identity: Identity) => Identity => {
  const via = spec.name
  const operator = spec[LocalOperatorPlugin] === true
  let seen: Identity | undefined
  let stamped: Identity | undefined
  return (identity) => {
    if (identity === seen) return stamped!
    if (identity.via === via && (identity[LocalOperator] === true) === operator) return identity
    const { displayName, groups, login, tags } = identity
    seen = identity
    stamped = {
      login,
      groups,
      tags,
      via,
      ...(displayName !== undefined && { displayName }),
      ...(operator && { [LocalOperator]: true as const })
    }
    return stamped
  }
}

/** The identity plugins made from one config, with what their answers need. */
const makePlugins = (plugins: ReadonlyArray<ResolvedIdentityPlugin>) =>
  Effect.gen(function*() {
    const identifiers: ReadonlyArray<Identifier> = yield* Effect.forEach(plugins, (p) => p.spec.make(p.options))
    const stamps = plugins.map((p) => stamper(p.spec))
    const servers: ReadonlyArray<AuthorizationServer> = identifiers.flatMap((i) =>
      i.authorizationServer === undefined ? [] : [i.authorizationServer]
    )
    const configuredResource = servers.find((s) => s.resource !== undefined)?.resource
    const nobody = new Unauthenticated({
      refused: false,
      reason: identifiers.length === 0
        ? "no identity plugins are configured"
        : "no credential this gateway accepts (connections from other hosts need an identity plugin such as apiKeys or jwt)"
    })
    // A token was presented and no plugin took it: most often a JWT from an issuer not configured.
    const nobodyForToken = new Unauthenticated({
      refused: true,
      reason: servers.length > 0
        ? `no identity plugin accepts this Bearer token (tokens are accepted from ${[...new Set(servers.map((s) => s.issuer))].join(", ")})`
        : "no identity plugin accepts this Bearer token"
    })
    return { identifiers, stamps, servers, configuredResource, nobody, nobodyForToken } as const
  })

export class Identities extends Effect.Service<Identities>()("aperture/Identities", {
  scoped: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const live = yield* liveConfigOrStatic
    // Each config's plugins live in a scope of their own, closed when a reload replaces them.
    let pluginsScope = yield* Scope.make()
    let plugins = yield* Scope.extend(makePlugins(live.current().identity), pluginsScope)
    yield* Effect.addFinalizer((exit) => Scope.close(pluginsScope, exit))
    yield* live.onChange("policies", (change) =>
      change.identityChanged
        ? Effect.gen(function*() {
          const scope = yield* Scope.make()
          const made = yield* Scope.extend(makePlugins(change.next.identity), scope)
          const replaced = pluginsScope
          // Swapped before the old ones close: a request in flight finishes with the plugin it started with.
          plugins = made
          pluginsScope = scope
          yield* Scope.close(replaced, Exit.void)
        })
        : Effect.void)

    // Runs on every request: no span, no allocation beyond what the plugins do.
    const identify = Effect.fnUntraced(function*(request: CallerRequest) {
      const { identifiers, nobody, nobodyForToken, stamps } = plugins
      for (let i = 0; i < identifiers.length; i++) {
        const identity: Identity | undefined = yield* identifiers[i]!.identify(request).pipe(
          Effect.mapError((rejected) => new Unauthenticated({ reason: `${rejected.plugin}: ${rejected.message}`, refused: true }))
        )
        if (identity !== undefined) return stamps[i]!(identity)
      }
      return yield* (bearerToken(request.headers["authorization"]) !== undefined ? nobodyForToken : nobody)
    })

    /** The resource clients should get tokens for, seen from a request to `origin` (`http://host:port`). */
    const resourceFor = (origin: string) => plugins.configuredResource ?? `${origin}${MCP_PATH}`

    /** The `WWW-Authenticate` value for a 401 answered to a request at `origin`. */
    const challenge = (origin: string, refused: Unauthenticated): string => {
      const error = refused.refused ? ", error=\"invalid_token\"" : ""
      const { servers } = plugins
      if (servers.length === 0) return `Bearer realm="aperture"${error}`
      const metadataUrl = `${new URL(resourceFor(origin)).origin}${PROTECTED_RESOURCE_PATH}`
      return `Bearer realm="aperture", resource_metadata="${metadataUrl}"${error}`
    }

    /** RFC 9728 metadata, when a plugin accepts an authorization server's tokens; else undefined (404). */
    const protectedResource = (origin: string): ProtectedResourceMetadata | undefined => {
      const { servers } = plugins
      return servers.length === 0 ? undefined : {
        resource: resourceFor(origin),
        authorization_servers: [...new Set(servers.map((s) => s.issuer))],
        bearer_methods_supported: ["header"],
        resource_name: "Aperture"
      }
    }

    const refuseHostOrOrigin = makeHostGuard(config.server)
    /**
     * The one check every surface makes before anything else it does for a caller: `Host` and
     * `Origin` first, then the identity plugins. On the hot path: no allocation when admitted.
     */
    const admit = (request: CallerRequest): Effect.Effect<Identity, CallerRefused> => {
      const foreign = refuseHostOrOrigin(request.headers)
      if (foreign !== undefined) return Effect.fail(new CallerRefused({ status: 403, reason: foreign }))
      return Effect.mapError(identify(request), (refused) =>
        new CallerRefused({
          status: 401,
          reason: refused.reason,
          challenge: challenge(requestOrigin(request.headers), refused),
          cause: refused
        }))
    }

    return {
      admit,
      /** The 403 reason for a foreign `Host`/`Origin`, for surfaces that need no caller (`/healthz`, the page). */
      foreignHost: refuseHostOrOrigin,
      identify,
      challenge,
      protectedResource
    } as const
  })
}) {}

/** `http://<Host>` of a request, for metadata URLs when no public resource URL is configured. */
export const requestOrigin = (headers: Readonly<Record<string, string | undefined>>): string => {
  const host = headers["host"]
  // Echoed into a header and a document: only what a host name and port can hold.
  return `http://${host !== undefined && /^[A-Za-z0-9.\-:[\]]+$/.test(host) ? host : "localhost"}`
}
