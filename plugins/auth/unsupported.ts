/**
 * Stands in for an auth type from the original's JSON that Aperture does not implement yet
 * (per-user OAuth): the config loads, and the connector reports `misconfigured` with the reason.
 * @module
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { AuthError, defineAuthPlugin } from "../../src/plugin/AuthPlugin.js"

export const unsupportedAuth = defineAuthPlugin({
  name: "unsupported",
  options: Schema.Struct({ type: Schema.String, reason: Schema.String }),
  make: ({ reason, type }) => Effect.fail(new AuthError({ plugin: type, message: reason })),
  describe: (options) => `${options.type} (not supported)`
})
