/**
 * Resolves who is calling: the configured identity plugins in order, the first that recognises
 * the request decides. Nobody recognised → 401 with a `WWW-Authenticate` challenge.
 * @module
 */
import { Data, Effect } from "effect"
import { GatewayConfig } from "../config/GatewayConfig.js"
import type { CallerRequest, Identifier, Identity } from "./IdentityPlugin.js"

/** No plugin recognised the caller, or one refused its credential. */
export class Unauthenticated extends Data.TaggedError("Unauthenticated")<{ readonly reason: string }> {}

export class Identities extends Effect.Service<Identities>()("aperture/Identities", {
  scoped: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const identifiers: ReadonlyArray<Identifier> = yield* Effect.forEach(config.identity, (p) => p.spec.make(p.options))
    const challenge = identifiers.find((i) => i.challenge !== undefined)?.challenge ?? "Bearer realm=\"aperture\""

    const identify = Effect.fn("Identities.identify")(function*(request: CallerRequest) {
      for (const identifier of identifiers) {
        const identity: Identity | undefined = yield* identifier.identify(request).pipe(
          Effect.mapError((rejected) => new Unauthenticated({ reason: `${rejected.plugin}: ${rejected.message}` }))
        )
        if (identity !== undefined) return identity
      }
      return yield* new Unauthenticated({
        reason: identifiers.length === 0
          ? "no identity plugins are configured"
          : "no credential this gateway accepts (connections from other hosts need an identity plugin such as apiKeys or jwt)"
      })
    })

    return { identify, challenge } as const
  })
}) {}
