/**
 * `CallerSessions` against a real upstream (server-everything over streamable HTTP, the v1 SDK's
 * sessionful server): one upstream session per caller login, reused; the per-connector cap
 * closes the least recently used idle session to make room and refuses, saying so, when every
 * session is busy; idle sessions are reaped, never one with a call in flight.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { McpConnector } from "../src/config/model.js"
import type { Identity } from "../src/plugin/IdentityPlugin.js"
import type { DownstreamCall } from "../src/upstream/callChannel.js"
import { CallRegistry } from "../src/upstream/callChannel.js"
import { CallerSessions } from "../src/upstream/callerSessions.js"
import { connect } from "../src/upstream/connection.js"
import type { LiveUpstream } from "../src/upstream/Upstreams.js"
import { everythingEntry, freePort, type Spawned, spawnProcess } from "./helpers/processes.js"

let upstream: Spawned
let connector: McpConnector

const runtime = Effect.runSync(Effect.runtime<never>())
const identity = (login: string): Identity => ({ login, groups: [], tags: [], via: "test" }) as unknown as Identity

/** Sessions of one connector, with a cap of `max`. */
const sessionsWithCap = (max: number, idleMillis = 60_000) => {
  const sessions = new CallerSessions(runtime, { idleMillis, maxPerConnector: max })
  const shared = { connector, era: "legacy", calls: new CallRegistry() } as unknown as LiveUpstream
  sessions.attach(shared, (calls) => connect(connector, undefined, { transport: undefined, prior: undefined }, calls, { resourceUpdated: () => {} }))
  return { sessions, shared }
}

/** Keeps a call in flight on `own` until the returned function ends it. */
const busy = (own: LiveUpstream) => {
  let end!: () => void
  const call = { connectorId: connector.id, identity: identity("x"), answered: false } as unknown as DownstreamCall
  void own.calls.run(call, () => new Promise<void>((resolve) => (end = resolve)))
  return () => end()
}

const sessionIdOf = (own: LiveUpstream) => own.direct?.transport.sessionId

beforeAll(async () => {
  const port = await freePort()
  upstream = spawnProcess(process.execPath, [everythingEntry, "streamableHttp"], { PORT: String(port) })
  await upstream.waitFor(/listening on port/)
  connector = {
    kind: "mcp",
    id: "ev",
    index: 0,
    url: new URL(`http://127.0.0.1:${port}/mcp`),
    auth: undefined,
    userAuth: undefined,
    prefix: true,
    isolation: "caller",
    labels: [],
    description: undefined,
    timeout: Duration.seconds(10)
  }
}, 30_000)

afterAll(async () => {
  await upstream?.kill()
})

describe("CallerSessions", () => {
  it("opens one upstream session per login and reuses it", async () => {
    const { sessions, shared } = sessionsWithCap(10)
    try {
      const alice = await sessions.route(shared, identity("alice"))
      const bob = await sessions.route(shared, identity("bob"))
      expect(alice).not.toBe(shared)
      expect(sessionIdOf(alice)).toBeDefined()
      expect(sessionIdOf(bob)).not.toBe(sessionIdOf(alice))
      expect(await sessions.route(shared, identity("alice"))).toBe(alice)
      // The upstream answers on each session.
      await expect(alice.client.ping()).resolves.toBeDefined()
      expect(sessions.counts().get("ev")).toBe(2)
      // No identity (the gateway's own request): the shared connection.
      expect(sessions.route(shared, undefined)).toBe(shared)
    } finally {
      sessions.closeAll()
    }
  })

  it("makes room by closing the least recently used idle session, and refuses when all are busy", async () => {
    const { sessions, shared } = sessionsWithCap(2)
    try {
      const alice = await sessions.route(shared, identity("alice"))
      await new Promise((r) => setTimeout(r, 5))
      const bob = await sessions.route(shared, identity("bob"))
      const endBob = busy(bob)
      // Carol takes Alice's place (idle and least recently used), not Bob's (busy).
      const carol = await sessions.route(shared, identity("carol"))
      expect(sessions.counts().get("ev")).toBe(2)
      expect(await sessions.route(shared, identity("bob"))).toBe(bob)
      await expect.poll(() => alice.client.ping().then(() => "open", () => "closed"), { timeout: 5_000 }).toBe("closed")
      const endCarol = busy(carol)
      expect(() => sessions.route(shared, identity("dave"))).toThrow(/all 2 caller sessions are busy/)
      endBob()
      endCarol()
      await new Promise((r) => setTimeout(r, 0))
      const dave = await sessions.route(shared, identity("dave"))
      expect(sessionIdOf(dave)).toBeDefined()
    } finally {
      sessions.closeAll()
    }
  })

  it("reaps idle sessions, never one with a call in flight", async () => {
    const { sessions, shared } = sessionsWithCap(10, 50)
    try {
      const alice = await sessions.route(shared, identity("alice"))
      const bob = await sessions.route(shared, identity("bob"))
      const endBob = busy(bob)
      await new Promise((r) => setTimeout(r, 100))
      sessions.reap()
      expect(sessions.counts().get("ev")).toBe(1)
      expect(await sessions.route(shared, identity("bob"))).toBe(bob)
      await expect.poll(() => alice.client.ping().then(() => "open", () => "closed"), { timeout: 5_000 }).toBe("closed")
      endBob()
      // Alice comes back: a new session.
      const again = await sessions.route(shared, identity("alice"))
      expect(sessionIdOf(again)).not.toBe(sessionIdOf(alice))
    } finally {
      sessions.closeAll()
    }
  })

  it("opens a new session after a request failed at the transport level, closing the old one when its calls end", async () => {
    const { sessions, shared } = sessionsWithCap(10)
    try {
      const alice = await sessions.route(shared, identity("alice"))
      const endCall = busy(alice)
      alice.suspect()
      const fresh = await sessions.route(shared, identity("alice"))
      expect(fresh).not.toBe(alice)
      expect(sessions.counts().get("ev")).toBe(2) // the stale one still carries a call
      endCall()
      await new Promise((r) => setTimeout(r, 0))
      sessions.reap()
      expect(sessions.counts().get("ev")).toBe(1)
    } finally {
      sessions.closeAll()
    }
  })
})
