/**
 * Who is subscribed to which resource (2025-era `resources/subscribe`). Many sessions share one
 * upstream subscription: the first subscriber opens it upstream, the last one closes it, and
 * each `notifications/resources/updated` is delivered only to the sessions that asked.
 * @module
 */
import type { SessionSink } from "./downstreamServer.js"

interface Subscription {
  readonly connectorId: string
  readonly upstreamUri: string
  readonly exposedUri: string
  readonly sinks: Set<SessionSink>
}

const keyOf = (connectorId: string, upstreamUri: string) => `${connectorId}\u0000${upstreamUri}`

export class ResourceSubscriptions {
  private readonly byKey = new Map<string, Subscription>()

  /** Adds a subscriber; `true` when it is the first (open the upstream subscription). */
  add(connectorId: string, upstreamUri: string, exposedUri: string, sink: SessionSink): boolean {
    const key = keyOf(connectorId, upstreamUri)
    let subscription = this.byKey.get(key)
    const first = subscription === undefined
    if (subscription === undefined) {
      subscription = { connectorId, upstreamUri, exposedUri, sinks: new Set() }
      this.byKey.set(key, subscription)
    }
    subscription.sinks.add(sink)
    return first
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

  /** The upstream URIs of a connector that have subscribers (to re-subscribe after a reconnect). */
  urisOf(connectorId: string): Array<string> {
    return [...this.byKey.values()].filter((s) => s.connectorId === connectorId).map((s) => s.upstreamUri)
  }
}
