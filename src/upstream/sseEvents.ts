/**
 * Server-sent events read from a response body, as the HTML standard parses them
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
 * `data` lines joined with newlines, `id` kept across events, `retry` in milliseconds, comments
 * and unknown fields ignored. Used where the gateway reads an upstream's event stream itself
 * instead of through the SDK's transport (which pipes every body through two web streams).
 * @module
 */

export interface SseEvent {
  /** The stream's last event id after this event (an event without `id:` keeps the previous one). */
  readonly lastEventId: string | undefined
  /** The event's data; `""` for an event that only set an id or a retry (a priming event). */
  readonly data: string
  /** The reconnection delay the server asked for, if this event set one. */
  readonly retry: number | undefined
}

/** Splits a stream of UTF-8 chunks into events. */
export async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder()
  const reader = body.getReader()
  let buffer = ""
  let data: Array<string> = []
  let lastEventId: string | undefined
  let retry: number | undefined
  let fields = 0
  // A `\r` at the end of a chunk may be the first half of `\r\n`.
  let pendingCr = false
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      let text = decoder.decode(value, { stream: true })
      if (pendingCr) {
        pendingCr = false
        if (text.startsWith("\n")) text = text.slice(1)
      }
      buffer += text
      let start = 0
      for (;;) {
        let end = start
        while (end < buffer.length && buffer[end] !== "\n" && buffer[end] !== "\r") end++
        if (end === buffer.length) break
        const line = buffer.slice(start, end)
        if (buffer[end] === "\r") {
          if (end + 1 === buffer.length) pendingCr = true
          else if (buffer[end + 1] === "\n") end++
        }
        start = end + 1
        if (line === "") {
          if (fields > 0) yield { lastEventId, data: data.join("\n"), retry }
          data = []
          retry = undefined
          fields = 0
          continue
        }
        if (line.startsWith(":")) continue
        const colon = line.indexOf(":")
        const field = colon === -1 ? line : line.slice(0, colon)
        let value = colon === -1 ? "" : line.slice(colon + 1)
        if (value.startsWith(" ")) value = value.slice(1)
        if (field === "data") data.push(value)
        else if (field === "id") {
          if (!value.includes("\u0000")) lastEventId = value
        } else if (field === "retry") {
          if (/^\d+$/.test(value)) retry = Number(value)
        } else if (field !== "event") continue
        fields++
      }
      buffer = buffer.slice(start)
    }
  } finally {
    reader.releaseLock()
    await body.cancel().catch(() => {})
  }
}
