/**
 * An upstream's error answer (4xx/5xx) to a proxied request, read whole and scrubbed of the
 * credential the gateway sent with it before it reaches the caller: an API's error page may echo
 * the request's headers or URL ("invalid key abc123"). Success bodies stream through untouched.
 *
 * The body is decoded first when the upstream compressed it (gzip, deflate, br), and sent on
 * uncompressed. One past {@link MAX_ERROR_BODY_BYTES}, or in an encoding this cannot read, is not
 * passed on at all: it could not be checked.
 * @module
 */
import type { IncomingMessage } from "node:http"
import * as zlib from "node:zlib"
import * as Effect from "effect/Effect"
import { scrubSecrets } from "../auth/scrubSecrets.js"

/** Error pages are small; a larger error body is refused rather than buffered. */
export const MAX_ERROR_BODY_BYTES = 1024 * 1024
/** What a compressed error body may grow to once decoded (a small body can inflate enormously). */
const MAX_DECODED_BYTES = 8 * MAX_ERROR_BODY_BYTES

export type ScrubbedErrorBody =
  | { readonly _tag: "Scrubbed"; readonly body: Buffer }
  | { readonly _tag: "Unreadable"; readonly reason: string }

const decode = (encoding: string, raw: Buffer): Buffer | undefined => {
  switch (encoding) {
    case "":
    case "identity":
      return raw
    case "gzip":
    case "x-gzip":
      return zlib.gunzipSync(raw, { maxOutputLength: MAX_DECODED_BYTES })
    case "deflate":
      return zlib.inflateSync(raw, { maxOutputLength: MAX_DECODED_BYTES })
    case "br":
      return zlib.brotliDecompressSync(raw, { maxOutputLength: MAX_DECODED_BYTES })
    default:
      return undefined
  }
}

/** Reads `response` (at most {@link MAX_ERROR_BODY_BYTES}) and takes `secrets` out of it. */
export const scrubbedErrorBody = (response: IncomingMessage, secrets: ReadonlyArray<string>) =>
  Effect.async<ScrubbedErrorBody>((resume) => {
    const chunks: Array<Buffer> = []
    let size = 0
    const done = (outcome: ScrubbedErrorBody) => {
      response.removeAllListeners("data")
      resume(Effect.succeed(outcome))
    }
    response.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_ERROR_BODY_BYTES) {
        response.destroy()
        return done({ _tag: "Unreadable", reason: `its error body is over ${MAX_ERROR_BODY_BYTES} bytes` })
      }
      chunks.push(chunk)
    })
    response.once("error", () => done({ _tag: "Unreadable", reason: "its error body broke off" }))
    response.once("end", () => {
      const encoding = String(response.headers["content-encoding"] ?? "").trim().toLowerCase()
      let decoded: Buffer | undefined
      try {
        decoded = decode(encoding, Buffer.concat(chunks))
      } catch {
        return done({ _tag: "Unreadable", reason: `its error body is not valid ${encoding} or decodes to over ${MAX_DECODED_BYTES} bytes` })
      }
      if (decoded === undefined) return done({ _tag: "Unreadable", reason: `its error body is in ${encoding}` })
      // Byte for byte (latin1), with the secrets in their UTF-8 bytes.
      const bytes = secrets.map((secret) => Buffer.from(secret, "utf8").toString("latin1"))
      done({ _tag: "Scrubbed", body: Buffer.from(scrubSecrets(decoded.toString("latin1"), bytes), "latin1") })
    })
    return Effect.sync(() => response.destroy())
  })
