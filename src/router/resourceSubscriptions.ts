/**
 * Who is subscribed to which resource (2025-era `resources/subscribe`). Many sessions share one
 * upstream subscription: the first subscriber opens it upstream, the last one closes it, and
 * each `notifications/resources/updated` is delivered only to the sessions that asked.
 * @module
 */
/** What a session needs to receive resource updates. */
export interface SessionSink {
  readonly sendResourceUpdated: (uri: string) => Promise<void>
}

interface Subscription {
  readonly connectorId: string
  readonly upstreamUri: string
  readonly exposedUri: string
  readonly sinks: Set<SessionSink>
  /** The upstream subscribe, which every subscriber waits on (settled once it has answered). */
  opened: Promise<void>
}

const keyOf = (connectorId: string, upstreamUri: string) => `${connectorId}\u0000${upstreamUri}`

export class ResourceSubscriptions {
  private readonly byKey = new Map<string, Subscription>()

  /**
   * Adds a subscriber. The first one runs `open` (the upstream subscribe); every subscriber waits
   * for it, so none is told "subscribed" before the upstream is. When it fails, the subscription
   * is forgotten with all its subscribers (each gets the error), and the next subscriber opens it
   * afresh: a failed upstream subscribe must not leave a record that stops later ones from trying.
   */
  subscribe(connectorId: string, upstreamUri: string, exposedUri: string, sink: SessionSink, open: () => Promise<void>): Promise<void> {
    const key = keyOf(connectorId, upstreamUri)
    const existing = this.byKey.get(key)
    if (existing !== undefined) {
      existing.sinks.add(sink)
      return existing.opened
    }
    const subscription: Subscription = { connectorId, upstreamUri, exposedUri, sinks: new Set([sink]), opened: Promise.resolve() }
    this.byKey.set(key, subscription)
    subscription.opened = open().catch((error: unknown) => {
      if (this.byKey.get(key) === subscription) this.byKey.delete(key)
      throw error
    })
    return subscription.opened
  }

  /** Removes a subscriber; `true` when it was the last (close the upstream subscription). */
  remove(connectorId: string, upstreamUri: string, sink: SessionSink): boolean {
    const key = keyOf(connectorId, upstreamUri)
    const subscription = this.byKey.get(key)
    if (subscription === undefined || !subscription.sinks.delete(sink)) return false
    if (subscription.sinks.size > 0) return false
    this.byKey.delete(key)
    return true
  }

  /** Removes a closed session everywhere; returns the subscriptions nobody holds any more. */
  drop(sink: SessionSink): Array<{ readonly connectorId: string; readonly upstreamUri: string }> {
    const emptied: Array<{ connectorId: string; upstreamUri: string }> = []
    for (const [key, subscription] of this.byKey) {
      if (subscription.sinks.delete(sink) && subscription.sinks.size === 0) {
        this.byKey.delete(key)
        emptied.push({ connectorId: subscription.connectorId, upstreamUri: subscription.upstreamUri })
      }
    }
    return emptied
  }

  /** The subscribers of an upstream resource and the URI they know it by. */
  subscribersOf(connectorId: string, upstreamUri: string): { readonly exposedUri: string; readonly sinks: ReadonlySet<SessionSink> } | undefined {
    return this.byKey.get(keyOf(connectorId, upstreamUri))
  }

  /** Forgets every subscription (the router is closing; its upstreams close with it). */
  clear(): void {
    this.byKey.clear()
  }

  /** Resources with subscribers. */
  get size(): number {
    return this.byKey.size
  }

  /** The upstream URIs of a connector that have subscribers (to re-subscribe after a reconnect). */
  urisOf(connectorId: string): Array<string> {
    return [...this.byKey.values()].filter((s) => s.connectorId === connectorId).map((s) => s.upstreamUri)
  }
}
