/**
 * The built-in plugins as decoding needs them: the default identity and the JSON config's auth
 * forms. Only the composition root (src/Aperture.ts) imports this and passes it into decoding;
 * `src/config/` names no plugin.
 * @module
 */
import type { BuiltInPlugins } from "../src/config/jsonAuth.js"
import { apiKeyJson } from "./auth/apiKey.js"
import { basicJson } from "./auth/basic.js"
import { bearerJson } from "./auth/bearer.js"
import { clientCredentialsJson } from "./auth/clientCredentials.js"
import { loopback } from "./identity/loopback.js"

export const builtInPlugins: BuiltInPlugins = {
  defaultIdentity: [loopback({ login: "local" })],
  // In this order in the message for a block without a `type`.
  jsonAuth: [bearerJson, apiKeyJson, basicJson, clientCredentialsJson]
}
