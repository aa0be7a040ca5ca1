/**
 * Reading at most the first KB of an answer's body: an upstream's or a token endpoint's error page
 * is only ever shown cut (see `boundedErrorText`), so the rest is not read at all, and the
 * stream is cancelled (a 50 MB or endless error body costs neither memory nor time).
 * @module
 */

/**
 * How much of an error answer is read: room for a JSON-RPC error in an HTTP 400 (a 2026-era
 * refusal, which is parsed), far less than an error page can be.
 */
export const ERROR_BODY_BYTES = 64 * 1024

export interface BoundedText {
  readonly text: string
  /** The body went on past the bound (or failed part-way): `text` is its start. */
  readonly cut: boolean
}

/**
 * The body's first `limit` bytes as text; leaving the loop early cancels the stream (an undici
 * body is destroyed, a web stream's reader cancelled). A body that fails part-way gives what
 * arrived.
 */
export const readBounded = async (body: AsyncIterable<Uint8Array> | null, limit = ERROR_BODY_BYTES): Promise<BoundedText> => {
  if (body === null) return { text: "", cut: false }
  const parts: Array<Uint8Array> = []
  let size = 0
  let cut = false
  try {
    for await (const chunk of body) {
      if (size + chunk.length > limit) {
        parts.push(chunk.subarray(0, limit - size))
        cut = true
        break
      }
      parts.push(chunk)
      size += chunk.length
    }
  } catch {
    cut = true
  }
  // A character split at the cut decodes as U+FFFD.
  return { text: new TextDecoder().decode(Buffer.concat(parts)), cut }
}

/**
 * Cut text with its secrets scrubbed: the cut may have split a secret, whose start no scrubbing
 * finds, so as much as the longest secret is dropped from the end too.
 */
export const scrubbedCut = (scrubbed: string, bounded: BoundedText, secrets: ReadonlyArray<string>): string => {
  if (!bounded.cut) return scrubbed
  const longest = secrets.reduce((max, secret) => Math.max(max, secret.length), 0)
  return `${scrubbed.slice(0, Math.max(0, scrubbed.length - longest))}… (cut)`
}
