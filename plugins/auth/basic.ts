/**
 * `basic({ username, password })`: HTTP Basic authentication (RFC 7617).
 * @module
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { defineAuthPlugin } from "../../src/plugin/AuthPlugin.js"
import { jsonAuthForm, JsonSecret, toSecret } from "../../src/config/jsonAuth.js"
import { describeSecretInput, Secret } from "../../src/config/secret.js"

export const BasicOptions = Schema.Struct({
  username: Schema.String.pipe(
    Schema.filter((u) => !u.includes(":") || "must not contain \":\" (RFC 7617)")
  ),
  password: Secret
})

export const basic = defineAuthPlugin({
  name: "basic",
  type: "basic",
  options: BasicOptions,
  make: ({ username, password }) => {
    const token = Buffer.from(`${username}:${Redacted.value(password)}`, "utf8").toString("base64")
    const authorization = { headers: { authorization: `Basic ${token}` } }
    return Effect.succeed({ authorize: () => Effect.succeed(authorization) })
  },
  describe: (options) => `basic (user ${options.username}, password: ${describeSecretInput(options.password)})`
})

/** The JSON config's `{ "type": "basic", "username": …, "password": … }`. */
export const basicJson = jsonAuthForm({
  types: ["basic"],
  fields: { username: Schema.String, password: JsonSecret },
  toPlugin: (block) => basic({ username: block.username, password: toSecret(block.password) })
})
