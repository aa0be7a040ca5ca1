/**
 * One upstream session per caller per connector for the whole cluster (issue 20): three gateway
 * processes on one real Redis, behind a real HAProxy (round-robin, no affinity), in front of a
 * stateful streamable-HTTP upstream (v1 SDK; a `remember`/`recall` pair keyed by its session id)
 * with `isolation: "caller"`. What a caller remembers through one replica it recalls through any
 * other; another caller sees none of it; the upstream sees one `initialize` per caller; a replica
 * killed with SIGKILL costs the others nothing; an upstream that forgot the session (restarted)
 * gets a new one, recorded for all, and the caller goes on. What the upstream sends outside any
 * request on the session's GET stream (read by one replica) reaches the caller's own GET stream,
 * whichever replica holds it, once; when the replica reading it is killed, another takes it over.
 */
import type { Client } from "@modelcontextprotocol/client"
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { LoggingMessageNotificationSchema, ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js"
import type { RunningGateway } from "../../src/Aperture.js"
import { apiKeys, grant, mcp, redis as redisCluster } from "../../src/index.js"
import { createClient } from "redis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startStatefulUpstream, type StatefulUpstream } from "../fixtures/statefulUpstream.js"
import { connectV2, eventually, startGateway, untilReady } from "../helpers/gateway.js"
import { type Haproxy, startHaproxy } from "../helpers/haproxy.js"
import { type Spawned, tsNode } from "../helpers/processes.js"
import { startRedis, type TestRedis } from "../helpers/redis.js"

const PREFIX = "upstream-sessions-test:"
const KEYS = {
  alice: `alice-${crypto.randomUUID()}`,
  bob: `bob-${crypto.randomUUID()}`,
  carol: `carol-${crypto.randomUUID()}`,
  dave: `dave-${crypto.randomUUID()}`
} as const
type Login = keyof typeof KEYS

interface Replica {
  readonly name: string
  readonly origin: string
  readonly process: Spawned
}

let store: TestRedis
let upstream: StatefulUpstream
let balancer: Haproxy
const replicas: Array<Replica> = []
const clients: Array<Client> = []

const startReplica = async (name: string, prefix = PREFIX, upstreamUrl = upstream.url): Promise<Replica> => {
  const child = tsNode("test/fixtures/clusterReplica.ts", [], {
    REDIS_URL: store.url,
    KEY_PREFIX: prefix,
    UPSTREAM_URL: upstreamUrl,
    IDLE: "1 minute",
    KEYS: JSON.stringify(Object.fromEntries(Object.entries(KEYS).map(([login, key]) => [key, login])))
  })
  const line = await child.waitFor(/listening http:\/\/\S+/, 60_000).catch(async (error) => {
    await child.kill("SIGKILL")
    throw error
  })
  const replica = { name, origin: line.slice("listening ".length), process: child }
  replicas.push(replica)
  await eventually(async () => (await fetch(`${replica.origin}/healthz?ready`)).status === 200, 30_000, `${name} ready`)
  return replica
}

/** A caller's v2 SDK client (2026-07-28, stateless) on `url`: each request may land anywhere. */
const clientOf = async (login: Login, url: string) => {
  const client = await connectV2(url, { "x-api-key": KEYS[login] })
  clients.push(client)
  return client
}

const textOf = (result: unknown) => ((result as { content: Array<{ text: string }> }).content[0]!.text)
const remember = async (client: Client, value: string) => textOf(await client.callTool({ name: "mem_remember", arguments: { value } }))
const recall = async (client: Client) => textOf(await client.callTool({ name: "mem_recall", arguments: {} }))
const at = (replica: Replica) => `${replica.origin}/v1/mcp`

/** The caller's session record in Redis (under `prefix`), as stored. */
const recordOf = async (prefix: string, login: Login) => {
  const redis = createClient({ url: store.url })
  await redis.connect()
  try {
    return await redis.hGetAll(`${prefix}upstream:mem:${login}`)
  } finally {
    await redis.quit()
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const diagnostics = () => [`haproxy:\n${balancer?.output() ?? ""}`, ...replicas.map((r) => `${r.name}:\n${r.process.output()}`)].join("\n\n")

beforeAll(async () => {
  ;[store, upstream] = await Promise.all([startRedis(), startStatefulUpstream()])
  // One after the other: three cold starts at once on two cores take longer than in turn.
  for (const name of ["r0", "r1", "r2"]) await startReplica(name)
  balancer = await startHaproxy({ replicas: replicas.map((r) => r.origin) })
}, 180_000)

afterAll(async () => {
  await Promise.all(clients.map((client) => client.close().catch(() => {})))
  await balancer?.stop()
  for (const replica of replicas) await replica.process.kill("SIGKILL")
  await upstream?.close()
  await store?.stop()
})

describe("a caller's upstream session, shared by three replicas", () => {
  it("is one session for the whole cluster: remembered through r0, recalled through r1, r2 and the balancer; one initialize per caller; another caller sees nothing", async () => {
    const [r0, r1, r2] = replicas as [Replica, Replica, Replica]
    const before = upstream.initializes()
    const alice0 = await clientOf("alice", at(r0))
    expect(await remember(alice0, "alice's secret")).toBe("remembered")
    const alice1 = await clientOf("alice", at(r1))
    const alice2 = await clientOf("alice", at(r2))
    expect(await recall(alice1)).toBe("alice's secret")
    expect(await recall(alice2)).toBe("alice's secret")
    const aliceLb = await clientOf("alice", `${balancer.origin}/v1/mcp`)
    for (let i = 0; i < 6; i++) expect(await recall(aliceLb)).toBe("alice's secret")
    // Bob, through every replica: his own session, none of Alice's memory.
    for (const replica of [r2, r1, r0]) expect(await recall(await clientOf("bob", at(replica)))).toBe("nothing")
    const bobLb = await clientOf("bob", `${balancer.origin}/v1/mcp`)
    expect(await remember(bobLb, "bob's own")).toBe("remembered")
    for (let i = 0; i < 3; i++) expect(await recall(bobLb)).toBe("bob's own")
    expect(await recall(alice2)).toBe("alice's secret")
    // One session per caller, not one per caller per replica.
    expect(upstream.initializes() - before, diagnostics()).toBe(2)
  }, 60_000)

  it("records the session in Redis (id, handshake, opener) without the caller's credentials", async () => {
    const record = await recordOf(PREFIX, "alice")
    const parsed = JSON.parse(record["record"]!)
    expect(parsed).toMatchObject({ sessionId: record["id"], handshake: { protocolVersion: expect.any(String), serverInfo: { name: "stateful" } } })
    expect(Number(record["lastUsed"])).toBeGreaterThan(Date.now() - 60_000)
    expect(JSON.stringify(record)).not.toContain(KEYS.alice)
    const redis = createClient({ url: store.url })
    await redis.connect()
    try {
      const ttl = await redis.pTTL(`${PREFIX}upstream:mem:alice`)
      expect(ttl).toBeGreaterThan(60_000)
      expect(ttl).toBeLessThanOrEqual(120_000)
    } finally {
      await redis.quit()
    }
  })

  it("opens one session when a caller's first requests reach all three replicas at once", async () => {
    const [r0, r1, r2] = replicas as [Replica, Replica, Replica]
    const before = upstream.initializes()
    const deletes = upstream.deletes()
    const [c0, c1, c2] = await Promise.all([clientOf("carol", at(r0)), clientOf("carol", at(r1)), clientOf("carol", at(r2))])
    await Promise.all([recall(c0), recall(c1), recall(c2)])
    expect(await remember(c1, "carol's")).toBe("remembered")
    expect([await recall(c0), await recall(c2)]).toEqual(["carol's", "carol's"])
    // Racing replicas may each open one; the losers end theirs (DELETE) and join the winner's.
    const opened = upstream.initializes() - before
    expect(opened).toBeGreaterThanOrEqual(1)
    await eventually(() => upstream.deletes() - deletes === opened - 1, 5_000, "the losers' sessions ended")
  }, 60_000)

  it("goes on through the other replicas when the one that opened it is killed (SIGKILL)", async () => {
    const [r0, r1, r2] = replicas as [Replica, Replica, Replica]
    const before = upstream.initializes()
    await r0.process.kill("SIGKILL")
    const alice1 = await clientOf("alice", at(r1))
    const alice2 = await clientOf("alice", at(r2))
    expect(await recall(alice1)).toBe("alice's secret")
    expect(await remember(alice2, "after r0 died")).toBe("remembered")
    expect(await recall(alice1)).toBe("after r0 died")
    // Through the balancer once it has taken r0 out.
    await eventually(async () => (await balancer.serverStates())["r0"]?.startsWith("DOWN"), 10_000, "r0 out of rotation")
    const aliceLb = await clientOf("alice", `${balancer.origin}/v1/mcp`)
    for (let i = 0; i < 4; i++) expect(await recall(aliceLb)).toBe("after r0 died")
    expect(upstream.initializes() - before, diagnostics()).toBe(0)
  }, 60_000)

  it("opens a new session, for every replica, when the upstream forgot the old one (restarted)", async () => {
    const [, r1, r2] = replicas as [Replica, Replica, Replica]
    const alice1 = await clientOf("alice", at(r1))
    const alice2 = await clientOf("alice", at(r2))
    const old = (await recordOf(PREFIX, "alice"))["id"]
    await upstream.restart()
    // The request that finds the session gone fails (as without a cluster); the next one opens a new session.
    await eventually(async () => (await remember(alice1, "after the restart").catch(() => undefined)) === "remembered", 20_000, "a call succeeds on a new session")
    await eventually(async () => (await recall(alice2).catch(() => undefined)) === "after the restart", 20_000, "r2 on the new session")
    expect(await recall(alice1)).toBe("after the restart")
    const aliceLb = await clientOf("alice", `${balancer.origin}/v1/mcp`)
    for (let i = 0; i < 4; i++) expect(await recall(aliceLb)).toBe("after the restart")
    // The new session is the recorded one, for every replica.
    const now = (await recordOf(PREFIX, "alice"))["id"]
    expect(now).toBeDefined()
    expect(now).not.toBe(old)
  }, 60_000)
})

describe("a shared upstream session's end", () => {
  const IDLE_PREFIX = "upstream-sessions-idle:"
  let idleUpstream: StatefulUpstream
  let g1: RunningGateway
  let g2: RunningGateway
  let other: StatefulUpstream
  let g3: RunningGateway
  /** Two in-process replicas with a 2 s idle timeout: a copy unused for 2.5 s is dropped (sweeps every 1 s). */
  const gateway = (url = idleUpstream.url) =>
    startGateway({
      server: { sessionIdleTimeout: "2 seconds" },
      cluster: redisCluster({ url: store.url, keyPrefix: IDLE_PREFIX }),
      secretKey: "the upstream-sessions test's secret key, 32+ characters",
      identity: [apiKeys({ keys: { [KEYS.alice]: { login: "alice" }, [KEYS.dave]: { login: "dave" } } })],
      connectors: { mem: mcp({ url, isolation: "caller" }) },
      grants: [grant({ src: ["alice", "dave"], connectors: ["**"] })]
    })

  beforeAll(async () => {
    idleUpstream = await startStatefulUpstream()
    other = await startStatefulUpstream()
    ;[g1, g2, g3] = await Promise.all([gateway(), gateway(), gateway(other.url)])
    await Promise.all([untilReady(g1, 1), untilReady(g2, 1), untilReady(g3, 1)])
  }, 60_000)

  afterAll(async () => {
    await Promise.all([g1?.close(), g2?.close(), g3?.close()])
    await Promise.all([idleUpstream?.close(), other?.close()])
  })

  it("is not ended while another replica uses it, and is ended (DELETE, record gone) once no replica has for the idle timeout", async () => {
    const a1 = await clientOf("alice", g1.url)
    const a2 = await clientOf("alice", g2.url)
    const initializes = idleUpstream.initializes()
    expect(await remember(a1, "kept")).toBe("remembered")
    // g1's copy sits idle past the timeout and is dropped; g2 keeps using the session meanwhile.
    for (let i = 0; i < 12; i++) {
      expect(await recall(a2)).toBe("kept")
      await sleep(400)
    }
    expect(idleUpstream.deletes()).toBe(0)
    // g1 read the session's GET stream; its copy dropped, g2 (still using it) took the stream over.
    const id = (await recordOf(IDLE_PREFIX, "alice"))["id"]!
    expect(idleUpstream.gets(id), "g1's stream, then g2's").toBe(2)
    // g1 joins it again: no new session, the memory is there.
    expect(await recall(a1)).toBe("kept")
    expect(idleUpstream.initializes() - initializes).toBe(1)
    expect((await recordOf(IDLE_PREFIX, "alice"))["id"]).toBeDefined()
    // Nobody uses it now: the replica dropping the last copy ends it upstream and removes the record.
    await eventually(() => idleUpstream.deletes() === 1, 10_000, "the session ended upstream")
    expect(await recordOf(IDLE_PREFIX, "alice")).toEqual({})
    expect(idleUpstream.open()).toBe(2) // the replicas' own connections
    // The other replica's copy, unused as long, goes at its next sweep (every 1 s; until then a
    // request there would meet the ended session once); then the caller's next request opens a new one.
    await sleep(1_500)
    expect(await recall(a2)).toBe("nothing")
  }, 60_000)

  it("is not joined by a replica whose connector has another URL (a rolling deploy): it opens its own there", async () => {
    const a2 = await clientOf("alice", g2.url)
    const a3 = await clientOf("alice", g3.url)
    expect(await remember(a2, "on the first upstream")).toBe("remembered")
    const initializes = other.initializes()
    expect(await recall(a3)).toBe("nothing")
    expect(other.initializes() - initializes).toBe(1)
    expect(JSON.parse((await recordOf(IDLE_PREFIX, "alice"))["record"]!).url).toBe(other.url)
  }, 30_000)

  it("is ended by a replica shutting down when no other replica used it lately, and left to the others otherwise", async () => {
    const [g4, g5] = await Promise.all([gateway(), gateway()])
    let g6: RunningGateway | undefined
    try {
      await Promise.all([untilReady(g4, 1), untilReady(g5, 1)])
      // g4 and g5 both use dave's session: g4 stopping leaves it to g5, which takes its GET stream over.
      expect(await remember(await clientOf("dave", g4.url), "dave's")).toBe("remembered")
      const d5 = await clientOf("dave", g5.url)
      expect(await recall(d5)).toBe("dave's")
      const id = (await recordOf(IDLE_PREFIX, "dave"))["id"]!
      await g4.close()
      expect(idleUpstream.isOpen(id)).toBe(true)
      expect((await recordOf(IDLE_PREFIX, "dave"))["id"]).toBe(id)
      await eventually(() => idleUpstream.gets(id) === 2, 5_000, "g5's GET stream on the session")
      expect(await recall(d5)).toBe("dave's")
      // g5 is the only one using it now: stopping, it ends the session upstream and removes the record.
      await g5.close()
      expect(idleUpstream.isOpen(id)).toBe(false)
      expect(await recordOf(IDLE_PREFIX, "dave")).toEqual({})
      // A new replica opens a new session for the caller.
      g6 = await gateway()
      await untilReady(g6, 1)
      expect(await recall(await clientOf("dave", g6.url))).toBe("nothing")
    } finally {
      await Promise.all([g4.close(), g5.close(), g6?.close()])
    }
  }, 40_000)
})

describe("what a shared upstream session sends outside any request", () => {
  const OUTSIDE_PREFIX = "upstream-sessions-outside:"
  let watched: StatefulUpstream
  let rA: Replica
  let rB: Replica
  let v1: V1Client | undefined

  beforeAll(async () => {
    watched = await startStatefulUpstream()
    rA = await startReplica("outside-a", OUTSIDE_PREFIX, watched.url)
    rB = await startReplica("outside-b", OUTSIDE_PREFIX, watched.url)
  }, 120_000)

  afterAll(async () => {
    await v1?.close().catch(() => {})
    await watched?.close()
  })

  it("reaches the caller's GET stream on another replica, once; after the replica reading it is killed (SIGKILL), a survivor takes it over", async () => {
    // The upstream session is opened (and its GET stream read) by A, for a stateless client there.
    const onA = await clientOf("dave", at(rA))
    expect(await remember(onA, "dave's")).toBe("remembered")
    const session = (await recordOf(OUTSIDE_PREFIX, "dave"))["id"]!
    expect(session).toBeDefined()
    await eventually(() => watched.gets(session) === 1, 10_000, "A's GET stream on the session")

    // The caller's 2025-era session (and its GET stream) is on B only; B joins the upstream session.
    const received: Array<{ method: string; params: unknown }> = []
    v1 = new V1Client({ name: "dave-v1", version: "1.0.0" })
    v1.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void received.push(n))
    v1.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void received.push(n))
    await v1.connect(new V1Transport(new URL(at(rB)), { requestInit: { headers: { "x-api-key": KEYS.dave } } }))
    const { resources } = await v1.listResources()
    const exposed = resources.find((r) => r.uri.endsWith("mem://memory"))?.uri
    expect(exposed, JSON.stringify(resources)).toBeDefined()
    await v1.subscribeResource({ uri: exposed! })
    expect(textOf(await v1.callTool({ name: "mem_recall", arguments: {} }))).toBe("dave's")
    expect(JSON.parse((await recordOf(OUTSIDE_PREFIX, "dave"))["record"]!).sessionId).toBe(session)
    // B's subscription is held upstream on its own connection; the caller's GET stream is open on B.
    await eventually(() => watched.subscribers("mem://memory").length === 1, 10_000, "the subscription upstream")
    await sleep(500)

    /** Sends on the caller's upstream session outside any request; what the caller gets of it, after a quiet while. */
    const outside = async (marker: string) => {
      received.length = 0
      await watched.sendOutside(session, { method: "notifications/resources/updated", params: { uri: "mem://memory" } })
      await watched.sendOutside(session, { method: "notifications/message", params: { level: "error", data: marker } })
      await eventually(() => received.length >= 2, 10_000, `the caller gets ${marker}`)
      await sleep(1_000) // a duplicate would have come by now
      return received.map((n) => n.method === "notifications/message" ? `log ${(n.params as { data: string }).data}` : `updated ${(n.params as { uri: string }).uri}`).sort()
    }
    expect(await outside("first"), diagnostics()).toEqual([`log first`, `updated ${exposed}`])

    // The caller's session asked for warnings and above: an info line outside a request does not reach it.
    await v1.setLoggingLevel("warning")
    received.length = 0
    await watched.sendOutside(session, { method: "notifications/message", params: { level: "info", data: "quiet" } })
    await watched.sendOutside(session, { method: "notifications/message", params: { level: "warning", data: "loud" } })
    await eventually(() => received.length >= 1, 10_000, "the warning")
    await sleep(1_000)
    expect(received.map((n) => (n.params as { data: string }).data)).toEqual(["loud"])

    // An update the upstream sends its subscribers (B's own connection) arrives once too.
    received.length = 0
    for (const subscriber of watched.subscribers("mem://memory")) {
      await watched.sendOutside(subscriber, { method: "notifications/resources/updated", params: { uri: "mem://memory" } })
    }
    await eventually(() => received.length >= 1, 10_000, "the subscribers' update")
    await sleep(1_000)
    expect(received.length).toBe(1)

    // A dies: B, which uses the session, takes its GET stream over once A's heartbeat lapses.
    await rA.process.kill("SIGKILL")
    await eventually(() => watched.gets(session) === 2, 15_000, "B's GET stream on the session")
    await sleep(300)
    expect(await outside("second"), diagnostics()).toEqual([`log second`, `updated ${exposed}`])
    // Still the one session, and the caller's memory in it.
    expect(textOf(await v1.callTool({ name: "mem_recall", arguments: {} }))).toBe("dave's")
    expect((await recordOf(OUTSIDE_PREFIX, "dave"))["holder"]).toBeDefined()
  }, 90_000)
})
