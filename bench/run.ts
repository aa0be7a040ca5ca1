/**
 * `npm run bench [-- --quick] [-- --only S1,S3] [-- --soak] [-- --profile] [-- --telemetry]`: what the gateway costs, as ratios
 * against the same upstream reached directly in the same run. Method: bench/README.md
 * (gateway alone on CPU 1; upstream and load generator on CPU 0; alternating rounds; medians).
 * Prints a table and writes bench/RESULTS.md (`--profile`: bench/PROFILE.md).
 */
import { execSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Agent, request } from "undici"
import { everythingEntry, freePort, repoRoot, type Spawned } from "../test/helpers/processes.js"
import { startHaproxy } from "../test/helpers/haproxy.js"
import { ensureRedis } from "../test/helpers/redis.js"
import {
  closeSessions,
  closedLoop,
  httpClosedLoop,
  listTools,
  type LoadResult,
  type LoadWindow,
  openIdleSessions,
  openCallers,
  openLoop,
  openSession,
  percentile,
  sessionChurn,
  timedWorkers
} from "./loadgen.js"
import { nowUs, summarizeProfile, type Window } from "./cpuProfile.js"
import {
  cpuMillis,
  GATEWAY_CPU,
  heapSnapshotArgs,
  launch,
  liveHeapMiB,
  machineLine,
  pidOf,
  pinSelf,
  rssMiB,
  SHARED_CPU,
  snapshotDir,
  stopAll
} from "./machine.js"
import { type OtlpSink, startOtlpSink } from "./otlpSink.js"

const quick = process.argv.includes("--quick")
/**
 * `--telemetry`: every gateway runs with OpenTelemetry export on (`OTEL_EXPORTER_OTLP_ENDPOINT`,
 * every request traced) to a sink in this process, so a run beside one without it shows what
 * tracing costs. Prints only.
 */
const telemetry = process.argv.includes("--telemetry")
let otlpSink: OtlpSink | undefined
/** The machine's load average (runnable processes, 1 and 5 minutes), to say how busy it was. */
const loadLine = () => {
  const [one, five] = readFileSync("/proc/loadavg", "utf8").split(" ")
  return `load average ${one} (1 min), ${five} (5 min)`
}
const soak = process.argv.includes("--soak")
const profile = process.argv.includes("--profile")
/** `--profile everything`: the same, against server-everything over streamable HTTP. */
const profileEverything = profile && process.argv[process.argv.indexOf("--profile") + 1] === "everything"
const onlyArg = process.argv.find((a) => a.startsWith("--only"))
const only = new Set((onlyArg?.includes("=") ? onlyArg.split("=")[1] : process.argv[process.argv.indexOf("--only") + 1] ?? "")
  ?.split(",").filter((s) => /^S\d$/.test(s)) ?? [])
const runs = (scenario: string) => only.size === 0 || only.has(scenario)
/** `--upstreams everything` (or `raw,sdk`): S1 against some of its upstreams only. */
const upstreamsArg = process.argv.indexOf("--upstreams")
const s1Only = new Set(upstreamsArg === -1 ? [] : (process.argv[upstreamsArg + 1] ?? "").split(","))

const ROUNDS = quick ? 1 : 5
const SECONDS = quick ? 1 : 2
/**
 * Load on the gateway before anything is measured: V8 needs ~10 s of traffic before the hot
 * path is optimised (rounds in the first 5 s cost 2–4× the CPU per call of later ones).
 */
const WARMUP_SECONDS = quick ? 3 : 12
const tsx = ["--import", "tsx"]

const report: Array<string> = []
const out = (...lines: ReadonlyArray<string>) => {
  for (const line of lines.length === 0 ? [""] : lines) {
    report.push(line)
    process.stdout.write(`${line}\n`)
  }
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN
const range = (xs: ReadonlyArray<number>, digits = 0) =>
  xs.length < 2 ? "" : ` (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`
const f = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "—")

// ---------------------------------------------------------------- processes

const startRaw = async (toolsPerServer: number) => {
  const port = await freePort()
  const child = launch(SHARED_CPU, process.execPath, [...tsx, "bench/upstreams/rawResponder.ts", String(port), String(toolsPerServer)])
  return { child, base: (await child.waitFor(/http:\/\/\S+/)).trim() }
}

const startRest = async () => {
  const port = await freePort()
  const child = launch(SHARED_CPU, process.execPath, [...tsx, "bench/upstreams/restApi.ts", String(port)])
  return { child, base: (await child.waitFor(/http:\/\/\S+/)).trim() }
}

/**
 * `@modelcontextprotocol/server-everything` over streamable HTTP: a v1-SDK (2025-era), sessionful
 * server, as most of the ecosystem runs. It logs a line per request to stdout; that goes to
 * /dev/null (a write per request, as anywhere its output is not read) unless `countSessions`,
 * when it is read to count the sessions it opened (S8).
 */
const startEverything = async (countSessions = false) => {
  const port = await freePort()
  const child = countSessions
    ? launch(SHARED_CPU, process.execPath, [everythingEntry, "streamableHttp"], { PORT: String(port) })
    : launch(SHARED_CPU, "sh", ["-c", `exec "${process.execPath}" "${everythingEntry}" streamableHttp >/dev/null`], { PORT: String(port) })
  await child.waitFor(/listening on port \d+/)
  const sessionsOpened = () => child.output().split("Session initialized with ID").length - 1
  return { child, pid: pidOf(child), url: `http://127.0.0.1:${port}/mcp`, sessionsOpened }
}

const startSdk = async () => {
  const port = await freePort()
  const child = launch(SHARED_CPU, process.execPath, [...tsx, "bench/upstreams/sdkServer.ts", String(port)])
  return { child, url: (await child.waitFor(/http:\/\/\S+\/mcp/)).trim() }
}

interface Gateway {
  readonly child: Spawned
  readonly pid: number
  readonly url: string
  readonly origin: string
  /** ms from spawn to listening, and to every connector ready. */
  readonly startup: { readonly listening: number; readonly ready: number }
}

/** The floor relay (`bench/floorRelay.ts`) on the gateway's core: `POST /<name>` to each upstream. */
const startRelay = async (routes: Record<string, string>, nodeArgs: ReadonlyArray<string> = []) => {
  const port = await freePort()
  const child = launch(GATEWAY_CPU, process.execPath, [
    ...nodeArgs,
    ...tsx,
    "bench/floorRelay.ts",
    String(port),
    ...Object.entries(routes).map(([name, url]) => `${name}=${url}`)
  ])
  const origin = (await child.waitFor(/http:\/\/\S+/)).trim()
  return { child, pid: pidOf(child), origin }
}

const startGateway = async (
  connectors: ReadonlyArray<{ id: string; url: string; http?: boolean; isolation?: "caller" | "shared" }>,
  nodeArgs: ReadonlyArray<string> = heapSnapshotArgs,
  env: Record<string, string> = {},
  config = "bench/gateway.config.ts"
): Promise<Gateway> => {
  const port = await freePort()
  const started = performance.now()
  const child = launch(
    GATEWAY_CPU,
    process.execPath,
    [...nodeArgs, "bin/aperture.js", "--log-level", "warning", "start", "--config", config, "--port", String(port)],
    { BENCH_CONNECTORS: JSON.stringify(connectors), ...(otlpSink !== undefined && { OTEL_EXPORTER_OTLP_ENDPOINT: otlpSink.url }), ...env }
  )
  const origin = `http://127.0.0.1:${port}`
  let listening = Number.NaN
  while (performance.now() - started < 60_000) {
    if (child.child.exitCode !== null) throw new Error(`the gateway exited: ${child.output()}`)
    try {
      const health = await fetch(`${origin}/healthz`, { signal: AbortSignal.timeout(2000) }) // a just-started gateway once left one unanswered
      if (Number.isNaN(listening)) listening = performance.now() - started
      const body = (await health.json()) as { connectors: Record<string, number> }
      if ((body.connectors["ready"] ?? 0) === connectors.length) break
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 20))
  }
  return { child, pid: pidOf(child), url: `${origin}/v1/mcp`, origin, startup: { listening, ready: performance.now() - started } }
}

// ---------------------------------------------------------------- measurements

interface Cell {
  readonly rps: Array<number>
  readonly p50: Array<number>
  readonly p99: Array<number>
  errors: number
  cpuMsPerRequest: Array<number>
  /** The upstream's CPU per request on this path, when its process is metered. */
  upstreamCpuMsPerRequest: Array<number>
}

const emptyCell = (): Cell => ({ rps: [], p50: [], p99: [], errors: 0, cpuMsPerRequest: [], upstreamCpuMsPerRequest: [] })

const record = (cell: Cell, result: LoadResult) => {
  cell.rps.push(result.requests / result.seconds)
  cell.p50.push(percentile(result.latenciesMs, 50))
  cell.p99.push(percentile(result.latenciesMs, 99))
  cell.errors += result.errors
}

type Target = "direct" | "gateway" | "relay"

interface Compared {
  readonly direct: Cell
  readonly gateway: Cell
  /** Empty unless a relay was measured. */
  readonly relay: Cell
  readonly loadgenCpuShare: number
}

/**
 * Alternating rounds of the same load on each target (direct and gateway, and the floor relay
 * when one is given); CPU per request is read from /proc for the gateway and the relay, and for
 * the upstream on every path when its process is given (does it work harder for one path?),
 * over the timed window the load reports (a direct path's sessions open and close upstream
 * outside it, as the gateway's open and close on the gateway).
 */
async function compare(
  gateway: { readonly pid: number },
  load: (target: Target, window: LoadWindow) => Promise<LoadResult>,
  relay?: { readonly pid: number },
  upstream?: { readonly pid: number }
): Promise<Compared> {
  const cells: Record<Target, Cell> = { direct: emptyCell(), gateway: emptyCell(), relay: emptyCell() }
  const meters: Partial<Record<Target, number>> = { gateway: gateway.pid, ...(relay !== undefined && { relay: relay.pid }) }
  const order: ReadonlyArray<Target> = relay === undefined ? ["direct", "gateway"] : ["direct", "gateway", "relay"]
  let loadgenBusy = 0
  let wall = 0
  for (let round = 0; round < ROUNDS; round++) {
    // Each target leads in turn, so a drift of the machine falls on all of them.
    for (let i = 0; i < order.length; i++) {
      const target = order[(round + i) % order.length]!
      const pid = meters[target]
      const cpu0 = pid === undefined ? 0 : cpuMillis(pid)
      let upstreamCpu = 0
      const window: LoadWindow = {
        start: () => void (upstreamCpu = upstream === undefined ? 0 : cpuMillis(upstream.pid)),
        end: () => void (upstreamCpu = upstream === undefined ? 0 : cpuMillis(upstream.pid) - upstreamCpu)
      }
      const self0 = process.cpuUsage()
      const t0 = performance.now()
      const result = await load(target, window)
      const self = process.cpuUsage(self0)
      loadgenBusy += (self.user + self.system) / 1000
      wall += performance.now() - t0
      record(cells[target], result)
      if (pid !== undefined) cells[target].cpuMsPerRequest.push((cpuMillis(pid) - cpu0) / Math.max(1, result.requests))
      if (upstream !== undefined) {
        cells[target].upstreamCpuMsPerRequest.push(upstreamCpu / Math.max(1, result.requests))
      }
    }
  }
  return { ...cells, loadgenCpuShare: loadgenBusy / wall }
}

/** The upstream's CPU per request on a path, when it was metered. */
const upstreamCpu = (cell: Cell, separator: string) =>
  cell.upstreamCpuMsPerRequest.length === 0 ? "" : `${separator}upstream ${f(median(cell.upstreamCpuMsPerRequest))} ms`

const throughputRows = (label: string, d: Cell, g: Cell, gateway: { readonly pid: number }, relay?: { cell: Cell; pid: number }) => {
  out(
    `| ${label} | direct | ${f(median(d.rps), 0)}${range(d.rps)} | ${f(median(d.p50))} | ${f(median(d.p99))} | | ${upstreamCpu(d, "")} | ${d.errors} |`
  )
  out(
    `| ${label} | gateway | ${f(median(g.rps), 0)}${range(g.rps)} | ${f(median(g.p50))} | ${f(median(g.p99))} | **${
      f(median(g.rps) / median(d.rps))
    }×** | ${f(median(g.cpuMsPerRequest))} ms, ${f(rssMiB(gateway.pid), 0)} MiB${upstreamCpu(g, "; ")} | ${g.errors} |`
  )
  if (relay === undefined) return
  const r = relay.cell
  out(
    `| ${label} | floor: bare Node relay | ${f(median(r.rps), 0)}${range(r.rps)} | ${f(median(r.p50))} | ${f(median(r.p99))} | ${
      f(median(r.rps) / median(d.rps))
    }× | ${f(median(r.cpuMsPerRequest))} ms, ${f(rssMiB(relay.pid), 0)} MiB${upstreamCpu(r, "; ")} | ${r.errors} |`
  )
}

const TABLE_HEAD = [
  "| cell | target | req/s (min–max) | p50 ms | p99 ms | gateway/direct | gateway CPU per req, RSS; upstream CPU per req (S1) | errors |",
  "|---|---|---:|---:|---:|---:|---|---:|"
]

// ---------------------------------------------------------------- scenarios

interface Upstream {
  readonly name: string
  /** Its own URL (the direct path). */
  readonly direct: string
  /** Its connector id, the prefix of its tools through the gateway and its route on the relay. */
  readonly tool: string
  /** Its process, metered in S1. */
  readonly pid: number
}

const throughputScenarios = async () => {
  const raw = await startRaw(0)
  const sdk = await startSdk()
  const everything = runs("S1") ? await startEverything() : undefined
  const gateway = await startGateway([
    { id: "sdk", url: sdk.url },
    { id: "raw", url: `${raw.base}/mcp/0` },
    // The connector's default isolation ("caller"): the bench's one caller (local) gets its own
    // upstream session on its first call, in the warm-up; what is measured is the call path.
    ...(everything === undefined ? [] : [{ id: "everything", url: everything.url }])
  ])
  const upstreams: ReadonlyArray<Upstream> = [
    { name: "SDK upstream", direct: sdk.url, tool: "sdk", pid: pidOf(sdk.child) },
    { name: "raw upstream", direct: `${raw.base}/mcp/0`, tool: "raw", pid: pidOf(raw.child) }
  ]
  // server-everything has `echo` but no `progress`: S1 only.
  const s1Upstreams: ReadonlyArray<Upstream> = [
    ...upstreams,
    ...(everything === undefined ? [] : [{ name: "everything upstream (v1 SDK)", direct: everything.url, tool: "everything", pid: everything.pid }])
  ].filter((u) => s1Only.size === 0 || s1Only.has(u.tool))
  const relay = runs("S1")
    ? await startRelay({ sdk: sdk.url, raw: `${raw.base}/mcp/0`, ...(everything !== undefined && { everything: everything.url }) })
    : undefined
  const target = (t: Target, u: Upstream, tool: string) =>
    t === "direct"
      ? { url: u.direct, tool }
      : t === "relay"
      ? { url: `${relay!.origin}/${u.tool}`, tool }
      : { url: gateway.url, tool: `${u.tool}_${tool}` }

  for (const u of s1Upstreams) {
    await closedLoop({ ...target("direct", u, "echo"), message: "warm", concurrency: 8, seconds: 1 })
    await closedLoop({ ...target("gateway", u, "echo"), message: "warm", concurrency: 16, seconds: WARMUP_SECONDS / 2 })
    if (relay !== undefined) await closedLoop({ ...target("relay", u, "echo"), message: "warm", concurrency: 16, seconds: quick ? 1 : 2 })
  }

  const saturation: Record<string, number> = {}
  if (runs("S1")) {
    out("", "## S1 `tools/call` echo, ~100 B, closed loop", "", ...TABLE_HEAD)
    let share = 0
    for (const u of s1Upstreams) {
      for (const concurrency of [1, 16, 64]) {
        // The floor where a target is about it: the raw upstream at c=16 (the 0.5× target).
        const withFloor = u.tool === "raw" && concurrency === 16 ? relay : undefined
        const cells = await compare(gateway, (t, window) =>
          closedLoop({ ...target(t, u, "echo"), message: "x".repeat(100), concurrency, seconds: SECONDS, window }), withFloor, u)
        share = Math.max(share, cells.loadgenCpuShare)
        throughputRows(`${u.name}, c=${concurrency}`, cells.direct, cells.gateway, gateway, withFloor && { cell: cells.relay, pid: withFloor.pid })
        if (concurrency === 16) saturation[u.name] = median(cells.gateway.rps)
      }
    }
    out("", `Load generator: at most ${f(share * 100, 0)} % of its core (CPU ${SHARED_CPU}, shared with the upstream).`)
    out(
      "The floor is `bench/floorRelay.ts` on the gateway's core: `node:http` in, undici out, bytes back, no MCP work at all; what no Node proxy goes below here."
    )

    out("", "### S1 open loop at 50 % of the gateway's saturation (same offered rate on every path)", "")
    out(
      "| upstream | rate | direct p50 / p99 ms | gateway p50 / p99 ms | added p50 | added p99 | floor relay p50 / p99 ms | floor added p50 |",
      "|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    for (const u of s1Upstreams) {
      const rate = Math.max(20, Math.round((saturation[u.name] ?? 100) / 2))
      const cells = await compare(gateway, (t, window) =>
        openLoop({ ...target(t, u, "echo"), message: "x".repeat(100), rate, seconds: SECONDS, window }), relay, u)
      const [d50, d99] = [median(cells.direct.p50), median(cells.direct.p99)]
      const [g50, g99] = [median(cells.gateway.p50), median(cells.gateway.p99)]
      const [r50, r99] = [median(cells.relay.p50), median(cells.relay.p99)]
      out(`| ${u.name} | ${rate}/s | ${f(d50)} / ${f(d99)} | ${f(g50)} / ${f(g99)} | ${f(g50 - d50)} | ${f(g99 - d99)} | ${f(r50)} / ${f(r99)} | ${f(r50 - d50)} |`)
    }
    await relay?.child.kill("SIGINT")
  }

  if (runs("S2")) {
    out("", "## S2 `tools/call` echo, 16 KiB arguments and result, c=16", "", ...TABLE_HEAD)
    for (const u of upstreams) {
      const cells = await compare(gateway, (t) =>
        closedLoop({ ...target(t, u, "echo"), message: "y".repeat(16 * 1024), concurrency: 16, seconds: SECONDS }))
      throughputRows(u.name, cells.direct, cells.gateway, gateway)
    }
  }

  if (runs("S5")) {
    out("", "## S5 a tool streaming 10 progress notifications, c=8", "", ...TABLE_HEAD)
    for (const u of upstreams) {
      const cells = await compare(gateway, (t) =>
        closedLoop({ ...target(t, u, "progress"), message: "z", progress: true, concurrency: 8, seconds: SECONDS }))
      throughputRows(u.name, cells.direct, cells.gateway, gateway)
    }
  }
}

const catalogScenarios = async () => {
  if (!runs("S3") && !runs("S4")) return
  const rawBig = await startRaw(1000)
  const rawHundred = await startRaw(100)
  const rawEmpty = await startRaw(0)
  const servers = (base: string, n: number) => Array.from({ length: n }, (_, i) => ({ id: `u${i}`, url: `${base}/mcp/${i}` }))
  const topologies = [
    { name: "1 upstream, no tools", connectors: servers(rawEmpty.base, 1), upstreams: 1 },
    { name: "1×1,000 tools", connectors: servers(rawBig.base, 1), upstreams: 1 },
    { name: "10×100 tools", connectors: servers(rawHundred.base, 10), upstreams: 10 },
    { name: "100×100 tools (10k)", connectors: servers(rawHundred.base, 100), upstreams: 100 },
    // The baseline for catalog memory: the same 100 upstream clients, nothing in the catalog.
    { name: "100 upstreams, no tools", connectors: servers(rawEmpty.base, 100), upstreams: 100 }
  ]
  const listStats = async (base: string) => ((await (await fetch(`${base}/stats`)).json()) as { listRequests: number }).listRequests

  if (runs("S3")) {
    out("", "## S3 `tools/list` from the catalog (sequential, 200 warm requests after 50 untimed)", "")
    out("| catalog | cold first page ms | warm first page p50 / p99 ms | full walk ms (pages) | RSS MiB | upstream lists during the warm loop |")
    out("|---|---:|---:|---:|---:|---:|")
  }
  const readyMemory: Record<string, { rss: number; heap: number }> = {}
  for (const topology of topologies) {
    const gateway = await startGateway(topology.connectors)
    const rssReady = rssMiB(gateway.pid)
    const dispatcher = new Agent({ connections: 1 })
    const headers = await openSession(gateway.url, dispatcher)
    if (runs("S3")) {
      const cold = await listTools(gateway.url, dispatcher, headers, false)
      const bases = [rawBig.base, rawHundred.base, rawEmpty.base]
      const before = (await Promise.all(bases.map(listStats))).reduce((a, b) => a + b, 0)
      // Untimed first, as every scenario warms up: a just-started gateway's first lists run unoptimised code.
      for (let i = 0; i < (quick ? 10 : 50); i++) await listTools(gateway.url, dispatcher, headers, false)
      const warm: Array<number> = []
      for (let i = 0; i < (quick ? 50 : 200); i++) warm.push((await listTools(gateway.url, dispatcher, headers, false)).ms)
      const walks: Array<{ ms: number; pages: number; tools: number }> = []
      for (let i = 0; i < 5; i++) walks.push(await listTools(gateway.url, dispatcher, headers, true))
      const after = (await Promise.all(bases.map(listStats))).reduce((a, b) => a + b, 0)
      const sorted = Float64Array.from(warm).sort()
      out(
        `| ${topology.name} (${walks[0]?.tools ?? 0} tools) | ${f(cold.ms)} | ${f(percentile(sorted, 50))} / ${f(percentile(sorted, 99))} | ${
          f(median(walks.map((w) => w.ms)))
        } (${walks[0]?.pages ?? 0}) | ${f(rssMiB(gateway.pid), 0)} | ${after - before} |`
      )
    }
    // Heap snapshots of a 100-connector gateway take ~20 s each: full runs only.
    if (runs("S3") && topology.upstreams === 100 && !quick) {
      // With the bench's session closed, the live heap is the catalog and the upstream clients.
      await closeSessions(gateway.url, dispatcher, [headers])
      readyMemory[topology.name] = { rss: rssReady, heap: await liveHeapMiB(gateway.pid) }
    }
    if (runs("S4") && !["1×1,000 tools", "100 upstreams, no tools"].includes(topology.name)) {
      const churn = await sessionChurn(gateway.url, 8, SECONDS * 2)
      out(
        "",
        `S4 churn, ${topology.upstreams} upstream(s) (${topology.name}): ${f(churn.requests / churn.seconds, 0)} sessions/s, ` +
          `p50 ${f(percentile(churn.latenciesMs, 50))} ms, p99 ${f(percentile(churn.latenciesMs, 99))} ms, ${churn.errors} errors, RSS ${
            f(rssMiB(gateway.pid), 0)
          } MiB`
      )
      if (topology.upstreams === 1) await idleAndSoak(gateway)
    }
    await dispatcher.close()
    await gateway.child.kill("SIGINT")
  }
  if (runs("S3")) {
    const empty = readyMemory["100 upstreams, no tools"] ?? { rss: Number.NaN, heap: Number.NaN }
    const big = readyMemory["100×100 tools (10k)"] ?? { rss: Number.NaN, heap: Number.NaN }
    out(
      "",
      quick
        ? "Catalog memory at 10k tools (live heap): measured in full runs only."
        : `Catalog memory at 10k tools, 100 upstreams of 100 tools vs the same 100 upstreams with none: ` +
          `live heap ${f(big.heap - empty.heap, 1)} MiB (${f(big.heap, 0)} vs ${f(empty.heap, 0)}), ` +
          `RSS once ready ${f(big.rss - empty.rss, 0)} MiB (${f(big.rss, 0)} vs ${f(empty.rss, 0)}; RSS also counts discovery's garbage V8 has not collected).`
    )
    const direct = new Agent({ connections: 1 })
    const directHeaders = await openSession(`${rawBig.base}/mcp/0`, direct)
    const samples: Array<number> = []
    for (let i = 0; i < (quick ? 50 : 200); i++) samples.push((await listTools(`${rawBig.base}/mcp/0`, direct, directHeaders, false)).ms)
    const sorted = Float64Array.from(samples).sort()
    out(`Direct baseline, the raw upstream's own 1,000-tool list: p50 ${f(percentile(sorted, 50))} ms, p99 ${f(percentile(sorted, 99))} ms.`)
    await direct.close()
  }
}

/** S4's memory checks on a gateway with one upstream: 1,000 idle sessions, and RSS over a long churn. */
const idleAndSoak = async (gateway: Gateway) => {
  const before = rssMiB(gateway.pid)
  await openIdleSessions(gateway.url, 1000)
  await new Promise((r) => setTimeout(r, 1000))
  const after = rssMiB(gateway.pid)
  out(`S4 idle: 1,000 idle 2025-era sessions cost ${f(after - before, 0)} MiB RSS (${f(before, 0)} → ${f(after, 0)} MiB).`)
  if (quick) return
  const minutes = soak ? 10 : 1
  const samples: Array<number> = []
  const deadline = performance.now() + minutes * 60_000
  while (performance.now() < deadline) {
    await sessionChurn(gateway.url, 8, 10)
    samples.push(rssMiB(gateway.pid))
  }
  const settled = samples.slice(1)
  out(
    `S4 churn for ${minutes} min: RSS every 10 s ${samples.map((s) => f(s, 0)).join(", ")} MiB; after warm-up it moved ${
      f(((Math.max(...settled) - Math.min(...settled)) / Math.min(...settled)) * 100, 1)
    } %${soak ? "" : " (run with --soak for 10 minutes)"}.`
  )
}

const startupScenario = async () => {
  if (!runs("S7")) return
  const raw = await startRaw(10)
  out("", "## S7 start-up to ready (CLI start, config load, every connector connected and listed)", "")
  out(
    "Direct: a fresh Node process importing only the MCP SDK client, connecting as many bare clients (negotiating the era as the gateway does) and listing their tools, 32 at a time (`bench/directDiscovery.mjs`). After the first start the config comes from the transpile cache, as on any restart.",
    ""
  )
  out("| connectors | gateway listening after ms | gateway all ready after ms | direct ready after ms | gateway − direct ms |", "|---:|---:|---:|---:|---:|")
  for (const n of [1, 10, 100]) {
    const times: Array<{ listening: number; ready: number }> = []
    const direct: Array<number> = []
    for (let i = 0; i < (quick ? 1 : 3); i++) {
      const gateway = await startGateway(Array.from({ length: n }, (_, k) => ({ id: `u${k}`, url: `${raw.base}/mcp/${k}` })))
      times.push(gateway.startup)
      await gateway.child.kill("SIGINT")
      direct.push(await directDiscovery(raw.base, n))
    }
    const ready = median(times.map((t) => t.ready))
    out(`| ${n} | ${f(median(times.map((t) => t.listening)), 0)} | ${f(ready, 0)} | ${f(median(direct), 0)} | ${f(ready - median(direct), 0)} |`)
  }
}

/** Milliseconds from spawning `bench/directDiscovery.mjs` (on the gateway's core) to its `ready`. */
const directDiscovery = async (base: string, count: number) => {
  const started = performance.now()
  const child = launch(GATEWAY_CPU, process.execPath, ["bench/directDiscovery.mjs", base, String(count)])
  await child.waitFor(/^ready \d+/m)
  const ms = performance.now() - started
  await child.kill("SIGINT")
  return ms
}

/** A gauge's sample from the gateway's `/metrics` (the bench's loopback caller may read it). */
const gaugeValue = async (origin: string, series: string): Promise<number> => {
  const text = await (await fetch(`${origin}/metrics`)).text()
  const line = text.split("\n").find((l) => l.startsWith(`${series} `))
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1))
}

/**
 * S8, what isolating callers costs: `CALLERS` distinct logins (the trustedHeaders plugin, from
 * loopback) each open a session and make one call through a connector to server-everything over
 * streamable HTTP, then stay idle; with `isolation: "caller"` each gets its own upstream session,
 * with `"shared"` all use the connector's one. The difference between the two is the isolation's.
 */
const isolationScenario = async () => {
  if (!runs("S8")) return
  const callers = quick ? 200 : 1000
  out("", `## S8 isolation cost: ${callers.toLocaleString("en")} distinct callers, one call each, then idle (server-everything over streamable HTTP)`, "")
  out(
    `Each caller (\`Tailscale-User-Login: caller-<i>\`, trustedHeaders from loopback) opens a 2025-era session and calls \`everything_echo\` once, 16 callers at a time; their sessions then stay open and idle. ` +
      "Memory is measured 2 s after the last call, against the gateway just started (connector ready, no caller). Upstream sessions are counted by the upstream itself (its log) and by the gateway (`aperture_caller_sessions`).",
    ""
  )
  out(
    "| isolation | upstream sessions opened (upstream's count) | `aperture_caller_sessions` | time to open all callers | gateway CPU per new caller | gateway RSS +MiB | gateway live heap +MiB | upstream RSS +MiB | errors |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  )
  const measured: Partial<Record<"shared" | "caller", { heapMiB: number; rssMiB: number; ms: number; cpuMs: number }>> = {}
  for (const isolation of ["shared", "caller"] as const) {
    const everything = await startEverything(true)
    const gateway = await startGateway([{ id: "everything", url: everything.url, isolation }], heapSnapshotArgs, { BENCH_IDENTITY: "trustedHeaders" })
    await new Promise((r) => setTimeout(r, 1000))
    const sessionsBefore = everything.sessionsOpened()
    const heapBefore = quick ? Number.NaN : await liveHeapMiB(gateway.pid)
    const rssBefore = rssMiB(gateway.pid)
    const upstreamRssBefore = rssMiB(everything.pid)
    const cpuBefore = cpuMillis(gateway.pid)
    const opened = await openCallers({ url: gateway.url, tool: "everything_echo", message: "hi", count: callers, concurrency: 16 })
    const cpuMs = (cpuMillis(gateway.pid) - cpuBefore) / callers
    // server-everything asks a new session for its roots 350 ms after it opens: let that settle.
    await new Promise((r) => setTimeout(r, 2000))
    const gauge = await gaugeValue(gateway.origin, `aperture_caller_sessions{connector="everything"}`)
    const upstreamSessions = everything.sessionsOpened() - sessionsBefore
    const rss = rssMiB(gateway.pid) - rssBefore
    const heap = quick ? Number.NaN : (await liveHeapMiB(gateway.pid)) - heapBefore
    const upstreamRss = rssMiB(everything.pid) - upstreamRssBefore
    measured[isolation] = { heapMiB: heap, rssMiB: rss, ms: opened.ms, cpuMs }
    out(
      `| ${isolation} | ${upstreamSessions} | ${gauge} | ${f(opened.ms / 1000, 2)} s | ${f(cpuMs)} ms | ${f(rss, 0)} | ${f(heap, 1)} | ${f(upstreamRss, 0)} | ${opened.errors} |`
    )
    const dispatcher = new Agent({ connections: 16 })
    await closeSessions(gateway.url, dispatcher, opened.sessions)
    await dispatcher.close()
    await gateway.child.kill("SIGINT")
    await everything.child.kill("SIGINT")
  }
  const shared = measured.shared
  const caller = measured.caller
  if (shared !== undefined && caller !== undefined) {
    const perCallerKiB = (mib: number) => f((mib * 1024) / callers, 0)
    out(
      "",
      `Per idle caller session (caller − shared, over ${callers.toLocaleString("en")}): ` +
        (quick ? "live heap measured in full runs only" : `live heap ${perCallerKiB(caller.heapMiB - shared.heapMiB)} KiB`) +
        `, RSS ${perCallerKiB(caller.rssMiB - shared.rssMiB)} KiB. Opening them: ${f((caller.ms - shared.ms) / 1000, 1)} s longer for all ` +
        `(16 at a time), ${f(caller.cpuMs - shared.cpuMs)} ms more gateway CPU per caller. The shared row's memory is the callers' own downstream sessions.`
    )
  }
}

const proxyScenario = async () => {
  if (!runs("S6")) return
  const rest = await startRest()
  const gateway = await startGateway([{ id: "rest", url: rest.base, http: true }])
  const url = (t: Target, size: number) =>
    t === "direct" ? `${rest.base}/bytes/${size}` : `${gateway.origin}/v1/connectors/rest/bytes/${size}`
  for (const t of ["direct", "gateway"] as const) {
    await httpClosedLoop({ url: url(t, 1024), concurrency: 16, seconds: WARMUP_SECONDS / 2, expectedBytes: 1024 })
  }
  out("", "## S6 HTTP connector proxy (`GET /v1/connectors/<id>/bytes/<n>` vs the REST upstream), c=16", "", ...TABLE_HEAD)
  for (const size of [1024, 1024 * 1024]) {
    const cells = await compare(gateway, (t) => httpClosedLoop({ url: url(t, size), concurrency: 16, seconds: SECONDS, expectedBytes: size }))
    throughputRows(size === 1024 ? "1 KiB" : "1 MiB", cells.direct, cells.gateway, gateway)
  }
  await gateway.child.kill("SIGINT")
}

/** A 2026-07-28 `tools/call` as the v2 SDK client sends it: no session, the envelope in `_meta`. */
const call2026 = (tool: string, message: string) => {
  const prefix = `{"jsonrpc":"2.0","id":`
  const suffix = `,"method":"tools/call","params":{"name":${JSON.stringify(tool)},"arguments":{"message":${JSON.stringify(message)}},` +
    `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`
  return {
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2026-07-28",
      "mcp-method": "tools/call",
      "mcp-name": tool
    },
    body: (id: number) => prefix + id + suffix
  }
}

/** `concurrency` workers POST 2026-era calls back to back for `seconds` (no session to open). */
const closedLoop2026 = async (options: { readonly url: string; readonly tool: string; readonly concurrency: number; readonly seconds: number }): Promise<LoadResult> => {
  const dispatcher = new Agent({ connections: options.concurrency, pipelining: 1, keepAliveTimeout: 30_000 })
  const { headers, body } = call2026(options.tool, "x".repeat(100))
  let id = 1
  const result = await timedWorkers(options.concurrency, options.seconds, async () => {
    const response = await request(options.url, { method: "POST", dispatcher, headers, body: body(id++) })
    const text = await response.body.text()
    return response.statusCode === 200 && text.includes("\"result\"")
  })
  await dispatcher.close()
  return result
}

/**
 * `sessions.length` workers, each in its own already-open 2025-era session (its headers), POST
 * `tools/call` back to back for `seconds`: the sessions stay open across rounds, so what is
 * measured is the call, not the session's opening (S9 measures that apart).
 */
const closedLoop2025 = (
  url: string,
  dispatcher: Agent,
  sessions: ReadonlyArray<Record<string, string>>,
  tool: string,
  seconds: number
): Promise<LoadResult> => {
  const prefix = `{"jsonrpc":"2.0","id":`
  const suffix = `,"method":"tools/call","params":{"name":${JSON.stringify(tool)},"arguments":{"message":${JSON.stringify("x".repeat(100))}}}}`
  let id = 1
  return timedWorkers(sessions.length, seconds, async (worker) => {
    const response = await request(url, { method: "POST", dispatcher, headers: sessions[worker]!, body: prefix + id++ + suffix })
    const text = await response.body.text()
    return response.statusCode === 200 && text.includes("\"result\"")
  })
}

/** Redis's own count of each command it ran (`INFO commandstats`; a script's inner commands count too), without INFO itself. */
type CommandCounts = Map<string, number>
const commandCounts = (info: string): CommandCounts => {
  const counts: CommandCounts = new Map()
  for (const [, name, calls] of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (name !== "info") counts.set(name!, Number(calls))
  }
  return counts
}
const commandsBetween = (before: CommandCounts, after: CommandCounts): CommandCounts =>
  new Map([...after].map(([name, calls]) => [name, calls - (before.get(name) ?? 0)] as const).filter(([, calls]) => calls > 0))
const totalOf = (counts: CommandCounts) => [...counts.values()].reduce((a, b) => a + b, 0)

/**
 * What Redis sees per 2025-era call and per session step, exactly: a MONITOR connection lists
 * every command, with those a script runs marked `lua`, so client round trips and the commands
 * they run are told apart. Heartbeats (`SET …replica:…` every second per replica) are left out.
 */
const redisAccounting = async (redisUrl: string, replicas: ReadonlyArray<Gateway>) => {
  const { createClient } = await import("redis")
  const monitor = createClient({ url: redisUrl })
  await monitor.connect()
  const roundTrips = new Map<string, number>()
  const inScripts = new Map<string, number>()
  await monitor.monitor((line: string) => {
    const fields = /^\S+ \[\d+ (\S+)\] "([^"]+)"(.*)$/.exec(line)
    if (fields === null || fields[3]!.includes("replica:")) return
    const counts = fields[1] === "lua" ? inScripts : roundTrips
    const name = fields[2]!.toLowerCase()
    counts.set(name, (counts.get(name) ?? 0) + 1)
  })
  const sessionsCount = quick ? 20 : 50
  const dispatcher = new Agent({ connections: 16, pipelining: 1, keepAliveTimeout: 30_000 })
  const prefix = `{"jsonrpc":"2.0","id":`
  const suffix = `,"method":"tools/call","params":{"name":"raw_echo","arguments":{"message":"x"}}}`
  let id = 1
  const callAll = (replica: Gateway, sessions: ReadonlyArray<Record<string, string>>) =>
    Promise.all(sessions.map(async (headers) => {
      const response = await request(replica.url, { method: "POST", dispatcher, headers, body: prefix + id++ + suffix })
      const text = await response.body.text()
      if (response.statusCode !== 200 || !text.includes("\"result\"")) throw new Error(`S9: a call failed: HTTP ${response.statusCode} ${text.slice(0, 200)}`)
    }))
  // MONITOR's lines arrive a little after the commands: each step waits for them before it is read.
  const step = async (name: string, per: number, run: () => Promise<unknown>) => {
    roundTrips.clear()
    inScripts.clear()
    await run()
    await new Promise((r) => setTimeout(r, 300))
    const describe = (counts: Map<string, number>) =>
      [...counts].sort((a, b) => b[1] - a[1]).map(([command, n]) => `${command} ${f(n / per, 2)}`).join(", ")
    return { name, roundTrips: totalOf(roundTrips) / per, inScripts: totalOf(inScripts) / per, detail: describe(roundTrips), scriptDetail: describe(inScripts) }
  }
  const [first, second, third] = replicas as [Gateway, Gateway, Gateway]
  let sessions: Array<Record<string, string>> = []
  const steps = [
    await step("session open: `initialize` + `notifications/initialized` on one replica", sessionsCount, async () => {
      sessions = await Promise.all(Array.from({ length: sessionsCount }, () => openSession(first.url, dispatcher)))
    }),
    await step("its first `tools/call`, on the same replica", sessionsCount, () => callAll(first, sessions)),
    await step("a `tools/call` (steady: 5 per session, same replica)", sessionsCount * 5, async () => {
      for (let i = 0; i < 5; i++) await callAll(first, sessions)
    }),
    await step("first request on a second replica (a `tools/call`: loads the record, builds a copy)", sessionsCount, () => callAll(second, sessions)),
    await step("first request on a third replica (the same)", sessionsCount, () => callAll(third, sessions)),
    await step("a `tools/call` on a replica holding a copy (steady)", sessionsCount * 5, async () => {
      for (let i = 0; i < 5; i++) await callAll(second, sessions)
    }),
    await step("`DELETE` (on the replica that opened it)", sessionsCount, () => closeSessions(first.url, dispatcher, sessions))
  ]
  await dispatcher.close()
  monitor.destroy()
  return steps
}

/**
 * S9, a cluster's cost: `tools/call` (raw upstream, c=16), 2026-era (stateless) and 2025-era (in
 * sessions), through one replica without and with `cluster: redis(…)`, and through HAProxy
 * (round-robin, as test/cluster/balancer.test.ts runs it) in front of 1 and of 3 replicas; then
 * Redis's round trips per 2025-era call and per session step. Every replica shares CPU 1;
 * HAProxy, Redis, the upstream and the load generator CPU 0: on two cores this shows what each
 * hop costs, not scaling.
 */
const clusterScenario = async () => {
  // ~3 min in a full run: not part of --quick unless asked for (`--quick --only S9`).
  if (!(only.has("S9") || (only.size === 0 && !quick))) return
  const raw = await startRaw(0)
  const redisPort = await freePort()
  const redisServer = launch(SHARED_CPU, await ensureRedis(), ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
  await redisServer.waitFor(/Ready to accept connections/)
  const clusterEnv = { BENCH_REDIS_URL: `redis://127.0.0.1:${redisPort}`, APERTURE_SECRET_KEY: "the bench's secret key, 32 characters or more" }
  const connectors = [{ id: "raw", url: `${raw.base}/mcp/0` }]
  const plain = await startGateway(connectors, [])
  const clustered: Array<Gateway> = []
  for (let i = 0; i < 3; i++) clustered.push(await startGateway(connectors, [], clusterEnv, "bench/clusterGateway.config.ts"))
  const { createClient } = await import("redis")
  const redisClient = createClient({ url: clusterEnv.BENCH_REDIS_URL })
  await redisClient.connect()
  const redisCommands = async () => commandCounts(await redisClient.info("commandstats"))
  const balancers = [
    await startHaproxy({ replicas: [clustered[0]!.origin], checkIntervalMs: 1000 }),
    await startHaproxy({ replicas: clustered.map((g) => g.origin), checkIntervalMs: 1000 })
  ]
  for (const b of balancers) execSync(`taskset -cp ${SHARED_CPU} ${b.pid}`, { stdio: "ignore" })
  const paths = [
    { name: "1 replica, no `cluster`", url: plain.url, gateways: [plain], balancer: undefined },
    { name: "1 replica, `cluster: redis(…)`", url: clustered[0]!.url, gateways: [clustered[0]!], balancer: undefined },
    { name: "HAProxy → 1 replica (cluster)", url: `${balancers[0]!.origin}/v1/mcp`, gateways: [clustered[0]!], balancer: balancers[0] },
    { name: "HAProxy → 3 replicas (cluster)", url: `${balancers[1]!.origin}/v1/mcp`, gateways: clustered, balancer: balancers[1] }
  ]
  // Each 2025-era path keeps its 16 sessions (and connections) across rounds; they are opened and
  // warmed here, so behind HAProxy every replica already holds a copy of each when rounds start.
  const sessionPaths = await Promise.all(paths.map(async (path) => {
    const dispatcher = new Agent({ connections: 16, pipelining: 1, keepAliveTimeout: 30_000 })
    const sessions = await Promise.all(Array.from({ length: 16 }, () => openSession(path.url, dispatcher)))
    return { dispatcher, sessions }
  }))
  const cells = [
    ...paths.map((path) => ({ ...path, era: "2026" as const, load: (seconds: number) => closedLoop2026({ url: path.url, tool: "raw_echo", concurrency: 16, seconds }) })),
    ...paths.map((path, i) => ({
      ...path,
      era: "2025" as const,
      load: (seconds: number) => closedLoop2025(path.url, sessionPaths[i]!.dispatcher, sessionPaths[i]!.sessions, "raw_echo", seconds)
    }))
  ]
  for (const gateway of [plain, ...clustered]) {
    await closedLoop2026({ url: gateway.url, tool: "raw_echo", concurrency: 16, seconds: WARMUP_SECONDS / 2 })
  }
  for (const cell of cells.filter((c) => c.era === "2025")) await cell.load(quick ? 1 : 2)
  const measured = cells.map(() => ({ ...emptyCell(), balancerCpuMsPerRequest: [] as Array<number>, redisPerRequest: [] as Array<number> }))
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < cells.length; i++) {
      const index = (round + i) % cells.length
      const cell = cells[index]!
      const gatewayCpu = () => cell.gateways.reduce((sum, g) => sum + cpuMillis(g.pid), 0)
      const [cpu0, balancerCpu0, redis0] = [gatewayCpu(), cell.balancer === undefined ? 0 : cpuMillis(cell.balancer.pid), await redisCommands()]
      const result = await cell.load(SECONDS)
      const calls = Math.max(1, result.requests)
      const into = measured[index]!
      record(into, result)
      into.cpuMsPerRequest.push((gatewayCpu() - cpu0) / calls)
      if (cell.balancer !== undefined) into.balancerCpuMsPerRequest.push((cpuMillis(cell.balancer.pid) - balancerCpu0) / calls)
      into.redisPerRequest.push(totalOf(commandsBetween(redis0, await redisCommands())) / calls)
    }
  }
  for (const [i, path] of paths.entries()) {
    await closeSessions(path.url, sessionPaths[i]!.dispatcher, sessionPaths[i]!.sessions)
    await sessionPaths[i]!.dispatcher.close()
  }
  // The closes just sent reach Redis a little later (fire and forget): they must not count as the next step's.
  await new Promise((r) => setTimeout(r, 1000))
  const accounting = await redisAccounting(clusterEnv.BENCH_REDIS_URL, clustered)

  out("", "## S9 a cluster's cost: `tools/call` echo, raw upstream, c=16, 2026-era and 2025-era, with and without `cluster`, and behind HAProxy", "")
  out(
    "**On this 2-core machine these numbers show cost, not scaling**: every replica runs on the gateway's core (CPU 1), and HAProxy, Redis, the upstream and the load generator share CPU 0, " +
      "so three replicas have the CPU of one. What a row adds over the one before it is the price of that hop. HAProxy as `test/cluster/balancer.test.ts` runs it (`test/helpers/haproxy.ts`: round-robin, no affinity, health check every 1 s here). " +
      "A 2025-era row's 16 sessions are opened before the rounds and kept open across them (behind HAProxy each replica holds a copy of each by then): the rows are the calls, the second table the session's own steps.",
    ""
  )
  out(
    "| calls | path | req/s (min–max) | p50 ms | p99 ms | gateway CPU per call (all replicas) | HAProxy CPU per call | Redis commands per call | errors |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|"
  )
  for (const [i, cell] of cells.entries()) {
    const m = measured[i]!
    out(
      `| ${cell.era}-era | ${cell.name} | ${f(median(m.rps), 0)}${range(m.rps)} | ${f(median(m.p50))} | ${f(median(m.p99))} | ${f(median(m.cpuMsPerRequest), 3)} ms | ${
        cell.balancer === undefined ? "" : `${f(median(m.balancerCpuMsPerRequest), 3)} ms`
      } | ${f(median(m.redisPerRequest), 3)} | ${m.errors} |`
    )
  }
  out(
    "",
    "The Redis column is `INFO commandstats` over the round, per call: every command Redis ran, those a script runs included, heartbeats and the timers of open sessions too (anything above 0 on a 2026-era row, or on a row without `cluster`, is that background from the clustered replicas). " +
      "A 2026-era call is stateless and makes no Redis round trip with `cluster`. Per-session timers (slot renewals, record touches) fall into whichever step below is running when they fire.",
    "",
    `### S9 Redis per 2025-era session step (MONITOR, ${quick ? 20 : 50} sessions straight to the replicas, no balancer; heartbeats left out)`,
    "",
    "| step | round trips (client commands) | commands run inside scripts | round trips by command | inside scripts |",
    "|---|---:|---:|---|---|"
  )
  for (const s of accounting) out(`| ${s.name} | ${f(s.roundTrips)} | ${f(s.inScripts)} | ${s.detail} | ${s.scriptDetail} |`)
  redisClient.destroy()
  for (const b of balancers) await b.stop()
}

/** How long each profiled target is under load, after the warm-up. */
const PROFILE_SECONDS = 6

/**
 * `--profile`: where the gateway's CPU goes on the raw upstream at c=16 (the 0.5× target), next
 * to the floor relay under the same load: both run with `--cpu-prof`, and only the samples of
 * the measured window count. Prints both and writes bench/PROFILE.md. `--profile everything`
 * does the same against server-everything (a v1-SDK, sessionful upstream answering calls as
 * event streams) and writes bench/PROFILE-everything.md.
 */
const profileScenario = async () => {
  const everything = profileEverything ? await startEverything() : undefined
  const upstream = everything?.url ?? `${(await startRaw(0)).base}/mcp/0`
  const id = everything === undefined ? "raw" : "everything"
  const dir = mkdtempSync(join(tmpdir(), "aperture-bench-cpuprof-"))
  const profiled = (name: string) => ["--cpu-prof", `--cpu-prof-dir=${join(dir, name)}`]
  const gateway = await startGateway([{ id, url: upstream }], profiled("gateway"))
  const relay = await startRelay({ [id]: upstream }, profiled("relay"))
  const targets = [
    { name: "gateway", profileDir: "gateway", process: gateway, url: gateway.url, tool: `${id}_echo` },
    { name: "floor relay", profileDir: "relay", process: relay, url: `${relay.origin}/${id}`, tool: "echo" }
  ] as const
  for (const target of targets) {
    await closedLoop({ url: target.url, tool: target.tool, message: "warm", concurrency: 16, seconds: WARMUP_SECONDS })
  }
  const measured: Array<{ readonly name: string; readonly profileDir: string; readonly result: LoadResult; readonly cpuMs: number; readonly window: Window }> = []
  for (const target of targets) {
    const cpu0 = cpuMillis(target.process.pid)
    const window = { fromUs: nowUs(), toUs: 0 }
    const result = await closedLoop({ url: target.url, tool: target.tool, message: "x".repeat(100), concurrency: 16, seconds: PROFILE_SECONDS })
    const cpuMs = cpuMillis(target.process.pid) - cpu0
    measured.push({ name: target.name, profileDir: target.profileDir, result, cpuMs, window: { ...window, toUs: nowUs() } })
  }
  // `--cpu-prof` writes the profile when the process exits.
  await gateway.child.kill("SIGINT")
  await relay.child.kill("SIGINT")
  const summaries = measured.map((m) => {
    const profileDir = join(dir, m.profileDir)
    // One profile per thread (tsx's loader has its own): the main thread's is the largest.
    const main = readdirSync(profileDir).filter((f) => f.endsWith(".cpuprofile"))
      .map((f) => ({ file: join(profileDir, f), size: statSync(join(profileDir, f)).size }))
      .sort((a, b) => b.size - a.size)[0]
    if (main === undefined) throw new Error(`the ${m.name} wrote no CPU profile to ${profileDir}`)
    return { ...m, summary: summarizeProfile(main.file, m.window) }
  })
  rmSync(dir, { recursive: true, force: true })

  out(
    "",
    everything === undefined
      ? "## Profile: `tools/call` echo, raw upstream, c=16 (the 0.5× target)"
      : "## Profile: `tools/call` echo, server-everything (v1 SDK, streamable HTTP) upstream, c=16 (the 0.85× target)",
    ""
  )
  out(
    `Both under \`node --cpu-prof\` (which costs some CPU itself), ${PROFILE_SECONDS} s each after ${WARMUP_SECONDS} s of warm-up; self time of the samples in the measured window, in µs per call.`,
    ""
  )
  out("| | req/s | CPU per call (/proc) | sampled busy time per call |", "|---|---:|---:|---:|")
  for (const s of summaries) {
    out(`| ${s.name} | ${f(s.result.requests / s.result.seconds, 0)} | ${f(s.cpuMs / s.result.requests, 3)} ms | ${f(s.summary.busyMs / s.result.requests, 3)} ms |`)
  }
  const [g, r] = summaries as [typeof summaries[number], typeof summaries[number]]
  const perCall = (s: typeof g, category: string) =>
    ((s.summary.categories.find(([name]) => name === category)?.[1] ?? 0) / s.result.requests) * 1000
  const names = [...new Set([...g.summary.categories, ...r.summary.categories].map(([name]) => name))]
    .sort((a, b) => perCall(g, b) - perCall(g, a))
  out("", "| category (self time) | gateway µs/call | share | floor relay µs/call | gateway − relay µs |", "|---|---:|---:|---:|---:|")
  for (const name of names) {
    const gw = perCall(g, name)
    const rl = perCall(r, name)
    if (gw < 0.5 && rl < 0.5) continue
    out(`| ${name} | ${f(gw, 1)} | ${f((gw / ((g.summary.busyMs / g.result.requests) * 1000)) * 100, 1)} % | ${f(rl, 1)} | ${f(gw - rl, 1)} |`)
  }
  out("", "The gateway's 25 costliest functions (self time):", "", "| function | µs/call | share |", "|---|---:|---:|")
  for (const [name, ms] of g.summary.functions.slice(0, 25)) {
    out(`| \`${name}\` | ${f((ms / g.result.requests) * 1000, 1)} | ${f((ms / g.summary.busyMs) * 100, 1)} % |`)
  }
}

// ---------------------------------------------------------------- main

const main = async () => {
  pinSelf()
  const commit = (() => {
    try {
      return execSync("git rev-parse --short HEAD", { cwd: repoRoot }).toString().trim()
    } catch {
      return "unknown"
    }
  })()
  out(
    profile
      ? `# Where the gateway's CPU goes (\`npm run bench -- --profile${profileEverything ? " everything" : ""}\`)`
      : "# Benchmark results"
  )
  out("")
  out(`${new Date().toISOString()} · commit ${commit} · ${machineLine()} · ${loadLine()} at the start`)
  if (profile) {
    await profileScenario()
    writeFileSync(`${repoRoot}bench/${profileEverything ? "PROFILE-everything.md" : "PROFILE.md"}`, `${report.join("\n")}\n`)
    return
  }
  out(
    `${ROUNDS} alternating round(s) of ${SECONDS} s per cell and target after ${WARMUP_SECONDS} s of warm-up load; medians, (min–max) across rounds.`
  )
  if (telemetry) {
    otlpSink = await startOtlpSink()
    out("", "Telemetry on: every gateway exports traces and metrics over OTLP/HTTP to a local sink (every request traced).")
  }
  // Each scenario starts from a quiet machine: what one left running is stopped before the next.
  for (const scenario of [throughputScenarios, catalogScenarios, proxyScenario, startupScenario, isolationScenario, clusterScenario]) {
    await scenario()
    await stopAll()
  }
  out("", `${loadLine()} at the end (the bench itself keeps about two runnable; more is other work on the machine).`)
  if (otlpSink !== undefined) {
    const { bytes, metrics, traces } = otlpSink.counts()
    out(`OTLP sink: ${traces} trace exports, ${metrics} metric exports, ${(bytes / 1024 / 1024).toFixed(1)} MiB.`)
    await otlpSink.close()
    return
  }
  if (!quick && only.size === 0) writeFileSync(`${repoRoot}bench/RESULTS.md`, `${report.join("\n")}\n`)
}

main()
  .catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
  .finally(async () => {
    await stopAll()
    rmSync(snapshotDir, { recursive: true, force: true })
  })
