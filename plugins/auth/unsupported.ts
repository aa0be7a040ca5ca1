/**
 * Stands in for an auth type from the original's JSON that Aperture does not implement yet
 * (per-user OAuth): the config loads, and the connector reports `misconfigured` with the reason.
 * @module
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { jsonAuthForm } from "../../src/config/jsonAuth.js"
import { AuthError, defineAuthPlugin } from "../../src/plugin/AuthPlugin.js"

export const unsupportedAuth = defineAuthPlugin({
  name: "unsupported",
  options: Schema.Struct({ type: Schema.String, reason: Schema.String }),
  make: ({ reason, type }) => Effect.fail(new AuthError({ plugin: type, message: reason })),
  describe: (options) => `${options.type} (not supported)`
})

/** The JSON config's per-user OAuth types: accepted with any fields, and the connector reports why it stays down. */
export const unsupportedJson = jsonAuthForm({
  types: ["oauth2_authorization_code", "oauth2_dcr"],
  fields: {},
  otherFields: true,
  toPlugin: (block, connectorId) =>
    unsupportedAuth({
      type: block.type,
      reason: `auth type "${block.type}" (per-user OAuth) is not supported yet; connector ${connectorId} stays down`
    })
})
