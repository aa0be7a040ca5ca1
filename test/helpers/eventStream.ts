/**
 * Reading a 2025-era response's SSE events in tests: each event's id and its JSON-RPC message
 * (none for a priming event), and the progress values among them.
 */
import { sseEvents } from "../../src/upstream/sseEvents.js"

export type Event = { readonly id: string; readonly message: Record<string, any> | undefined }

/** Reads a response's events until `stop` says so or the stream ends. */
export const readEvents = async (body: ReadableStream<Uint8Array>, stop: (events: ReadonlyArray<Event>) => boolean = () => false) => {
  const events: Array<Event> = []
  for await (const event of sseEvents(body)) {
    events.push({ id: event.lastEventId ?? "", message: event.data === "" ? undefined : JSON.parse(event.data) })
    if (stop(events)) break
  }
  return events
}

/** The `progress` values of the progress notifications among `events`, in order. */
export const progressOf = (events: ReadonlyArray<Event>) =>
  events.flatMap((e) => e.message?.["method"] === "notifications/progress" ? [e.message["params"].progress as number] : [])
