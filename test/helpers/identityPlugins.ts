/**
 * Helpers for identity plugin tests (plugins/identity/*.test.ts, test/identityPlugins.test.ts):
 * a plugin through the same decode-then-make path the gateway takes, and what it says of a request.
 */
import { ConfigProvider, Effect, Either, Schema } from "effect"
import { decodeConfig } from "../../src/Aperture.js"
import { type CallerRequest, type Identifier, type IdentityPlugin, IdentityPluginSchema } from "../../src/plugin/IdentityPlugin.js"

export const withEnv = (vars: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars))))

export const identifierOf = (plugin: IdentityPlugin<any, any>, vars: Record<string, string> = {}): Promise<Identifier> =>
  Effect.runPromise(
    Schema.decodeUnknown(IdentityPluginSchema)(plugin).pipe(
      Effect.flatMap((resolved) => Effect.scoped(resolved.spec.make(resolved.options))),
      withEnv(vars)
    )
  )

export const request = (overrides: { remoteAddress?: string | undefined; headers?: Record<string, string> } = {}): CallerRequest => ({
  remoteAddress: "remoteAddress" in overrides ? overrides.remoteAddress : "203.0.113.7",
  headers: overrides.headers ?? {},
  url: new URL("http://gateway.example.com/v1/mcp")
})

/** `login` when recognised, `undefined` when left to the next plugin, `refused: …` when refused. */
export const outcome = async (identifier: Identifier, req: CallerRequest) => {
  const result = await Effect.runPromise(Effect.either(identifier.identify(req)))
  if (Either.isLeft(result)) return `refused: ${result.left.message}`
  return result.right?.login
}

export const issuesOf = async (identity: ReadonlyArray<unknown>, vars: Record<string, string> = {}) => {
  const result = await Effect.runPromise(decodeConfig({ identity }).pipe(withEnv(vars), Effect.either))
  if (Either.isRight(result)) throw new Error("expected the config to be invalid")
  return result.left.issues.map((i) => `${i.path}: ${i.message}`)
}

