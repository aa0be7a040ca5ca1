/**
 * Server-sent events read from a response body, as the HTML standard parses them
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
 * `data` lines joined with newlines, `id` kept across events, `retry` in milliseconds, comments
 * and unknown fields ignored. Used where the gateway reads an upstream's event stream itself
 * instead of through the SDK's transport (which pipes every body through two web streams).
 *
 * Linear in the body: a chunk that ends no line is set aside, not rescanned, until one that does
 * arrives (a tool result is one `data:` line, megabytes long for an image).
 * @module
 */
import { StringDecoder } from "node:string_decoder"

export interface SseEvent {
  /** The event's type (`event:`); `message` when it named none. */
  readonly type: string
  /** The stream's last event id after this event (an event without `id:` keeps the previous one). */
  readonly lastEventId: string | undefined
  /** The event's data; `""` for an event that only set an id or a retry (a priming event). */
  readonly data: string
  /** The reconnection delay the server asked for, if this event set one. */
  readonly retry: number | undefined
}

/** Where the next line ends in `text` from `from`: the index of its `\r` or `\n`, or -1. */
const lineEnd = (text: string, from: number): number => {
  const lf = text.indexOf("\n", from)
  const cr = text.indexOf("\r", from)
  return cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf)
}

/**
 * Splits a stream of UTF-8 chunks into events: a web stream, or a Node stream (undici's body).
 * The stream is cancelled (or destroyed) when the events are no longer read.
 */
export async function* sseEvents(body: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  // Not a TextDecoder: making one builds an ICU converter, once per call's stream (bench/README.md).
  const decoder = new StringDecoder("utf8")
  // Node's web streams are async iterable too; ending the iteration cancels them.
  const chunks = (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]()
  /** The start of an unfinished line, in pieces (joined once the line ends). */
  let partial: Array<string> = []
  let data: Array<string> = []
  let type = ""
  let lastEventId: string | undefined
  let retry: number | undefined
  let fields = 0
  // A `\r` at the end of a chunk may be the first half of `\r\n`.
  let pendingCr = false
  try {
    for (;;) {
      const { done, value } = await chunks.next()
      if (done === true) return
      let text = decoder.write(value)
      if (pendingCr) {
        pendingCr = false
        if (text.startsWith("\n")) text = text.slice(1)
      }
      let end = lineEnd(text, 0)
      if (end === -1) {
        if (text !== "") partial.push(text)
        continue
      }
      if (partial.length > 0) {
        partial.push(text)
        const joined = partial.join("")
        end += joined.length - text.length
        text = joined
        partial = []
      }
      let start = 0
      while (end !== -1) {
        const line = text.slice(start, end)
        if (text[end] === "\r") {
          if (end + 1 === text.length) pendingCr = true
          else if (text[end + 1] === "\n") end++
        }
        start = end + 1
        end = lineEnd(text, start)
        if (line === "") {
          if (fields > 0) yield { type: type === "" ? "message" : type, lastEventId, data: data.join("\n"), retry }
          data = []
          type = ""
          retry = undefined
          fields = 0
          continue
        }
        if (line.startsWith(":")) continue
        const colon = line.indexOf(":")
        const field = colon === -1 ? line : line.slice(0, colon)
        let fieldValue = colon === -1 ? "" : line.slice(colon + 1)
        if (fieldValue.startsWith(" ")) fieldValue = fieldValue.slice(1)
        if (field === "data") data.push(fieldValue)
        else if (field === "id") {
          if (!fieldValue.includes("\u0000")) lastEventId = fieldValue
        } else if (field === "retry") {
          if (/^\d+$/.test(fieldValue)) retry = Number(fieldValue)
        } else if (field === "event") type = fieldValue
        else continue
        fields++
      }
      if (start < text.length) partial.push(text.slice(start))
    }
  } finally {
    await chunks.return?.()?.catch(() => {})
  }
}
