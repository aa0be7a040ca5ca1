/**
 * `bearer({ secret })`: sends `Authorization: Bearer <secret>` to the upstream.
 * @module
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { defineAuthPlugin } from "../../src/plugin/AuthPlugin.js"
import { jsonAuthForm, JsonSecret, toSecret } from "../../src/config/jsonAuth.js"
import { describeSecretInput, Secret } from "../../src/config/secret.js"

export const BearerOptions = Schema.Struct({ secret: Secret })

export const bearer = defineAuthPlugin({
  name: "bearer",
  type: "bearer_token",
  options: BearerOptions,
  make: ({ secret }) => {
    // Built once per connector, not per request.
    const authorization = { headers: { authorization: `Bearer ${Redacted.value(secret)}` } }
    return Effect.succeed({ authorize: () => Effect.succeed(authorization) })
  },
  describe: (options) => `bearer (secret: ${describeSecretInput(options.secret)})`
})

/** The JSON config's `{ "type": "bearer_token", "secret": … }`. */
export const bearerJson = jsonAuthForm({
  types: ["bearer_token"],
  fields: { secret: JsonSecret },
  toPlugin: (block) => bearer({ secret: toSecret(block.secret) })
})
