/**
 * The per-session event store behind `Last-Event-ID` resumption (2025 era): every SSE event a
 * session is sent is kept briefly, so a client whose stream broke can resume it. Bounded, so a
 * session cannot grow without limit: at most {@link MAX_EVENTS} events, none older than
 * {@link MAX_AGE_MS}. Messages are kept as the objects already in memory: measuring their bytes
 * would mean serialising every message twice (measured: a second serialisation of large list
 * results dominated `tools/list`), and each message is already capped by the transport.
 * @module
 */
import type { EventStore, JSONRPCMessage } from "@modelcontextprotocol/server"

export const MAX_EVENTS = 200
export const MAX_AGE_MS = 2 * 60_000

interface StoredEvent {
  readonly id: string
  readonly stream: string
  readonly message: JSONRPCMessage
  readonly at: number
}

/** Event ids are `<stream>.<sequence>`: the stream is recoverable, the order total. */
export const boundedEventStore = (now: () => number = Date.now): EventStore => {
  const events: Array<StoredEvent> = []
  let sequence = 0
  const evict = () => {
    const oldest = now() - MAX_AGE_MS
    while (events.length > 0 && (events.length > MAX_EVENTS || events[0]!.at < oldest)) events.shift()
  }
  const sequenceOf = (id: string) => Number(id.slice(id.lastIndexOf(".") + 1))
  return {
    storeEvent: async (stream, message) => {
      const id = `${stream}.${++sequence}`
      events.push({ id, stream, message, at: now() })
      evict()
      return id
    },
    getStreamIdForEventId: async (id) => {
      const dot = id.lastIndexOf(".")
      return dot > 0 ? id.slice(0, dot) : undefined
    },
    replayEventsAfter: async (lastEventId, { send }) => {
      evict()
      const dot = lastEventId.lastIndexOf(".")
      if (dot <= 0) throw new Error("unknown event id")
      const stream = lastEventId.slice(0, dot)
      const after = sequenceOf(lastEventId)
      for (const event of events) {
        if (event.stream === stream && sequenceOf(event.id) > after && Object.keys(event.message).length > 0) {
          await send(event.id, event.message)
        }
      }
      return stream
    }
  }
}
