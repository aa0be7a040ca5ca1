/**
 * Helpers for auth plugin tests (plugins/auth/*.test.ts): a plugin through the same path the
 * gateway takes (its options decoded, `make` run by `makeCredential`), and what it adds to one
 * upstream request.
 */
import { ConfigProvider, Effect, Schema } from "effect"
import { type Authorization, type AuthPlugin, AuthPluginSchema, makeCredential, type UpstreamRequest } from "../../src/plugin/AuthPlugin.js"

export const withEnv = (vars: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars))))

export const upstreamRequest = (url = "https://api.example.com/v1/mcp"): UpstreamRequest => ({
  url: new URL(url),
  method: "POST",
  headers: new Headers(),
  body: "{}"
})

/** What the plugin's credential adds to one request to `url` (an Effect, for `it.effect`). */
export const authorizationOf = (plugin: AuthPlugin<any, any>, vars: Record<string, string> = {}, url?: string): Effect.Effect<Authorization, unknown> =>
  Effect.scoped(
    Schema.decodeUnknown(AuthPluginSchema)(plugin).pipe(
      Effect.flatMap((auth) => makeCredential(auth, { connectorId: "x", upstreamUrl: new URL(url ?? "https://api.example.com/v1/mcp") })),
      Effect.flatMap((credential) => credential.authorize(upstreamRequest(url)))
    )
  ).pipe(withEnv(vars))
