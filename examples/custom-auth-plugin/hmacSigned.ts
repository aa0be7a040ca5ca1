/**
 * A custom auth plugin: every upstream request is signed with HMAC-SHA256 and a shared key,
 * in the style of AWS Signature V4 — a per-day signing key derived from the secret, a
 * canonical request (method, path, sorted query, timestamp, body hash), the signature in
 * `Authorization`. The upstream refuses a timestamp more than 5 minutes off its clock; when it
 * does, it answers 401 with its `Date`, and the plugin corrects its clock and asks for one retry.
 *
 * It uses the same interface as the built-ins: `defineAuthPlugin({ name, options, make })`.
 * `make` runs once per connector, in the connector's Scope: the derived keys and the clock
 * offset live there, and the keys are wiped when the connector stops.
 *
 * `verifySignature` is the upstream's half, for servers that accept these requests.
 * @module
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto"
import { AuthError, type Credential, defineAuthPlugin, Secret } from "aperture"
import { Effect, Redacted, Schema } from "effect"

export const SCHEME = "APERTURE-HMAC-SHA256"
/** How far a request's timestamp may be from the upstream's clock. */
export const MAX_SKEW_SECONDS = 300

const hmac = (key: Buffer | string, data: string) => createHmac("sha256", key).update(data).digest()
const sha256 = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex")

/** The per-day key: HMAC(HMAC("APERTURE1" + secret, day), "request"), so the secret itself never signs. */
export const deriveKey = (secret: string, day: string) => hmac(hmac(`APERTURE1${secret}`, day), "request")

/** What is signed: method, path, sorted query, timestamp and the body's SHA-256. */
export const canonicalRequest = (method: string, url: URL, timestamp: number, bodyHash: string) => {
  const query = [...url.searchParams].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}=${v}`).join("&")
  return [method.toUpperCase(), url.pathname, query, String(timestamp), bodyHash].join("\n")
}

const dayOf = (timestamp: number) => new Date(timestamp * 1000).toISOString().slice(0, 10).replace(/-/g, "")

export const HmacOptions = Schema.Struct({
  /** Names the key to the upstream (it may hold several). */
  keyId: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._-]+$/, { message: () => "letters, digits, \".\", \"_\" and \"-\"" })),
  /** The shared secret: a string or env("NAME"). */
  secret: Secret
})

export const hmacSigned = defineAuthPlugin({
  name: "hmacSigned",
  type: "hmac",
  options: HmacOptions,
  make: ({ keyId, secret }) =>
    Effect.gen(function*() {
      // State held in the connector's scope: derived keys by day, and the clock correction.
      const keys = yield* Effect.acquireRelease(
        Effect.sync(() => new Map<string, Buffer>()),
        (map) =>
          Effect.sync(() => {
            for (const key of map.values()) key.fill(0)
            map.clear()
          })
      )
      let offsetSeconds = 0

      const keyFor = (day: string) => {
        let key = keys.get(day)
        if (key === undefined) {
          keys.clear() // yesterday's key is no longer needed
          key = deriveKey(Redacted.value(secret), day)
          keys.set(day, key)
        }
        return key
      }

      const credential: Credential = {
        authorize: (request) => {
          // A body that streams to the upstream cannot be hashed before it is sent: refuse
          // rather than sign it as empty (the upstream would refuse that signature anyway).
          if (request.bodyStreams === true) {
            return Effect.fail(new AuthError({ plugin: "hmacSigned", message: "cannot sign a request body that streams (send a Content-Length of at most 1 MiB)" }))
          }
          return Effect.sync(() => {
            const timestamp = Math.floor(Date.now() / 1000) + offsetSeconds
            const bodyHash = sha256(request.body ?? "")
            const signature = hmac(keyFor(dayOf(timestamp)), canonicalRequest(request.method, request.url, timestamp, bodyHash))
              .toString("hex")
            return {
              headers: {
                authorization: `${SCHEME} keyId=${keyId}, signature=${signature}`,
                "x-aperture-timestamp": String(timestamp),
                "x-aperture-content-sha256": bodyHash
              }
            }
          })
        },
        onUnauthorized: (_request, response) =>
          Effect.sync(() => {
            // Retry only when the refusal was about our clock; a bad signature stays refused.
            const serverDate = Date.parse(response.headers.get("date") ?? "")
            if (response.headers.get("x-aperture-error") !== "timestamp" || Number.isNaN(serverDate)) return false
            offsetSeconds = Math.round((serverDate - Date.now()) / 1000)
            return true
          })
      }
      return credential
    }),
  describe: (options) => `hmacSigned (key ${options.keyId})`
})

/** The upstream's check of a signed request. `now` is the upstream's clock, in seconds. */
export const verifySignature = (
  keys: ReadonlyMap<string, string>,
  request: { readonly method: string; readonly url: URL; readonly headers: Headers; readonly body: string },
  now: number
): { readonly ok: true } | { readonly ok: false; readonly reason: "signature" | "timestamp" } => {
  const match = new RegExp(`^${SCHEME} keyId=([^,]+), signature=([0-9a-f]{64})$`).exec(request.headers.get("authorization") ?? "")
  const timestamp = Number(request.headers.get("x-aperture-timestamp"))
  const secret = match ? keys.get(match[1]!) : undefined
  if (!match || secret === undefined || !Number.isInteger(timestamp)) return { ok: false, reason: "signature" }
  if (Math.abs(now - timestamp) > MAX_SKEW_SECONDS) return { ok: false, reason: "timestamp" }
  const bodyHash = sha256(request.body)
  if (request.headers.get("x-aperture-content-sha256") !== bodyHash) return { ok: false, reason: "signature" }
  const expected = hmac(deriveKey(secret, dayOf(timestamp)), canonicalRequest(request.method, request.url, timestamp, bodyHash))
  return timingSafeEqual(expected, Buffer.from(match[2]!, "hex")) ? { ok: true } : { ok: false, reason: "signature" }
}
