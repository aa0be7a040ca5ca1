/**
 * The per-session event store behind `Last-Event-ID` resumption (2025 era): every SSE event a
 * session is sent is kept briefly, so a client whose stream broke can resume it. Bounded, so a
 * session cannot grow without limit: at most {@link MAX_EVENTS} events and about
 * {@link MAX_BYTES} of payload, none older than {@link MAX_AGE_MS}; {@link BoundedEventStore.prune}
 * applies the age limit to a session that sends nothing more (the idle sweep calls it).
 *
 * Messages are kept as the objects already in memory: serialising them to measure their bytes
 * would cost every message a second serialisation (it dominated `tools/list`). Their
 * size is estimated from the fields that carry bulk instead (text, base64 data, list items).
 * @module
 */
import type { EventStore, JSONRPCMessage } from "@modelcontextprotocol/server"

export const MAX_EVENTS = 200
export const MAX_AGE_MS = 2 * 60_000
/** Payload kept per session. A 16 KiB tool result ×200 would otherwise hold 3 MiB+ per session for minutes. */
export const MAX_BYTES = 2 * 1024 * 1024

interface StoredEvent {
  readonly id: string
  readonly stream: string
  readonly message: JSONRPCMessage
  readonly at: number
  readonly bytes: number
}

export interface BoundedEventStore extends EventStore {
  /** {@link EventStore.storeEvent}, synchronous: the event's id. */
  readonly store: (stream: string, message: JSONRPCMessage) => string
  /** The events of `stream` held now, oldest first (priming events included). */
  readonly storedIn: (stream: string) => ReadonlyArray<{ readonly id: string; readonly message: JSONRPCMessage }>
  /** Drops events past the age limit. */
  readonly prune: () => void
  /** Events held and their estimated payload bytes. */
  readonly held: () => { readonly events: number; readonly bytes: number }
}

/** Envelope, ids, method names: what every message costs besides its bulk. */
const MESSAGE_OVERHEAD = 128
const ITEM_OVERHEAD = 64
const BULK_LISTS = ["content", "contents", "tools", "prompts", "resources", "resourceTemplates", "messages"] as const

const stringsOf = (item: unknown): number => {
  if (typeof item !== "object" || item === null) return 0
  let bytes = ITEM_OVERHEAD
  for (const value of Object.values(item)) {
    if (typeof value === "string") bytes += value.length
    else if (typeof value === "object" && value !== null && "text" in value && typeof value.text === "string") {
      bytes += value.text.length // a sampling message's `content`
    }
  }
  return bytes
}

/**
 * About how many bytes a message holds: the string fields of the items in its bulk lists (tool
 * results' text and image data, resource contents, list entries), in one pass over those lists.
 */
export const estimateBytes = (message: JSONRPCMessage): number => {
  const body = ("result" in message ? message.result : "params" in message ? message.params : undefined) as
    | Record<string, unknown>
    | undefined
  let bytes = MESSAGE_OVERHEAD
  if (body === undefined) return bytes
  for (const key of BULK_LISTS) {
    const items = body[key]
    if (Array.isArray(items)) for (const item of items) bytes += stringsOf(item)
  }
  return bytes
}

/** Event ids are `<stream>.<sequence>`: the stream is recoverable, the order total. */
export const boundedEventStore = (now: () => number = Date.now): BoundedEventStore => {
  const events: Array<StoredEvent> = []
  let bytes = 0
  let sequence = 0
  const dropOldest = () => {
    bytes -= events.shift()!.bytes
  }
  const pruneByAge = () => {
    const oldest = now() - MAX_AGE_MS
    while (events.length > 0 && events[0]!.at < oldest) dropOldest()
  }
  const sequenceOf = (id: string) => Number(id.slice(id.lastIndexOf(".") + 1))
  const store = (stream: string, message: JSONRPCMessage) => {
    const id = `${stream}.${++sequence}`
    const size = estimateBytes(message)
    events.push({ id, stream, message, at: now(), bytes: size })
    bytes += size
    // The newest event is kept whatever its size: it is the one a broken stream most needs.
    while (events.length > 1 && (events.length > MAX_EVENTS || bytes > MAX_BYTES)) dropOldest()
    pruneByAge()
    return id
  }
  return {
    store,
    storeEvent: async (stream, message) => store(stream, message),
    storedIn: (stream) => events.filter((event) => event.stream === stream),
    getStreamIdForEventId: async (id) => {
      const dot = id.lastIndexOf(".")
      return dot > 0 ? id.slice(0, dot) : undefined
    },
    replayEventsAfter: async (lastEventId, { send }) => {
      pruneByAge()
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
    },
    prune: pruneByAge,
    held: () => ({ events: events.length, bytes })
  }
}
