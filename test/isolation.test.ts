/**
 * Callers isolated upstream (`isolation: "caller"`): the official server-everything (v1 SDK,
 * 2025 era, over streamable HTTP) keeps each session's roots; behind the gateway, Alice and Bob
 * each get their own upstream session, so each sees only the roots their own client gave — also
 * after Alice's roots change. A `"shared"` connector to the same server shows what isolation
 * prevents (one session: the roots of whoever was asked first), and over stdio a caller gets a
 * process of its own when asked to.
 */
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { ListRootsRequestSchema, LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js"
import { readdirSync, readFileSync } from "node:fs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningGateway } from "../src/Aperture.js"
import { grant, mcp } from "../src/index.js"
import { everythingStdio, startGateway, untilReady } from "./helpers/gateway.js"
import { everythingEntry, freePort, type Spawned, spawnProcess } from "./helpers/processes.js"
import { testUsers } from "./helpers/testUsers.js"

let upstream: Spawned
let gateway: RunningGateway
const clients: Array<V1Client> = []

/** A 2025-era client of `login` whose roots are whatever `roots` holds when it is asked. */
const connectAs = async (login: string, roots: { current: Array<{ uri: string; name: string }> }) => {
  const client = new V1Client({ name: `${login}-client`, version: "1" }, { capabilities: { roots: { listChanged: true } } })
  const asked: Array<number> = []
  client.setRequestHandler(ListRootsRequestSchema, () => {
    asked.push(Date.now())
    return { roots: roots.current }
  })
  const logs: Array<unknown> = []
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params.data))
  await client.connect(new V1Transport(new URL(gateway.url), { requestInit: { headers: { "x-test-user": login } } }))
  clients.push(client)
  return { client, asked, logs }
}

/** server-everything stdio processes this test process started (the gateway runs in it). */
const everythingProcesses = () =>
  readdirSync("/proc").filter((pid) => {
    if (!/^\d+$/.test(pid)) return false
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
      return ppid === process.pid && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(everythingEntry)
    } catch {
      return false // it exited while we looked
    }
  }).length

const rootsText = async (client: V1Client, tool: string) => {
  const result = await client.callTool({ name: tool, arguments: {} })
  return (result.content as Array<{ type: string; text?: string }>).map((c) => c.text ?? "").join("\n")
}

beforeAll(async () => {
  const port = await freePort()
  upstream = spawnProcess(process.execPath, [everythingEntry, "streamableHttp"], { PORT: String(port) })
  await upstream.waitFor(/listening on port/)
  const url = `http://127.0.0.1:${port}/mcp`
  gateway = await startGateway({
    connectors: {
      own: mcp({ url }),
      shared: mcp({ url, isolation: "shared" }),
      proc: everythingStdio({ isolation: "caller" })
    },
    identity: [testUsers({})],
    grants: [grant({ src: ["*"], connectors: ["**"] })]
  })
  await untilReady(gateway, 3, 60_000)
}, 90_000)

afterAll(async () => {
  for (const client of clients) await client.close().catch(() => {})
  await gateway?.close()
  await upstream?.kill()
})

describe("isolation: caller (the default for mcp())", () => {
  it("shows each caller the roots its own client gave, before and after a change", async () => {
    const aliceRoots = { current: [{ uri: "file:///home/alice/secret-project", name: "alice" }] }
    const bobRoots = { current: [{ uri: "file:///home/bob/work", name: "bob" }] }
    const alice = await connectAs("alice", aliceRoots)
    const bob = await connectAs("bob", bobRoots)

    const aliceSees = await rootsText(alice.client, "own_get-roots-list")
    expect(aliceSees).toContain("file:///home/alice/secret-project")
    const bobSees = await rootsText(bob.client, "own_get-roots-list")
    expect(bobSees).toContain("file:///home/bob/work")
    expect(bobSees).not.toContain("alice")

    // Alice's roots change: her own upstream session hears of it and asks her again; Bob's does not.
    const bobAsked = bob.asked.length
    aliceRoots.current = [{ uri: "file:///home/alice/other", name: "alice-2" }]
    await alice.client.sendRootsListChanged()
    await expect.poll(() => rootsText(alice.client, "own_get-roots-list"), { timeout: 10_000 }).toContain("file:///home/alice/other")
    expect(await rootsText(bob.client, "own_get-roots-list")).not.toContain("alice")
    expect(bob.asked.length).toBe(bobAsked)
  })

  it("asks a caller outside its calls through its own session (roots right after the upstream session opens)", async () => {
    const carolRoots = { current: [{ uri: "file:///home/carol", name: "carol" }] }
    const carol = await connectAs("carol", carolRoots)
    // The first call opens Carol's upstream session; server-everything asks for roots 350 ms
    // after it is initialized, outside any call, and logs what it got.
    await carol.client.callTool({ name: "own_echo", arguments: { message: "hi" } })
    await expect.poll(() => carol.asked.length, { timeout: 10_000 }).toBeGreaterThan(0)
    await expect.poll(() => carol.logs.map(String).join("\n"), { timeout: 10_000 }).toContain("1 root(s) received")
    expect(await rootsText(carol.client, "own_get-roots-list")).toContain("file:///home/carol")
  })
})

describe("isolation: shared", () => {
  it("never tells the one upstream session a caller's roots (it would keep them for everyone)", async () => {
    const dave = await connectAs("dave", { current: [{ uri: "file:///home/dave", name: "dave" }] })
    const erin = await connectAs("erin", { current: [{ uri: "file:///home/erin", name: "erin" }] })
    // Told no client has roots, server-everything offers no roots tool and asks nobody.
    const tools = (await dave.client.listTools()).tools.map((t) => t.name)
    expect(tools).toContain("shared_echo")
    expect(tools).not.toContain("shared_get-roots-list")
    expect(tools).toContain("own_get-roots-list")
    await dave.client.callTool({ name: "shared_echo", arguments: { message: "hi" } })
    await erin.client.callTool({ name: "shared_echo", arguments: { message: "hi" } })
    await new Promise((r) => setTimeout(r, 500))
    expect(dave.asked.length + erin.asked.length).toBe(0)
  })
})

describe("isolation: caller over stdio", () => {
  it("gives each caller a process of its own", async () => {
    const frank = await connectAs("frank", { current: [{ uri: "file:///home/frank", name: "frank" }] })
    const grace = await connectAs("grace", { current: [{ uri: "file:///home/grace", name: "grace" }] })
    expect(await rootsText(frank.client, "proc_get-roots-list")).toContain("file:///home/frank")
    const graceSees = await rootsText(grace.client, "proc_get-roots-list")
    expect(graceSees).toContain("file:///home/grace")
    expect(graceSees).not.toContain("frank")
  })
})

describe("caller sessions end when idle", () => {
  it("stops a caller's own process after server.sessionIdleTimeout without a request", async () => {
    const idle = await startGateway({
      server: { sessionIdleTimeout: "2 seconds" },
      connectors: { proc: everythingStdio({ isolation: "caller" }) },
      identity: [testUsers({})],
      grants: [grant({ src: ["*"], connectors: ["**"] })]
    })
    try {
      await untilReady(idle, 1, 60_000)
      const before = everythingProcesses() // the connector's own, and the other gateway's
      const client = new V1Client({ name: "henry", version: "1" })
      await client.connect(new V1Transport(new URL(idle.url), { requestInit: { headers: { "x-test-user": "henry" } } }))
      await client.callTool({ name: "proc_echo", arguments: { message: "hi" } })
      expect(everythingProcesses()).toBe(before + 1)
      await expect.poll(everythingProcesses, { timeout: 15_000, interval: 250 }).toBe(before)
      await client.close().catch(() => {})
    } finally {
      await idle.close()
    }
  }, 60_000)
})
