import { describe, expect, it } from "vitest"
import { sseEvents } from "./sseEvents.js"

/** A body delivered in exactly these chunks. */
const bodyOf = (...chunks: Array<string>) => {
  const encoder = new TextEncoder()
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk))
      controller.close()
    }
  })
}

const all = async (body: ReadableStream<Uint8Array>) => {
  const events = []
  for await (const event of sseEvents(body)) events.push(event)
  return events
}

describe("sseEvents", () => {
  it("reads a priming event, then messages, keeping the last id", async () => {
    const events = await all(bodyOf("id: s.1\nretry: 1000\ndata: \n\n", "event: message\nid: s.2\ndata: {\"a\":1}\n\n", "data: {\"b\":2}\n\n"))
    expect(events).toEqual([
      { type: "message", lastEventId: "s.1", data: "", retry: 1000 },
      { type: "message", lastEventId: "s.2", data: "{\"a\":1}", retry: undefined },
      { type: "message", lastEventId: "s.2", data: "{\"b\":2}", retry: undefined }
    ])
  })

  it("joins data lines, skips comments, and accepts CRLF split across chunks", async () => {
    const events = await all(bodyOf(": keepalive\r", "\n\r\ndata: one\r", "\ndata:two\r\n", "\r\nid: x\n\n"))
    expect(events).toEqual([
      { type: "message", lastEventId: undefined, data: "one\ntwo", retry: undefined },
      { type: "message", lastEventId: "x", data: "", retry: undefined }
    ])
  })

  it("ignores a retry that is not a number and an id holding NUL", async () => {
    const events = await all(bodyOf("id: a\n\nretry: soon\nid: b\u0000c\ndata: d\n\n"))
    expect(events).toEqual([
      { type: "message", lastEventId: "a", data: "", retry: undefined },
      { type: "message", lastEventId: "a", data: "d", retry: undefined }
    ])
  })

  it("names an event's type", async () => {
    const events = await all(bodyOf("event: ping\ndata: x\n\nevent:\ndata: y\n\n"))
    expect(events.map((e) => e.type)).toEqual(["ping", "message"])
  })

  it("reads a multi-megabyte data line arriving in small chunks", async () => {
    const payload = "x".repeat(8 * 1024 * 1024)
    const text = `data: ${payload}\n\n`
    const chunks: Array<string> = []
    for (let i = 0; i < text.length; i += 16 * 1024) chunks.push(text.slice(i, i + 16 * 1024))
    const events = await all(bodyOf(...chunks))
    expect(events).toHaveLength(1)
    expect(events[0]!.data.length).toBe(payload.length)
  })

  it("drops an event the stream ends before completing", async () => {
    expect(await all(bodyOf("data: whole\n\ndata: cut"))).toEqual([{ type: "message", lastEventId: undefined, data: "whole", retry: undefined }])
  })
})
