/**
 * What a credential may use to share a token with the other replicas of a cluster: a small
 * key-value store with a lock. The gateway gives a credential a view scoped to its connector
 * (`AuthContext.sharedTokens`) only when a store is configured; without one a credential
 * caches in its own process, as it always did.
 * @module
 */
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"

/** The store could not be reached or answered something unusable. A credential falls back to its own cache. */
export class SharedTokensUnavailable extends Data.TaggedError("SharedTokensUnavailable")<{
  readonly message: string
}> {}

/** A token as shared: the value and when to fetch the next one (epoch milliseconds). */
export interface SharedToken {
  readonly value: string
  readonly refreshAt: number
}

/**
 * One connector's view of the shared store. `key` names the credential's identity within the
 * connector (a hash of what the token is for), so a changed config never reads another's token.
 */
export interface SharedTokens {
  /** The shared token, or `undefined` when there is none (or it cannot be read as this replica's). */
  readonly read: (key: string) => Effect.Effect<SharedToken | undefined, SharedTokensUnavailable>
  /** Shares a token for `ttlMs` (its lifetime). */
  readonly write: (key: string, value: string, refreshAt: number, ttlMs: number) => Effect.Effect<void, SharedTokensUnavailable>
  /** Takes the refresh lock for `ttlMs` if nobody holds it: `true` when this replica has it. */
  readonly lock: (key: string, ttlMs: number) => Effect.Effect<boolean, SharedTokensUnavailable>
  /** Releases the refresh lock if this replica still holds it. */
  readonly unlock: (key: string) => Effect.Effect<void, SharedTokensUnavailable>
  /** Drops the shared token if it is still `value` (the one an upstream refused). */
  readonly drop: (key: string, value: string) => Effect.Effect<void, SharedTokensUnavailable>
}

/**
 * Where credentials share their tokens across replicas: in a cluster, each connector's view of
 * the Redis store; in one process, nothing to share (`forConnector` answers `undefined` and a
 * credential keeps its token to itself). The layers that make credentials read it once, when
 * they are built, and hand each credential its connector's view.
 */
export class SharedTokensStore extends Context.Tag("aperture/SharedTokensStore")<SharedTokensStore, {
  readonly forConnector: (connectorId: string) => SharedTokens | undefined
}>() {
  /** One process: no sharing. */
  static readonly none = Layer.succeed(SharedTokensStore, { forConnector: () => undefined })
}

/** The `sharedTokens` field of an `AuthContext`: present only where tokens are shared. */
export const withSharedTokens = (shared: SharedTokens | undefined): { readonly sharedTokens?: SharedTokens } =>
  shared === undefined ? {} : { sharedTokens: shared }
