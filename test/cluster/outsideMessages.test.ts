/**
 * Messages outside any request reach a 2025-era session's GET stream on whichever replica holds
 * it (issue 20): a caller subscribes to a resource on replica A while its GET stream is open on
 * replica B; the upstream's `notifications/resources/updated`, heard on A, arrives on B's stream,
 * also after A's copy of the session has sat idle past the idle timeout (it holds the
 * subscription). Two gateways on one real Redis, a real v1-SDK upstream with a subscribable resource.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../../src/Aperture.js"
import { grant, mcp, redis } from "../../src/config/dsl.js"
import { sseEvents } from "../../src/upstream/sseEvents.js"
import { startSubscribableUpstream, type SubscribableUpstream } from "../fixtures/subscribableUpstream.js"
import { eventually, openRawSession, startGateway, untilReady } from "../helpers/gateway.js"
import { startRedis, type TestRedis } from "../helpers/redis.js"

const SECRET_KEY = "the cluster's secret key, 32 characters or more"
const IDLE = "2 seconds"

let store: TestRedis
let upstream: SubscribableUpstream
let a: RunningGateway
let b: RunningGateway

const replica = () =>
  startGateway({
    cluster: redis({ url: store.url, keyPrefix: "outside-test:" }),
    server: { sessionIdleTimeout: IDLE },
    secretKey: SECRET_KEY,
    connectors: { docs: mcp({ url: upstream.url }) },
    grants: [grant({ src: ["*"], connectors: ["**"] })]
  })

beforeAll(async () => {
  ;[store, upstream] = await Promise.all([startRedis(), startSubscribableUpstream()])
  ;[a, b] = await Promise.all([replica(), replica()])
  // The first subscribe must find the resource in the catalog: both replicas' connector ready.
  await Promise.all([untilReady(a, 1), untilReady(b, 1)])
}, 60_000)

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()])
  await Promise.all([store?.stop(), upstream?.close()])
})

describe("a session's GET stream on another replica", () => {
  it("receives the resource update of a subscription made on the replica that hears it", () => subscribeAndListen(0))

  it("still receives them after the subscribing replica's copy sat idle past the idle timeout", () => subscribeAndListen(3_500), 30_000)

  it("keeps a subscription when the replica holding the GET stream goes away: the next holder subscribes from the record", async () => {
    const c = await replica()
    const session = await openRawSession(a.url, "survivor")
    try {
      const onC = await listen(c, session)
      await subscribe(session)
      await onC.updated()
      await onC.stop()
    } finally {
      // C goes away with the subscription it held.
      await c.close()
    }
    // The client's GET stream comes back on A: A subscribes from the session's record.
    const onA = await listen(a, session)
    try {
      await onA.updated()
    } finally {
      await onA.stop()
    }
  }, 40_000)
})

/** A session's GET stream on `gateway`, what it hears, and a wait for a resource update on it. */
const listen = async (gateway: RunningGateway, session: Record<string, string>) => {
  const listening = new AbortController()
  const stream = await fetch(gateway.url, { headers: { ...session, accept: "text/event-stream" }, signal: listening.signal })
  expect(stream.status).toBe(200)
  const heard: Array<unknown> = []
  const reading = (async () => {
    for await (const event of sseEvents(stream.body!)) if (event.data !== "") heard.push(JSON.parse(event.data))
  })().catch(() => {})
  return {
    heard,
    /** The holder takes a subscription over the bus: the upstream announces until the update is heard. */
    updated: () =>
      eventually(async () => {
        await upstream.touch()
        await new Promise((resolve) => setTimeout(resolve, 100))
        return heard.some((m) => (m as { method?: string }).method === "notifications/resources/updated")
      }, 5_000, `the update on ${gateway.url}'s GET stream`),
    stop: async () => {
      listening.abort()
      await reading
    }
  }
}

/** `resources/subscribe` on A, which records it for the replica holding the GET stream. */
const subscribe = async (session: Record<string, string>) => {
  const subscribed = await fetch(a.url, {
    method: "POST",
    headers: session,
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "resources/subscribe", params: { uri: "docs-doc://readme" } })
  })
  expect(subscribed.status).toBe(200)
  expect(await subscribed.text()).toContain('"result":{}')
}

/**
 * Opens a session on A, its GET stream on B, subscribes on A, waits `idleMs` (the session used on
 * B only meanwhile), then has the upstream announce an update and expects it on B's stream.
 */
const subscribeAndListen = async (idleMs: number) => {
  const session = await openRawSession(a.url, "subscriber")
  // The GET stream on B (B builds its copy of the session from the record).
  const onB = await listen(b, session)
  try {
    // Subscribed on A, which records it; B, holding the GET stream, holds the subscription.
    await subscribe(session)
    await eventually(() => upstream.servers.size > 0, 5_000, "an upstream session")
    const until = Date.now() + idleMs
    while (Date.now() < until) {
      const ping = await fetch(b.url, { method: "POST", headers: session, body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "ping" }) })
      expect(ping.status).toBe(200)
      await ping.text()
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    await onB.updated()
    expect(onB.heard).toContainEqual({ jsonrpc: "2.0", method: "notifications/resources/updated", params: { uri: "docs-doc://readme" } })
  } finally {
    await onB.stop()
  }
}
