/**
 * One upstream session per caller per connector for the whole cluster (issue 20): three gateway
 * processes on one real Redis, behind a real HAProxy (round-robin, no affinity), in front of a
 * stateful streamable-HTTP upstream (v1 SDK; a `remember`/`recall` pair keyed by its session id)
 * with `isolation: "caller"`. What a caller remembers through one replica it recalls through any
 * other; another caller sees none of it; the upstream sees one `initialize` per caller; a replica
 * killed with SIGKILL costs the others nothing; an upstream that forgot the session (restarted)
 * gets a new one, recorded for all, and the caller goes on.
 */
import type { Client } from "@modelcontextprotocol/client"
import { createClient } from "redis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startStatefulUpstream, type StatefulUpstream } from "../fixtures/statefulUpstream.js"
import { connectV2, eventually } from "../helpers/gateway.js"
import { type Haproxy, startHaproxy } from "../helpers/haproxy.js"
import { type Spawned, tsNode } from "../helpers/processes.js"
import { startRedis, type TestRedis } from "../helpers/redis.js"

const PREFIX = "upstream-sessions-test:"
const KEYS = { alice: `alice-${crypto.randomUUID()}`, bob: `bob-${crypto.randomUUID()}`, carol: `carol-${crypto.randomUUID()}` } as const
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

const startReplica = async (name: string): Promise<Replica> => {
  const child = tsNode("test/fixtures/clusterReplica.ts", [], {
    REDIS_URL: store.url,
    KEY_PREFIX: PREFIX,
    UPSTREAM_URL: upstream.url,
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
    const redis = createClient({ url: store.url })
    await redis.connect()
    try {
      const record = await redis.hGetAll(`${PREFIX}upstream:mem:alice`)
      const parsed = JSON.parse(record["record"]!)
      expect(parsed).toMatchObject({ sessionId: record["id"], handshake: { protocolVersion: expect.any(String), serverInfo: { name: "stateful" } } })
      expect(Number(record["lastUsed"])).toBeGreaterThan(Date.now() - 60_000)
      expect(JSON.stringify(record)).not.toContain(KEYS.alice)
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
    await upstream.restart()
    const before = upstream.initializes()
    // The request that finds the session gone fails (as without a cluster); the next one opens a new session.
    await eventually(async () => (await remember(alice1, "after the restart").catch(() => undefined)) === "remembered", 20_000, "a call succeeds on a new session")
    await eventually(async () => (await recall(alice2).catch(() => undefined)) === "after the restart", 20_000, "r2 on the new session")
    expect(await recall(alice1)).toBe("after the restart")
    // Alice's shared session is opened once, by whichever replica found the old one gone first
    // (plus the replicas' own connections, which reconnect too).
    expect(upstream.open()).toBeLessThanOrEqual(2 + 1 + 1)
    const aliceLb = await clientOf("alice", `${balancer.origin}/v1/mcp`)
    for (let i = 0; i < 4; i++) expect(await recall(aliceLb)).toBe("after the restart")
    expect(upstream.initializes() - before).toBeGreaterThanOrEqual(1)
  }, 60_000)
})
