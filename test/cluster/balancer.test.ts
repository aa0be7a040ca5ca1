/**
 * Three gateway processes (the built CLI, `cluster: redis(…)` on one real Redis) behind a real
 * HAProxy, round-robin with no stickiness (issue 20): what works through it today. 2026-era
 * clients (v2 SDK, Python `mcp` in auto mode) list and call with every replica serving some of
 * the requests; the HTTP connector proxy works; a clientCredentials token is fetched about once
 * per expiry for the whole cluster; a replica killed with SIGKILL costs at most the calls in
 * flight on it, each with an error. A 2025-era session is served by whichever replica a
 * request lands on (sessions2025.test.ts proves the rest of it).
 */
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import type { Client } from "@modelcontextprotocol/client"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { connectV2, eventually, rawInitialize, SESSION_HEADERS } from "../helpers/gateway.js"
import { type Haproxy, startHaproxy } from "../helpers/haproxy.js"
import { freePort, repoRoot, spawnProcess, type Spawned } from "../helpers/processes.js"
import { startRedis, type TestRedis } from "../helpers/redis.js"
import { type CountingTokenFront, startCountingTokenFront } from "../fixtures/countingTokenFront.js"
import { startHttpUpstream, type HttpUpstream } from "../fixtures/httpUpstream.js"
import { type OAuthServer, startOAuthServer } from "../fixtures/oauthServer.js"
import { type ProtectedUpstream, startProtectedUpstream } from "../fixtures/protectedUpstream.js"
import { ensurePythonEnv } from "../interop/pythonEnv.js"

const run = promisify(execFile)
const bin = join(repoRoot, "bin/aperture.js")
const TOKEN_TTL_SECONDS = 2
/** A 2 s token is refreshed 1.8 s after it was issued (10 % early). */
const REFRESH_MS = TOKEN_TTL_SECONDS * 900
const SECRET_KEY = "the balancer test's secret key, 32 characters or more"

interface Replica {
  readonly name: string
  readonly origin: string
  readonly process: Spawned
}

let redisServer: TestRedis
let as: OAuthServer
let upstream: ProtectedUpstream
let tokenFront: CountingTokenFront
let api: HttpUpstream
let balancer: Haproxy
const replicas: Array<Replica> = []
const dir = mkdtempSync(join(tmpdir(), "aperture-balancer-"))

const mcpUrl = () => `${balancer.origin}/v1/mcp`

/** One gateway process on a free port, every connector ready. */
const startReplica = async (name: string, config: string): Promise<Replica> => {
  const port = await freePort()
  const child = spawnProcess(process.execPath, [bin, "start", "--config", config, "--port", String(port)], {
    REDIS_URL: redisServer.url,
    APERTURE_SECRET_KEY: SECRET_KEY,
    OAUTH_CLIENT_SECRET: as.clients.basic.secret
  })
  const replica = { name, origin: `http://127.0.0.1:${port}`, process: child }
  replicas.push(replica)
  await eventually(async () => (await fetch(`${replica.origin}/healthz?ready`, { signal: AbortSignal.timeout(2000) })).status === 200, 30_000, `${name} ready`).catch((error) => {
    throw new Error(`${String(error)}\n${name}'s output:\n${child.output()}`)
  })
  return replica
}

/** A counter's value in a replica's own `/metrics`, read directly (not through the balancer). */
const counterOf = async (replica: Replica, series: string) => {
  const text = await (await fetch(`${replica.origin}/metrics`)).text()
  const line = text.split("\n").find((l) => l.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}
const CALLS = `aperture_requests_total{connector="api",method="tools/call"}`

/** What a failing test needs to see: the balancer's log and every replica's. */
const diagnostics = () =>
  [`haproxy:\n${balancer?.output() ?? ""}`, ...replicas.map((r) => `${r.name}:\n${r.process.output()}`)].join("\n\n")

beforeAll(async () => {
  redisServer = await startRedis()
  as = await startOAuthServer({ ttlSeconds: TOKEN_TTL_SECONDS })
  upstream = await startProtectedUpstream({ kind: "oauth", issuer: as.issuer, jwksUrl: as.jwksUrl })
  tokenFront = await startCountingTokenFront(as.tokenUrl)
  api = await startHttpUpstream()
  const config = join(dir, "aperture.config.ts")
  writeFileSync(config, `
    import { clientCredentials, defineConfig, env, grant, http, mcp, redis } from "aperture"
    export default defineConfig({
      cluster: redis({ url: env("REDIS_URL"), keyPrefix: "balancer-test:" }),
      secretKey: env("APERTURE_SECRET_KEY"),
      connectors: {
        api: mcp({
          url: "${upstream.url}",
          auth: clientCredentials({
            tokenUrl: "${tokenFront.tokenUrl}",
            clientId: "${as.clients.basic.id}",
            clientSecret: env("OAUTH_CLIENT_SECRET"),
            resource: "${upstream.url}"
          })
        }),
        rest: http({ url: "${api.origin}", allowPrivate: true })
      },
      grants: [grant({ src: ["local"], connectors: ["**"] })]
    })`)
  // One after the other: three cold starts at once on two cores take longer than in turn.
  for (const name of ["r0", "r1", "r2"]) await startReplica(name, config)
  balancer = await startHaproxy({ replicas: replicas.map((r) => r.origin) })
}, 120_000)

afterAll(async () => {
  await balancer?.stop()
  for (const replica of replicas) await replica.process.kill("SIGKILL")
  await api?.close()
  await tokenFront?.close()
  await upstream?.close()
  await as?.close()
  await redisServer?.stop()
  rmSync(dir, { recursive: true, force: true })
})

/** Calls `api_echo` through the balancer every ~50 ms for `ms`; every call must succeed. */
const callFor = async (client: Client, ms: number) => {
  const until = Date.now() + ms
  let n = 0
  while (Date.now() < until) {
    const result = await client.callTool({ name: "api_echo", arguments: { message: `m${n}` } })
    expect(result).toMatchObject({ content: [{ type: "text", text: `echo: m${n}` }] })
    n++
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return n
}

describe("three replicas behind HAProxy (round-robin, no affinity)", () => {
  it("a 2026-era client lists and calls tools through the balancer, and every replica serves some", async () => {
    const before = await Promise.all(replicas.map((r) => counterOf(r, CALLS)))
    const client = await connectV2(mcpUrl())
    try {
      for (let i = 0; i < 12; i++) {
        const { tools } = await client.listTools()
        expect(tools.map((t) => t.name)).toContain("api_echo")
        const result = await client.callTool({ name: "api_echo", arguments: { message: `through the balancer ${i}` } })
        expect(result).toMatchObject({ content: [{ type: "text", text: `echo: through the balancer ${i}` }] })
      }
    } finally {
      await client.close()
    }
    const served = (await Promise.all(replicas.map((r) => counterOf(r, CALLS)))).map((after, i) => after - before[i]!)
    expect(served.reduce((a, b) => a + b, 0), diagnostics()).toBe(12)
    for (const [i, calls] of served.entries()) expect(calls, `calls served by r${i}: ${served.join(", ")}`).toBeGreaterThan(0)
  }, 60_000)

  it("HTTP connector requests work through the balancer, spread over the replicas", async () => {
    const counter = `aperture_requests_total{connector="rest",method="GET"}`
    const before = await Promise.all(replicas.map((r) => counterOf(r, counter)))
    for (let i = 0; i < 9; i++) {
      const response = await fetch(`${balancer.origin}/v1/connectors/rest/items/${i}?q=${i}`)
      expect(response.status, diagnostics()).toBe(200)
      expect(await response.json()).toMatchObject({ method: "GET", url: `/items/${i}?q=${i}` })
    }
    const served = (await Promise.all(replicas.map((r) => counterOf(r, counter)))).map((after, i) => after - before[i]!)
    for (const calls of served) expect(calls, `requests served per replica: ${served.join(", ")}`).toBeGreaterThan(0)
  }, 30_000)

  it("the token endpoint sees about one request per expiry for the whole cluster", async () => {
    const client = await connectV2(mcpUrl())
    try {
      // One expiry to settle (every replica has seen the shared token), then count.
      await callFor(client, REFRESH_MS)
      const before = tokenFront.requests()
      const started = Date.now()
      const calls = await callFor(client, 3 * TOKEN_TTL_SECONDS * 1000 + 500)
      const expiries = Math.ceil((Date.now() - started) / REFRESH_MS)
      const requests = tokenFront.requests() - before
      expect(calls).toBeGreaterThan(30)
      expect(requests).toBeGreaterThanOrEqual(expiries - 1)
      expect(requests, `${requests} token requests over ${expiries} expiries`).toBeLessThanOrEqual(expiries + 1)
      expect(requests).toBeLessThan(3 * expiries)
    } finally {
      await client.close()
    }
  }, 60_000)

  it("a Python mcp client in auto mode (2026) lists and calls through the balancer", async () => {
    const python = await ensurePythonEnv()
    const { stdout } = await run(python, [join(repoRoot, "test/fixtures/balancer_python_client.py"), mcpUrl(), "auto", "api_echo", "4"], {
      cwd: repoRoot,
      timeout: 90_000,
      env: { ...process.env, PYTHONWARNINGS: "ignore" }
    })
    const seen = JSON.parse(stdout) as { protocol: string; tools: Array<string>; echoes: Array<string> }
    expect(seen.protocol).toBe("2026-07-28")
    expect(seen.tools).toContain("api_echo")
    expect(seen.echoes).toEqual(["echo: py0", "echo: py1", "echo: py2", "echo: py3"])
  }, 240_000)

  it("a 2025-era session is served by every replica: each request answers 200 wherever it lands", async () => {
    // Sessions are shared in Redis: no affinity on Mcp-Session-Id is needed (the full proof,
    // with progress, sampling, elicitation, resumption and a killed replica, is sessions2025.test.ts).
    const init = await rawInitialize(mcpUrl(), { clientName: "v1-through-balancer" })
    await init.text()
    const sessionId = init.headers.get("mcp-session-id")
    expect(sessionId).not.toBeNull()
    const headers = { ...SESSION_HEADERS, "mcp-session-id": sessionId! }
    // Round-robin over three: of the next three requests, two land on replicas that never saw it.
    const answers: Array<{ status: number; body: string }> = []
    for (let id = 1; id <= 3; id++) {
      const response = await fetch(mcpUrl(), { method: "POST", headers, body: JSON.stringify({ jsonrpc: "2.0", id, method: "tools/list" }) })
      answers.push({ status: response.status, body: await response.text() })
    }
    expect(answers.map((a) => a.status), JSON.stringify(answers)).toEqual([200, 200, 200])
    for (const answer of answers) expect(answer.body).toContain("api_echo")
    const closed = await fetch(mcpUrl(), { method: "DELETE", headers })
    expect(closed.status).toBe(200)
    // Ended everywhere: within moments (the other replicas hear of it over pub/sub) no replica serves it.
    await eventually(async () => {
      const statuses = await Promise.all([4, 5, 6].map(async (id) => {
        const response = await fetch(mcpUrl(), { method: "POST", headers, body: JSON.stringify({ jsonrpc: "2.0", id, method: "tools/list" }) })
        await response.text()
        return response.status
      }))
      return statuses.every((status) => status === 404)
    }, 5_000, "the deleted session refused by every replica")
  }, 30_000)

  it("SIGKILL one replica mid-run: at most the calls in flight on it fail, with an error; none hangs; calls go on", async () => {
    const WORKERS = 4
    const HANG_MS = 15_000
    // Hour-long tokens from here, so only the kill can fail a call: with 2 s tokens, concurrent
    // calls now and then got the upstream's 401 for an expired token (reported with issue 20).
    as.ttlSeconds = 3600
    await new Promise((resolve) => setTimeout(resolve, TOKEN_TTL_SECONDS * 1000 + 500))
    const clients = await Promise.all(Array.from({ length: WORKERS }, () => connectV2(mcpUrl())))
    type Outcome = { readonly at: number; readonly ok: boolean; readonly error?: string }
    const outcomes: Array<Outcome> = []
    let stop = false
    let hung = 0
    const worker = async (client: Client, w: number) => {
      for (let n = 0; !stop; n++) {
        const message = `w${w}-${n}`
        let timer: NodeJS.Timeout | undefined
        const hang = new Promise<"hung">((resolve) => (timer = setTimeout(() => resolve("hung"), HANG_MS)))
        const call = client.callTool({ name: "api_echo", arguments: { message } }).then(
          (result) => ({ ok: JSON.stringify(result).includes(`echo: ${message}`) }),
          (error: unknown) => ({ ok: false, error: error instanceof Error ? error.message : String(error) })
        )
        const outcome = await Promise.race([call, hang])
        clearTimeout(timer)
        if (outcome === "hung") {
          hung++
          return
        }
        outcomes.push({ at: Date.now(), ...outcome })
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }
    const running = clients.map(worker)
    try {
      await new Promise((resolve) => setTimeout(resolve, 1500))
      const victim = replicas[2]!
      const killedAt = Date.now()
      await victim.process.kill("SIGKILL")
      const down = await eventually(async () => (await balancer.serverStates())["r2"] === "DOWN" && Date.now(), 10_000, "HAProxy marks r2 DOWN")
      expect(down - killedAt, "r2 out of rotation within ~2 s").toBeLessThan(3000)
      // Keep calling well past the moment HAProxy dropped it.
      await new Promise((resolve) => setTimeout(resolve, 3000))
      stop = true
      await Promise.all(running)
      const failed = outcomes.filter((o) => !o.ok)
      const report = `${failed.length} failed of ${outcomes.length}: ${JSON.stringify(failed)}\n${diagnostics()}`
      expect(hung, report).toBe(0)
      expect(failed.length, report).toBeLessThanOrEqual(WORKERS)
      for (const failure of failed) {
        expect(failure.error, report).toBeDefined()
        expect(failure.at, report).toBeLessThan(down + 1000)
      }
      const after = outcomes.filter((o) => o.at > down)
      expect(after.length, report).toBeGreaterThan(20)
      expect(after.every((o) => o.ok), report).toBe(true)
    } finally {
      stop = true
      await Promise.all(running)
      await Promise.all(clients.map((c) => c.close()))
    }
  }, 60_000)
})
