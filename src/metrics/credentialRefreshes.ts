/**
 * Counts token refreshes for any auth plugin, built-in or custom, without the plugin's help:
 * a credential whose header or query value changes after its first use has obtained a new
 * token. (A plugin that signs every request differently counts every request.)
 * @module
 */
import * as Effect from "effect/Effect"
import type { Authorization, Credential } from "../plugin/AuthPlugin.js"

const fingerprint = (authorization: Authorization): string => {
  let text = ""
  for (const name in authorization.headers) text += `${name}\u0000${authorization.headers[name]}\u0001`
  for (const name in authorization.query) text += `?${name}\u0000${authorization.query[name]}\u0001`
  return text
}

/** The same credential, calling `onRefresh` each time it yields a value different from the last. */
export const countRefreshes = (credential: Credential, onRefresh: () => void): Credential => {
  let last: string | undefined
  const observed: Credential = {
    authorize: (request) =>
      Effect.map(credential.authorize(request), (authorization) => {
        const current = fingerprint(authorization)
        if (last !== undefined && current !== last) onRefresh()
        last = current
        return authorization
      })
  }
  return credential.onUnauthorized === undefined ? observed : { ...observed, onUnauthorized: credential.onUnauthorized }
}
