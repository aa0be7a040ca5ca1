/**
 * The event bus behind 2026-07-28 `subscriptions/listen` streams, aware of who opened each
 * stream: a list change is delivered only to callers whose own visible list changed, and a
 * resource update only to callers who may read that resource.
 * @module
 */
import type { ServerEvent, ServerEventBus } from "@modelcontextprotocol/server"
import type { Identity } from "../../plugin/IdentityPlugin.js"
import { ContextWhileRunning } from "../../upstream/contextWhileRunning.js"

interface Listener<S> {
  readonly deliver: (event: ServerEvent) => void
  readonly identity: Identity | undefined
  readonly stream: object | undefined
  /** Per-listener memory of what it was last told (e.g. list fingerprints). */
  state: S | undefined
}

/** One per MCP endpoint: its listeners and the context naming their openers end with it ({@link close}). */
export class CallerEventBus<S> implements ServerEventBus {
  private readonly listeners = new Set<Listener<S>>()
  private readonly opener = new ContextWhileRunning<{ readonly identity: Identity; readonly stream: object | undefined }>()

  constructor(private readonly initialState: (identity: Identity) => S) {}

  /**
   * Runs `serve` as `identity`: a listen stream it opens belongs to that caller (and answers to
   * `stream`, for events meant for that one stream). The SDK subscribes the stream before its
   * handler's answer resolves, so the context can end then.
   */
  asCaller<A>(identity: Identity, serve: () => Promise<A>, stream?: object): Promise<A> {
    return this.opener.run({ identity, stream }, serve)
  }

  publish(event: ServerEvent): void {
    for (const listener of this.listeners) listener.deliver(event)
  }

  subscribe(deliver: (event: ServerEvent) => void): () => void {
    const opened = this.opener.getStore()
    const identity = opened?.identity
    const listener: Listener<S> = {
      deliver,
      identity,
      stream: opened?.stream,
      state: identity === undefined ? undefined : this.initialState(identity)
    }
    this.listeners.add(listener)
    return () => void this.listeners.delete(listener)
  }

  /** Delivers to each listener the events `decide` returns for it (and updates its memory). */
  publishPer(decide: (identity: Identity, state: S | undefined) => { readonly events: ReadonlyArray<ServerEvent>; readonly state: S }): void {
    for (const listener of this.listeners) {
      if (listener.identity === undefined) continue
      const { events, state } = decide(listener.identity, listener.state)
      listener.state = state
      for (const event of events) listener.deliver(event)
    }
  }

  /** Delivers an event to the listen stream opened under `stream` only. */
  deliverTo(stream: object, event: ServerEvent): void {
    for (const listener of this.listeners) if (listener.stream === stream) listener.deliver(event)
  }

  /** Forgets every listener (the endpoint is closing): nothing is delivered after. */
  close(): void {
    this.listeners.clear()
  }

  /** Listen streams subscribed. */
  get size(): number {
    return this.listeners.size
  }
}
