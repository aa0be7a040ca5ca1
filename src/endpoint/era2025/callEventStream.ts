/**
 * One call's SSE response on a 2025-era session, written by the gateway itself (see
 * `sessionCalls.ts`) as the SDK's transport writes it: a priming event (an id and the `retry`
 * delay, empty data) for clients of 2025-11-25 or later, then each message as an `event: message`
 * with an id. Every event is kept in the session's event store first, so a client whose
 * connection broke resumes with `Last-Event-ID` ({@link CallEventStream.attach}) and misses
 * nothing. Losing the connection does not cancel the call (a 2025-era client cancels with
 * `notifications/cancelled`).
 *
 * In a cluster the stream is also written to the shared event log (`cluster/sharedEventLog.ts`),
 * so it can be resumed on another replica, from the moment the client may have seen an event id:
 * when the held first writes leave before the answer. A quick call, answered in one write, costs
 * Redis nothing: a client that lost it has no event id to resume from.
 *
 * The head and the first events wait for the answer, as the SDK path's do
 * (`nodeBridge.holdFirstWrites`): a quick call leaves in one write.
 * @module
 */
import type { ServerResponse } from "node:http"
import type { JSONRPCMessage } from "@modelcontextprotocol/server"
import type { BoundedEventStore } from "./eventStore.js"
import type { SharedEventLogService, StreamOwner } from "../../cluster/sharedEventLog.js"
import { type FirstWritesHold, holdFirstWrites } from "../../http/nodeBridge.js"

/** An SSE comment this often keeps proxies from closing a quiet stream (the SDK's interval). */
const KEEP_ALIVE_MS = 15_000

/** One message (its JSON) as an SSE event with its id (JSON text never holds a raw newline). */
export const messageEvent = (id: string, data: string) => `event: message\nid: ${id}\ndata: ${data}\n\n`

/** Where a cluster keeps the stream for other replicas, and who answers it. */
export interface SharedCopy {
  readonly log: SharedEventLogService
  readonly owner: StreamOwner
}

export class CallEventStream {
  private out: ServerResponse | undefined
  private hold: FirstWritesHold | undefined
  private keepAlive: ReturnType<typeof setInterval> | undefined
  /** Events in the order they were stored, so writes never overtake each other. */
  private queue: Promise<void> = Promise.resolve()
  private ended = false
  /** A resumption is replaying: a second one is refused until it is connected (or gone). */
  private attaching = false
  /** Whether events go to the shared log too (see the module's header). */
  private mirroring = false

  constructor(
    readonly streamId: string,
    private readonly events: BoundedEventStore,
    private readonly onEnd: () => void,
    private readonly shared?: SharedCopy
  ) {}

  /** Starts the response on `out` (status, head, and the priming event when `priming`). */
  open(out: ServerResponse, headers: Record<string, string>, priming: { readonly retryMs: number } | undefined): void {
    out.writeHead(200, headers)
    this.hold = holdFirstWrites(out, this.shared === undefined ? undefined : () => this.startMirroring())
    this.use(out)
    if (priming !== undefined) {
      this.then(async () => {
        const id = await this.events.storeEvent(this.streamId, {} as JSONRPCMessage)
        this.write(`id: ${id}\nretry: ${priming.retryMs}\ndata: \n\n`)
      })
    }
  }

  /** Stores `message` and writes it, if a connection is open. */
  send(message: JSONRPCMessage): Promise<void> {
    return this.then(async () => {
      const id = await this.events.storeEvent(this.streamId, message)
      const data = JSON.stringify(message)
      if (this.mirroring) this.shared!.log.append(this.streamId, id, data)
      this.write(messageEvent(id, data))
    })
  }

  /** Ends the stream once what was sent has been written; a resumed connection ends too. */
  end(): void {
    this.then(() => {
      if (this.ended) return
      this.ended = true
      if (this.mirroring) this.shared!.log.end(this.streamId)
      this.stopTimers()
      this.out?.end()
      this.out = undefined
      this.onEnd()
    })
  }

  /**
   * The call was cancelled by its caller: it is answered no more, and its stream stays open
   * until the caller closes it, as the SDK's transport leaves it (a client that saw the stream
   * end would take it for a dropped connection and resume it).
   */
  endWhenClosed(): void {
    this.then(() => {
      const out = this.out
      if (out === undefined) this.end()
      else out.once("close", () => this.end())
    })
  }

  /** From now on the stream is in the shared log: who answers it, what it sent so far, the rest as it comes. */
  private startMirroring(): void {
    const { log, owner } = this.shared!
    this.then(async () => {
      if (this.ended || this.mirroring) return
      log.open(this.streamId, owner)
      await this.events.replayEventsAfter(`${this.streamId}.0`, {
        send: async (id, message) => log.append(this.streamId, id, JSON.stringify(message))
      }).catch(() => {})
      this.mirroring = true
    })
  }

  /**
   * Runs `step` after what was queued before it. A step that fails (an event the store refuses)
   * is skipped, never the ones after it: the stream still ends.
   */
  private then(step: () => void | Promise<void>): Promise<void> {
    this.queue = this.queue.then(step).catch(() => {})
    return this.queue
  }

  /** Whether a connection is writing this stream now. */
  get connected(): boolean {
    return this.out !== undefined || this.attaching
  }

  /**
   * A resumed connection (`Last-Event-ID`): replays what was stored after `lastEventId`, then
   * carries the rest of the call.
   */
  attach(out: ServerResponse, headers: Record<string, string>, lastEventId: string): void {
    out.writeHead(200, headers)
    this.attaching = true
    this.then(async () => {
      try {
        await this.events.replayEventsAfter(lastEventId, {
          send: async (id, message) => {
            out.write(messageEvent(id, JSON.stringify(message)))
          }
        }).catch(() => {})
        if (this.ended) out.end()
        else this.use(out)
      } finally {
        this.attaching = false
      }
    })
  }

  private use(out: ServerResponse): void {
    // Gone before it was used: nothing will say so again, and a resumption must not be refused.
    if (out.destroyed) return
    this.out = out
    out.once("close", () => {
      if (this.out !== out) return
      // The caller went away: keep storing events for a resumption.
      this.out = undefined
      this.stopTimers()
    })
    clearInterval(this.keepAlive)
    this.keepAlive = setInterval(() => this.write(": keepalive\n\n"), KEEP_ALIVE_MS)
    this.keepAlive.unref()
  }

  private write(text: string): void {
    const out = this.out
    if (out === undefined || out.destroyed) return
    if (!out.write(text)) this.hold?.flush()
  }

  private stopTimers(): void {
    this.hold?.stop()
    clearInterval(this.keepAlive)
  }
}
