/**
 * A `subscriptions/listen` answer read in either framing. The 2026-07-28 transport streams a
 * listen subscription as SSE, but some servers stream it as JSON messages one after another
 * (newline-delimited JSON under `content-type: application/json`). The SDK's transport reads an
 * `application/json` answer with `response.json()`, which waits for a body that never ends: the
 * subscription is never acknowledged and no list change ever arrives. This `fetch` wrapper
 * re-frames such an answer as SSE, message by message as each arrives, before the SDK sees it.
 * Every other answer passes through untouched. (The connector's `fetch` reads a JSON answer whole
 * before returning it, except a listen request's: `upstreamFetch.ts`.)
 * @module
 */
import type { FetchLike } from "@modelcontextprotocol/client"

/** Whether a POST body is a listen request as the SDK client serializes it (`JSON.stringify`, no spaces; small). */
export const isListenRequest = (body: unknown): boolean =>
  typeof body === "string" && body.length < 16_384 && body.includes(`"method":"subscriptions/listen"`)

/** Media types a stream of JSON messages arrives under. */
const JSON_STREAM_TYPES: ReadonlySet<string> = new Set(["application/json", "application/x-ndjson", "application/jsonl", "application/json-seq"])

const mediaType = (contentType: string | null) => (contentType ?? "").split(";")[0]!.trim().toLowerCase()

/**
 * Splits text into top-level JSON values as they complete: newline-delimited JSON, values simply
 * concatenated, and one value spread over many lines (a pretty-printed error) alike.
 * `push` returns the values the chunk completed.
 */
export const jsonValueSplitter = () => {
  /** The unfinished value, from its first character. */
  let buffer = ""
  let depth = 0
  let inString = false
  let escaped = false
  return (chunk: string): Array<string> => {
    const values: Array<string> = []
    const text = buffer + chunk
    let start = buffer === "" ? -1 : 0
    for (let i = buffer.length; i < text.length; i++) {
      const c = text.charCodeAt(i)
      if (depth === 0) {
        // Only objects and arrays are JSON-RPC messages; what lies between them (newlines,
        // record separators) is skipped.
        if (c === 123 /* { */ || c === 91 /* [ */) {
          start = i
          depth = 1
        }
        continue
      }
      if (inString) {
        if (escaped) escaped = false
        else if (c === 92 /* \ */) escaped = true
        else if (c === 34 /* " */) inString = false
      } else if (c === 34) inString = true
      else if (c === 123 || c === 91) depth++
      else if ((c === 125 /* } */ || c === 93 /* ] */) && --depth === 0) {
        values.push(text.slice(start, i + 1))
        start = -1
      }
    }
    buffer = start === -1 ? "" : text.slice(start)
    return values
  }
}

/** Re-frames a body of JSON messages as SSE events, one `message` event per JSON-RPC message. */
const asEventStream = (body: ReadableStream<Uint8Array>, signal: AbortSignal | null | undefined): ReadableStream<Uint8Array> => {
  const decoder = new TextDecoder()
  const encoder = new TextEncoder()
  const split = jsonValueSplitter()
  const reader = body.getReader()
  // Closing the subscription aborts its request: the stream ends with it (the connector's fetch
  // ties its signal only to SSE bodies).
  signal?.addEventListener("abort", () => void reader.cancel(signal.reason).catch(() => {}), { once: true })
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return controller.close()
        let events = ""
        for (const text of split(decoder.decode(value, { stream: true }))) {
          let parsed: unknown
          try {
            parsed = JSON.parse(text)
          } catch {
            continue // as the SDK reads an unparsable SSE event: skipped
          }
          for (const message of Array.isArray(parsed) ? parsed : [parsed]) events += `data: ${JSON.stringify(message)}\n\n`
        }
        if (events !== "") return controller.enqueue(encoder.encode(events))
      }
    },
    cancel: (reason) => reader.cancel(reason)
  })
}

/** `fetch` that hands the SDK every `subscriptions/listen` stream as SSE, whatever its framing. */
export const readListenInEitherFraming = (fetch: FetchLike): FetchLike => async (input, init) => {
  const response = await fetch(input, init)
  if (!response.ok || response.body === null || init?.method !== "POST" || !isListenRequest(init.body)) return response
  if (!JSON_STREAM_TYPES.has(mediaType(response.headers.get("content-type")))) return response
  const headers = new Headers(response.headers)
  headers.set("content-type", "text/event-stream")
  headers.delete("content-length")
  return new Response(asEventStream(response.body, init.signal), { status: response.status, statusText: response.statusText, headers })
}
