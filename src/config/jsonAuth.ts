/**
 * How an auth plugin reads the original Aperture JSON's `auth` block (`{ "type": "bearer_token",
 * "secret": … }`). Each built-in auth plugin declares its form beside itself; the composition
 * root passes the forms into decoding ({@link BuiltInPlugins}), so `config/` names no plugin.
 * @module
 */
import * as Schema from "effect/Schema"
import type { AuthPlugin } from "../plugin/AuthPlugin.js"
import type { IdentityPlugin } from "../plugin/IdentityPlugin.js"
import { env, type SecretInput } from "./secret.js"

/** One auth form of the JSON config: the `type` names it reads, its block's Schema, the plugin it stands for. */
export interface JsonAuthForm {
  /** The original's `type` names this form reads (`bearer_token`). */
  readonly types: ReadonlyArray<string>
  /** The whole block, `type` included, as the JSON spells it. */
  readonly schema: Schema.Schema<any, any>
  /** The plugin value a decoded block stands for. */
  readonly toPlugin: (block: any, connectorId: string) => AuthPlugin<any, any>
  /** The JSON spelling of each plugin option whose name differs (`clientId` → `client_id`), so errors name the field as written. */
  readonly jsonNames: Readonly<Record<string, string>>
}

/**
 * Declares a JSON auth form. `fields` are the block's fields besides `type`; with `otherFields`,
 * any other field is accepted too (a form that only reports the type as unsupported).
 */
export const jsonAuthForm = <const T extends string, F extends Schema.Struct.Fields>(form: {
  readonly types: readonly [T, ...ReadonlyArray<T>]
  readonly fields: F
  readonly otherFields?: boolean
  readonly toPlugin: (block: Schema.Struct.Type<F> & { readonly type: T }, connectorId: string) => AuthPlugin<any, any>
  readonly jsonNames?: Readonly<Record<string, string>>
}): JsonAuthForm => {
  const fields = { type: Schema.Literal(...form.types), ...form.fields }
  return {
    types: form.types,
    schema: (form.otherFields === true
      ? Schema.Struct(fields, { key: Schema.String, value: Schema.Unknown })
      : Schema.Struct(fields)) as unknown as Schema.Schema<any, any>,
    toPlugin: form.toPlugin,
    jsonNames: form.jsonNames ?? {}
  }
}

/** A secret in the JSON: `"…"` or `{ "env": "NAME" }` (an Aperture extension: keeps the secret out of the file). */
export const JsonSecret = Schema.Union(
  Schema.NonEmptyString,
  Schema.Struct({ env: Schema.NonEmptyString })
).annotations({ message: () => "expected a non-empty string or { \"env\": \"NAME\" }" })

/** A {@link JsonSecret} as a plugin's secret option takes it. */
export const toSecret = (s: typeof JsonSecret.Type): SecretInput => typeof s === "string" ? s : env(s.env)

/**
 * What decoding needs of the built-in plugins, passed in by the composition root
 * (`src/Aperture.ts`, bound there for the public `decodeConfig` and `loadConfig`).
 */
export interface BuiltInPlugins {
  /** The identity plugins when a config names none: `[loopback({ login: "local" })]`. */
  readonly defaultIdentity: ReadonlyArray<IdentityPlugin<any, any>>
  /** The auth forms the JSON config's `auth` blocks may take, by `type`. */
  readonly jsonAuth: ReadonlyArray<JsonAuthForm>
}
