/**
 * `apiKey({ secret, name, in })`: puts the key in a named header or query parameter.
 * @module
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { defineAuthPlugin } from "../../src/plugin/AuthPlugin.js"
import { jsonAuthForm, JsonSecret, toSecret } from "../../src/config/jsonAuth.js"
import { describeSecretInput, Secret } from "../../src/config/secret.js"

/** Where the key goes. */
export const KeyLocation = Schema.Literal("header", "query").annotations({
  message: () => ({ message: "expected \"header\" or \"query\"", override: true })
})

export const ApiKeyOptions = Schema.Struct({
  secret: Secret,
  name: Schema.String.pipe(
    Schema.pattern(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, { message: () => "must be a valid header or query parameter name" })
  ),
  in: KeyLocation
})

export const apiKey = defineAuthPlugin({
  name: "apiKey",
  type: "api_key",
  options: ApiKeyOptions,
  make: (options) => {
    const value = Redacted.value(options.secret)
    const authorization = options.in === "header"
      ? { headers: { [options.name.toLowerCase()]: value } }
      : { query: { [options.name]: value } }
    return Effect.succeed({ authorize: () => Effect.succeed(authorization) })
  },
  describe: (options) => `apiKey (${options.in} ${options.name}, secret: ${describeSecretInput(options.secret)})`
})

/** The JSON config's `{ "type": "api_key", "secret": …, "name": …, "in": "header" | "query" }`. */
export const apiKeyJson = jsonAuthForm({
  types: ["api_key"],
  fields: { secret: JsonSecret, name: Schema.NonEmptyString, in: KeyLocation },
  toPlugin: (block) => apiKey({ secret: toSecret(block.secret), name: block.name, in: block.in })
})
