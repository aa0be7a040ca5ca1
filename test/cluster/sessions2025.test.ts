/**
 * 2025-era sessions shared across replicas (issue 20, "Proof"): REPLICAS gateway processes (the
 * built CLI, `cluster: redis(…)` on one real Redis) behind a real HAProxy, round-robin with no
 * affinity, in front of server-everything over stdio (sampling, elicitation; one per replica) and
 * the v2-SDK fixture over streamable HTTP (`slow` reports progress; one for all replicas). Any
 * replica serves any request of a session:
 * - a v1 SDK client (2025-11-25) and a Python `mcp` client (`mode="legacy"`) list, call, get
 *   progress, and answer sampling and elicitation, every request landing wherever HAProxy sends it;
 * - a call's stream broken on replica A is resumed with Last-Event-ID on replica B;
 * - a replica killed with SIGKILL under a running call ends that call with an error (never a
 *   hang) and the session goes on on the others;
 * - Redis away: 503 with Retry-After where shared state is needed, 2026-era calls go on; Redis
 *   back: the open session works again by itself.
 *
 * With REPLICAS = 1 every test but the SIGKILL one shows what a single process does.
 */
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { CreateMessageRequestSchema, ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Event, progressOf, readEvents } from "../helpers/eventStream.js"
import { startV2Upstream, type V2Upstream } from "../fixtures/v2Upstream.js"
import { connectV2, eventually, openRawSession, rawInitialize } from "../helpers/gateway.js"
import { type Haproxy, startHaproxy } from "../helpers/haproxy.js"
import { everythingEntry, freePort, repoRoot, spawnProcess, type Spawned } from "../helpers/processes.js"
import { startRedis, type TestRedis } from "../helpers/redis.js"
import { ensurePythonEnv } from "../interop/pythonEnv.js"

/** Gateway processes behind the balancer; 1 shows what a single process does. */
const REPLICAS = 3

const run = promisify(execFile)
const bin = join(repoRoot, "bin/aperture.js")
const SECRET_KEY = "the sessions2025 test's secret key, 32 characters or more"

interface Replica {
  readonly name: string
  readonly port: number
  readonly origin: string
  process: Spawned
}

let redisServer: TestRedis
let fx: V2Upstream
let balancer: Haproxy
const replicas: Array<Replica> = []
const dir = mkdtempSync(join(tmpdir(), "aperture-sessions2025-"))
const config = join(dir, "aperture.config.ts")

const mcpUrl = () => `${balancer.origin}/v1/mcp`

/** Starts (or starts again, on its port) one gateway process and waits until it is ready. */
const launch = async (replica: Replica) => {
  replica.process = spawnProcess(process.execPath, [bin, "start", "--config", config, "--port", String(replica.port)], {
    REDIS_URL: redisServer.url,
    APERTURE_SECRET_KEY: SECRET_KEY
  })
  await eventually(async () => (await fetch(`${replica.origin}/healthz?ready`, { signal: AbortSignal.timeout(2000) })).status === 200, 30_000, `${replica.name} ready`).catch((error) => {
    throw new Error(`${String(error)}\n${replica.name}'s output:\n${replica.process.output()}`)
  })
}

/** A series' value in a replica's own `/metrics`, read directly (not through the balancer). */
const seriesOf = async (replica: Replica, series: string) => {
  const text = await (await fetch(`${replica.origin}/metrics`)).text()
  const line = text.split("\n").find((l) => l.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}
/** MCP requests a replica served: tool calls to either connector. */
const servedBy = async (replica: Replica) =>
  (await seriesOf(replica, `aperture_requests_total{connector="fx",method="tools/call"}`)) +
  (await seriesOf(replica, `aperture_requests_total{connector="everything",method="tools/call"}`))
const IN_FLIGHT = `aperture_in_flight_requests{endpoint="mcp"}`

/** What a failing test needs to see: the balancer's log and every replica's. */
const diagnostics = () =>
  [`haproxy:\n${balancer?.output() ?? ""}`, ...replicas.map((r) => `${r.name}:\n${r.process.output()}`)].join("\n\n")

const textOf = (result: unknown) =>
  ((result as { content?: Array<{ type: string; text?: string }> }).content ?? []).map((c) => c.text ?? "").join(" ")

/** A v1 SDK client (2025-11-25) that answers sampling and elicitation, on `url`. */
const connectAnswering = async (url: string, reconnection?: { readonly initialReconnectionDelay: number; readonly maxReconnectionDelay: number; readonly reconnectionDelayGrowFactor: number; readonly maxRetries: number }) => {
  const client = new V1Client({ name: "sessions2025-v1", version: "1" }, { capabilities: { sampling: {}, elicitation: {} } })
  client.setRequestHandler(CreateMessageRequestSchema, async () => ({
    role: "assistant",
    content: { type: "text", text: "v1-sampled" },
    model: "test-model"
  }))
  client.setRequestHandler(ElicitRequestSchema, async () => ({ action: "accept", content: { name: "V1 Elicited", check: true } }))
  const transport = new V1Transport(new URL(url), reconnection === undefined ? {} : { reconnectionOptions: reconnection })
  await client.connect(transport)
  return { client, transport }
}

/** A raw `tools/call` body with a progress token. */
const callBody = (id: number, name: string, args: Record<string, unknown>, progressToken: string) =>
  JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args, _meta: { progressToken } } })

/** Races `promise` against `ms`: "hung" when it neither resolved nor rejected in time. */
const within = <A>(promise: Promise<A>, ms: number) => {
  let timer: NodeJS.Timeout | undefined
  const hang = new Promise<"hung">((resolve) => (timer = setTimeout(() => resolve("hung"), ms)))
  return Promise.race([promise, hang]).finally(() => clearTimeout(timer))
}

describe(`2025-era sessions over ${REPLICAS} replica(s) behind HAProxy (round-robin, no affinity)`, () => {
  beforeAll(async () => {
    ;[redisServer, fx] = await Promise.all([startRedis(), startV2Upstream({ name: "fx" })])
    writeFileSync(config, `
      import { defineConfig, env, grant, mcp, redis, stdio } from "aperture"
      export default defineConfig({
        cluster: redis({ url: env("REDIS_URL"), keyPrefix: "sessions2025-test:" }),
        secretKey: env("APERTURE_SECRET_KEY"),
        connectors: {
          everything: stdio({ command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(everythingEntry)}, "stdio"] }),
          fx: mcp({ url: "${fx.url}" })
        },
        grants: [grant({ src: ["local"], connectors: ["**"] })]
      })`)
    // One after the other: cold starts at once on two cores take longer than in turn.
    for (let i = 0; i < REPLICAS; i++) {
      const port = await freePort()
      const replica: Replica = { name: `r${i}`, port, origin: `http://127.0.0.1:${port}`, process: undefined as unknown as Spawned }
      replicas.push(replica)
      await launch(replica)
    }
    balancer = await startHaproxy({ replicas: replicas.map((r) => r.origin) })
  }, 120_000)

  afterAll(async () => {
    await balancer?.stop()
    for (const replica of replicas) await replica.process?.kill("SIGKILL")
    await fx?.close()
    await redisServer?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it("a v1 SDK client lists, calls, gets progress, and answers sampling and elicitation, spread over the replicas", async () => {
    const before = await Promise.all(replicas.map(servedBy))
    const { client } = await connectAnswering(mcpUrl())
    try {
      const names = (await client.listTools()).tools.map((t) => t.name)
      for (const name of ["fx_echo", "fx_slow", "everything_trigger-sampling-request", "everything_trigger-elicitation-request"]) {
        expect(names, diagnostics()).toContain(name)
      }
      for (let i = 0; i < 2 * REPLICAS; i++) {
        expect(textOf(await client.callTool({ name: "fx_echo", arguments: { message: `v1 ${i}` } })), diagnostics()).toBe(`echo: v1 ${i}`)
        expect((await client.listTools()).tools.length).toBe(names.length)
      }
      // Progress: counted at the transport too, since the v1 SDK may run the last notification's
      // handler after the result's when both arrive in one chunk (see v1Features.ts).
      const atTransport: Array<number> = []
      const deliver = client.transport!.onmessage
      client.transport!.onmessage = (message, extra) => {
        if ("method" in message && message.method === "notifications/progress") atTransport.push(Number(message.params?.["progress"]))
        deliver?.(message, extra)
      }
      const onprogress: Array<number> = []
      const slow = await client.callTool({ name: "fx_slow", arguments: { steps: 4, ms: 100 } }, undefined, {
        onprogress: (p) => onprogress.push(p.progress),
        resetTimeoutOnProgress: true
      })
      client.transport!.onmessage = deliver
      expect(textOf(slow), diagnostics()).toBe("done after 4")
      expect(atTransport).toEqual([1, 2, 3, 4])
      expect(onprogress.slice(0, 3)).toEqual([1, 2, 3])

      // Several round trips each: the answer is POSTed wherever the balancer sends it.
      for (let i = 0; i < REPLICAS; i++) {
        const sampled = await client.callTool({ name: "everything_trigger-sampling-request", arguments: { prompt: `hi ${i}` } })
        expect(sampled.isError, diagnostics()).toBeFalsy()
        expect(textOf(sampled)).toContain("v1-sampled")
        const elicited = await client.callTool({ name: "everything_trigger-elicitation-request", arguments: {} })
        expect(elicited.isError, diagnostics()).toBeFalsy()
        expect(textOf(elicited)).toContain("Name: V1 Elicited")
      }
    } finally {
      await client.close()
    }
    const served = (await Promise.all(replicas.map(servedBy))).map((after, i) => after - before[i]!)
    // 2·REPLICAS echoes, one slow call, REPLICAS sampling and REPLICAS elicitation calls.
    expect(served.reduce((a, b) => a + b, 0), diagnostics()).toBe(4 * REPLICAS + 1)
    if (REPLICAS > 1) expect(served.filter((n) => n > 0).length, `calls served per replica: ${served.join(", ")}`).toBeGreaterThan(1)
  }, 60_000)

  it("a Python mcp client in the 2025 era (mode=legacy) lists, calls, gets progress, and answers sampling and elicitation", async () => {
    const python = await ensurePythonEnv()
    const { stdout } = await run(python, [join(repoRoot, "test/fixtures/balancer_python_session.py"), mcpUrl()], {
      cwd: repoRoot,
      timeout: 90_000,
      env: { ...process.env, PYTHONWARNINGS: "ignore" }
    }).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${diagnostics()}`)
    })
    const seen = JSON.parse(stdout) as {
      protocol: string
      tools: Array<string>
      echoes: Array<string>
      progress: Array<number>
      slow: string
      sampling: { text: string; isError: boolean }
      elicitation: { text: string; isError: boolean }
    }
    expect(seen.protocol).toBe("2025-11-25")
    expect(seen.tools).toContain("everything_trigger-sampling-request")
    expect(seen.echoes).toEqual(["echo: py0", "echo: py1", "echo: py2", "echo: py3"])
    expect({ progress: seen.progress, slow: seen.slow }).toEqual({ progress: [1, 2, 3, 4], slow: "done after 4" })
    expect(seen.sampling.isError).toBeFalsy()
    expect(seen.sampling.text).toContain("python-sampled")
    expect(seen.elicitation.isError).toBeFalsy()
    expect(seen.elicitation.text).toContain("Name: Python Elicited")
  }, 120_000)

  it("a call's stream broken on one replica is resumed with Last-Event-ID on another, missing nothing", async () => {
    const a = replicas[0]!
    const b = replicas[1 % REPLICAS]!
    const session = await openRawSession(`${a.origin}/v1/mcp`, "resumer")
    const broken = new AbortController()
    const response = await fetch(`${a.origin}/v1/mcp`, {
      method: "POST",
      headers: session,
      body: callBody(7, "fx_slow", { steps: 6, ms: 300 }, "resume-me"),
      signal: broken.signal
    })
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toBe("text/event-stream")
    const before = await readEvents(response.body!, (events) => progressOf(events).length === 1)
    broken.abort()
    // A priming event (an id, no data) first, then the first step.
    expect(before[0]).toEqual({ id: expect.any(String), message: undefined })
    expect(progressOf(before)).toEqual([1])
    const resumed = await fetch(`${b.origin}/v1/mcp`, {
      headers: { ...session, accept: "text/event-stream", "last-event-id": before.at(-1)!.id }
    })
    expect(resumed.status, `${await resumed.clone().text().catch(() => "")}\n${diagnostics()}`).toBe(200)
    const after = await readEvents(resumed.body!)
    expect(progressOf(after), diagnostics()).toEqual([2, 3, 4, 5, 6])
    expect(after.at(-1)?.message).toEqual({ jsonrpc: "2.0", id: 7, result: { content: [{ type: "text", text: "done after 6" }] } })
    const closed = await fetch(`${b.origin}/v1/mcp`, { method: "DELETE", headers: session })
    expect(closed.status).toBe(200)
  }, 30_000)

  // Needs a replica to survive the kill.
  it.skipIf(REPLICAS < 2)("SIGKILL the replica running a call: that call ends with an error in bounded time, the session goes on", async () => {
    // Quick resumption: the SDK resumes a broken call stream with GET + Last-Event-ID.
    const { client } = await connectAnswering(mcpUrl(), {
      initialReconnectionDelay: 200,
      maxReconnectionDelay: 1000,
      reconnectionDelayGrowFactor: 1.5,
      maxRetries: 5
    })
    try {
      await client.listTools()
      // Let the session's own GET stream settle first: only the call may change the counts below.
      await new Promise((resolve) => setTimeout(resolve, 300))
      const inFlightBefore = await Promise.all(replicas.map((r) => seriesOf(r, IN_FLIGHT)))
      let progressed = 0
      const call = client.callTool({ name: "fx_slow", arguments: { steps: 100, ms: 100 } }, undefined, {
        onprogress: () => progressed++,
        resetTimeoutOnProgress: true
      }).then(
        (result) => ({ ok: true as const, result }),
        (error: unknown) => ({ ok: false as const, error: error instanceof Error ? error.message : String(error) })
      )
      await eventually(() => progressed >= 2, 10_000, "the slow call to report progress")
      const inFlight = await Promise.all(replicas.map((r) => seriesOf(r, IN_FLIGHT)))
      const running = replicas.filter((_, i) => inFlight[i]! > inFlightBefore[i]!)
      expect(running.map((r) => r.name), `in flight before ${inFlightBefore.join(", ")}, now ${inFlight.join(", ")}`).toHaveLength(1)
      const victim = running[0]!
      const killedAt = Date.now()
      await victim.process.kill("SIGKILL")
      const outcome = await within(call, 15_000)
      expect(outcome, `the call on the killed ${victim.name} hung\n${diagnostics()}`).not.toBe("hung")
      // The caller hears why: a surviving replica resumed the call's stream and found its replica gone.
      expect(outcome, diagnostics()).toMatchObject({ ok: false, error: expect.stringContaining("The gateway replica running this call stopped") })
      expect(Date.now() - killedAt).toBeLessThan(15_000)

      // The session goes on, on the others (HAProxy takes the dead one out of rotation).
      await eventually(async () => (await balancer.serverStates())[victim.name] === "DOWN", 10_000, `HAProxy marks ${victim.name} DOWN`)
      for (let i = 0; i < 2 * REPLICAS; i++) {
        expect(textOf(await client.callTool({ name: "fx_echo", arguments: { message: `after ${i}` } })), diagnostics()).toBe(`echo: after ${i}`)
        expect((await client.listTools()).tools.map((t) => t.name)).toContain("fx_echo")
      }
      const sampled = await client.callTool({ name: "everything_trigger-sampling-request", arguments: { prompt: "after" } })
      expect(textOf(sampled), diagnostics()).toContain("v1-sampled")

      // Back in rotation for the tests after this one.
      await launch(victim)
      await eventually(async () => (await balancer.serverStates())[victim.name] === "UP", 10_000, `HAProxy marks ${victim.name} UP`)
    } finally {
      await client.close()
    }
  }, 60_000)

  it("Redis away: 503 with Retry-After where shared state is needed, 2026-era calls go on; Redis back: the open session works again by itself", async () => {
    const session = await openRawSession(mcpUrl(), "through-an-outage")
    const call = async (id: number) => {
      const started = Date.now()
      const response = await fetch(mcpUrl(), {
        method: "POST",
        headers: session,
        body: JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "fx_echo", arguments: { message: `o${id}` } } })
      })
      return { status: response.status, retryAfter: response.headers.get("retry-after"), body: await response.text(), ms: Date.now() - started }
    }
    for (let id = 1; id <= REPLICAS; id++) expect((await call(id)).status, diagnostics()).toBe(200)
    const stateless = await connectV2(mcpUrl())
    await redisServer.stop()
    try {
      // 2026-era (stateless) traffic needs no shared state.
      for (let i = 0; i < REPLICAS; i++) {
        expect(textOf(await stateless.callTool({ name: "fx_echo", arguments: { message: `s${i}` } }))).toBe(`echo: s${i}`)
      }
      // A new session needs Redis, wherever it lands.
      for (let i = 0; i < REPLICAS; i++) {
        const refused = await rawInitialize(mcpUrl(), { clientName: "during-the-outage" })
        expect(refused.status).toBe(503)
        expect(refused.headers.get("retry-after")).toMatch(/^\d+$/)
        expect(refused.headers.get("mcp-session-id")).toBeNull()
        await refused.text()
      }
      // The open session: served where the replica can, else a clear 503; never a 404, a 500 or a hang.
      const answers = []
      for (let id = 10; id < 10 + 2 * REPLICAS; id++) answers.push(await call(id))
      for (const answer of answers) {
        expect([200, 503], JSON.stringify(answers)).toContain(answer.status)
        expect(answer.ms, JSON.stringify(answers)).toBeLessThan(3_000)
        if (answer.status === 503) {
          expect(answer.retryAfter, JSON.stringify(answers)).toMatch(/^\d+$/)
          expect(JSON.parse(answer.body)).toMatchObject({ jsonrpc: "2.0", error: { code: -32000 } })
        } else {
          expect(answer.body).toContain(`echo: o`)
        }
      }
    } finally {
      await redisServer.start()
    }
    // Redis came back empty; the gateway recovers by itself: every replica serves the session again.
    let id = 100
    await eventually(async () => {
      for (let i = 0; i < 2 * REPLICAS; i++) if ((await call(id++)).status !== 200) return false
      return true
    }, 20_000, `the open session served ${2 * REPLICAS} times in a row`).catch((error) => {
      throw new Error(`${String(error)}\n${diagnostics()}`)
    })
    // New sessions open again once the replicas' Redis clients have reconnected.
    await eventually(async () => {
      const reopened = await rawInitialize(mcpUrl(), { clientName: "after-the-outage" })
      await reopened.text()
      return reopened.status === 200
    }, 15_000, "initialize to work again")
    expect(textOf(await stateless.callTool({ name: "fx_echo", arguments: { message: "after" } }))).toBe("echo: after")
    await stateless.close()
    const closed = await fetch(mcpUrl(), { method: "DELETE", headers: session })
    expect(closed.status).toBe(200)
  }, 60_000)
})
