/**
 * The SDK path's request streams in a cluster (`prompts/get`, `resources/read`,
 * `completion/complete`, batches, the `tools/call`s the direct path declines), kept in the shared
 * event log as direct calls' streams are (`callEventStream.ts`), so a client whose stream broke
 * resumes it with `GET` + `Last-Event-ID` on any replica.
 *
 * The session's SDK transport stores its events through {@link sharedSdkStreamEvents}, which keeps
 * them in the session's own store under the direct path's stream ids (`<replica>:<sdk stream>`):
 * the ids a client sees name the replica serving the stream, so another replica knows at once to
 * follow the shared log (`Sessions2025.resumeDirectly`), and this one hands the resumption to the
 * SDK transport with its own stream id. A stream still unanswered when its first writes leave
 * (the response holds them {@link FIRST_WRITES_HELD_MS}: `nodeBridge.holdFirstWrites`) is written
 * to the shared log from then on, without waiting on Redis; one answered sooner writes nothing
 * (its client cannot hold an event id to resume from). A stream without a priming event (clients
 * before 2025-11-25) is mirrored from its first event unless that event answers all of it. The session's GET stream stays local: it
 * is not a request's, and a new one on any replica gets what comes next.
 *
 * Used only with `cluster`: in one process the transport stores into the session's store directly.
 * @module
 */
import type { EventStore, JSONRPCMessage } from "@modelcontextprotocol/server"
import type { RequestId, SharedEventLogService } from "../../cluster/sharedEventLog.js"
import type { BoundedEventStore } from "./eventStore.js"

/** How long a response's first writes are held (`nodeBridge`'s FIRST_FLUSH_MS): a stream answered within it is never mirrored. */
export const FIRST_WRITES_HELD_MS = 50

/** The SDK transport's id of its standalone GET stream. */
const GET_STREAM = "_GET_stream"

export interface SharedSdkStreamEvents extends EventStore {
  /** The session's transport closed: answers unanswered mirrored streams with an error, and stores nothing more in Redis. */
  readonly close: () => void
}

/** One request stream seen by the store: waiting for its first writes to leave, or mirrored. */
interface Watched {
  timer: ReturnType<typeof setTimeout> | undefined
  /** Once mirrored: the requests it has still to answer. */
  pending: Set<RequestId> | undefined
}

/** The request a message answers, if it is an answer. */
const answerOf = (message: JSONRPCMessage): RequestId | undefined =>
  "id" in message && ("result" in message || "error" in message) ? (message.id as RequestId) : undefined

const isPriming = (message: JSONRPCMessage) => Object.keys(message).length === 0

export const sharedSdkStreamEvents = (
  events: BoundedEventStore,
  log: SharedEventLogService,
  replica: string,
  /** The session whose streams these are: only it may resume them (`StreamOwner.session`). */
  sessionId: string,
  /** The requests an SDK stream answers (the transport's own record). */
  requestsOf: (sdkStream: string) => ReadonlyArray<RequestId>
): SharedSdkStreamEvents => {
  const prefix = `${replica}:`
  const watched = new Map<string, Watched>()
  let closed = false
  /** The transport's stream id of a shared one this replica made (others' are passed as they are). */
  const sdkStreamOf = (stream: string) => stream.startsWith(prefix) ? stream.slice(prefix.length) : stream

  const append = (stream: string, id: string, message: JSONRPCMessage, pending: Set<RequestId>) => {
    const answers = answerOf(message)
    log.append(stream, id, JSON.stringify(message), answers)
    if (answers !== undefined) pending.delete(answers)
  }
  const finish = (stream: string, watch: Watched) => {
    clearTimeout(watch.timer)
    watched.delete(stream)
  }

  /** The stream's first writes left: unanswered, it goes to the shared log, what it sent so far first. */
  const startMirroring = (sdkStream: string, stream: string, watch: Watched) => {
    watch.timer = undefined
    const requests = requestsOf(sdkStream)
    const pending = new Set(requests)
    // What the stream answered so far (the transport forgets its requests once all are answered).
    for (const event of events.storedIn(stream)) {
      const answers = answerOf(event.message)
      if (answers !== undefined) pending.delete(answers)
    }
    if (closed || pending.size === 0) return finish(stream, watch)
    log.open(stream, { callId: requests[0]!, replica, session: sessionId, ...(requests.length > 1 ? { batch: requests } : {}) })
    for (const event of events.storedIn(stream)) {
      if (!isPriming(event.message)) append(stream, event.id, event.message, new Set())
    }
    watch.pending = pending
  }

  return {
    storeEvent: async (sdkStream, message) => {
      if (sdkStream === GET_STREAM || closed) return events.store(sdkStream, message)
      const stream = prefix + sdkStream
      const id = events.store(stream, message)
      const watch = watched.get(stream)
      if (watch === undefined) {
        const fresh: Watched = { timer: undefined, pending: undefined }
        watched.set(stream, fresh)
        if (isPriming(message)) {
          // The stream just began: its first writes are held from about now.
          fresh.timer = setTimeout(() => startMirroring(sdkStream, stream, fresh), FIRST_WRITES_HELD_MS)
          fresh.timer.unref()
        } else {
          // No priming event (a client before 2025-11-25): this first event may come long after
          // the hold ended and leave at once, so the stream goes to the shared log now, unless
          // this event answers all of it (a quick request).
          startMirroring(sdkStream, stream, fresh)
        }
      } else if (watch.pending !== undefined) {
        append(stream, id, message, watch.pending)
        if (watch.pending.size === 0) {
          log.end(stream)
          finish(stream, watch)
        }
      }
      return id
    },
    getStreamIdForEventId: async (eventId) => {
      const dot = eventId.lastIndexOf(".")
      return dot > 0 ? sdkStreamOf(eventId.slice(0, dot)) : undefined
    },
    replayEventsAfter: async (lastEventId, sender) => sdkStreamOf(await events.replayEventsAfter(lastEventId, sender)),
    close: () => {
      closed = true
      for (const [stream, watch] of watched) {
        // The replica lives on, so a follower would wait for an answer that will not come.
        if (watch.pending !== undefined) {
          for (const id of watch.pending) {
            log.append(stream, `${stream}.closed`, JSON.stringify({
              jsonrpc: "2.0",
              id,
              error: { code: -32603, message: "The gateway replica running this request closed the session; its outcome is unknown" }
            }), id)
          }
          log.end(stream)
        }
        clearTimeout(watch.timer)
      }
      watched.clear()
    }
  }
}

/**
 * The requests each of the SDK transport's request streams answers. The transport keeps them in a
 * private map (`_requestToStreamMapping`, set before the stream's first event, cleared once it is
 * answered) and offers no public way to read it; without it (another SDK version) no stream is
 * mirrored and resumption stays on the serving replica, as before (test/cluster/sdkStreams.test.ts
 * fails then).
 */
export const transportRequestsOf = (transport: object, sdkStream: string): ReadonlyArray<RequestId> => {
  const mapping = (transport as { readonly _requestToStreamMapping?: unknown })._requestToStreamMapping
  if (!(mapping instanceof Map)) return []
  const requests: Array<RequestId> = []
  for (const [id, stream] of mapping) if (stream === sdkStream) requests.push(id as RequestId)
  return requests
}
