/**
 * Helpers for identity plugin tests (plugins/identity/*.test.ts, test/identityPlugins.test.ts):
 * a plugin through the same decode-then-make path the gateway takes, and what it says of a request.
 * `identifierOf`, `outcome` and `issuesOf` return Effects, for `it.effect` (@effect/vitest).
 */
import { ConfigProvider, Effect, Either, Schema } from "effect"
import { decodeConfig } from "../../src/Aperture.js"
import { type CallerRequest, type Identifier, type IdentityPlugin, IdentityPluginSchema } from "../../src/plugin/IdentityPlugin.js"

export const withEnv = (vars: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars))))

export const identifierOf = (plugin: IdentityPlugin<any, any>, vars: Record<string, string> = {}): Effect.Effect<Identifier, unknown> =>
  Schema.decodeUnknown(IdentityPluginSchema)(plugin).pipe(
    Effect.flatMap((resolved) => Effect.scoped(resolved.spec.make(resolved.options))),
    withEnv(vars)
  )

export const request = (overrides: { remoteAddress?: string | undefined; headers?: Record<string, string> } = {}): CallerRequest => ({
  remoteAddress: "remoteAddress" in overrides ? overrides.remoteAddress : "203.0.113.7",
  headers: overrides.headers ?? {},
  url: new URL("http://gateway.example.com/v1/mcp")
})

/** `login` when recognised, `undefined` when left to the next plugin, `refused: …` when refused. */
export const outcome = (identifier: Identifier, req: CallerRequest): Effect.Effect<string | undefined> =>
  Effect.either(identifier.identify(req)).pipe(
    Effect.map((result) => Either.isLeft(result) ? `refused: ${result.left.message}` : result.right?.login)
  )

export const issuesOf = (identity: ReadonlyArray<unknown>, vars: Record<string, string> = {}) =>
  decodeConfig({ identity }).pipe(
    withEnv(vars),
    Effect.flip,
    Effect.orElse(() => Effect.dieMessage("expected the config to be invalid")),
    Effect.map((invalid) => invalid.issues.map((i) => `${i.path}: ${i.message}`))
  )

